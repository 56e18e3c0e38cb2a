// The accounts issued, as an explicit list of ids, with the bound its largest id sets computed
// once: payload decoding asks for both on every document.
//
//   IssuedAccounts issued({17, 300, 4242});
//   issued.contains(300);  // true
//   issued.limit();        // 4243
//
// Immutable; thread-safe.
#ifndef TRACEMARK_WATERMARK_ISSUED_ACCOUNTS_H_
#define TRACEMARK_WATERMARK_ISSUED_ACCOUNTS_H_

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace tracemark::watermark {

class IssuedAccounts {
 public:
  explicit IssuedAccounts(absl::flat_hash_set<uint64_t> ids) : ids_(std::move(ids)) {
    for (uint64_t id : ids_) limit_ = std::max(limit_, id + 1);
  }
  bool contains(uint64_t id) const { return ids_.contains(id); }
  bool empty() const { return ids_.empty(); }
  const absl::flat_hash_set<uint64_t>& ids() const { return ids_; }
  size_t size() const { return ids_.size(); }
  // One more than the largest id issued; 0 when the list is empty.
  uint64_t limit() const { return limit_; }

 private:
  absl::flat_hash_set<uint64_t> ids_;
  uint64_t limit_ = 0;
};

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_ISSUED_ACCOUNTS_H_
