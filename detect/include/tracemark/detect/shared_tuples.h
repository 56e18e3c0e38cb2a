// The (context, token) tuples that occur in more than one document of a dataset, so that each
// document can be tested on the tuples no other document shares.
//
// Under one key a tuple has one colour in every document that contains it, so documents that
// share text (a licence header, boilerplate, a quoted passage) have dependent p-values: with a
// shared header over 1,000 clean documents, one key flagged 23.9 % of them at p <= 0.01 (valid
// only on average over keys, docs/validity.md). Tested on its unshared tuples only, each document
// is scored on tuples of its own, disjoint from every other document's, so the per-document
// tests are independent under the key actually used and each is exact. Which tuples are shared
// depends on the text alone, never on the key, so the selection keeps every null exact.
//
//   SharedTuples shared(h);
//   shared.Add(doc_index, ids, from);           // every document, in any order
//   if (!shared.Shared(ids, i)) ... score position i ...
//
// Memory: about 32 bytes per distinct tuple. Thread-compatible: Add from one thread, then Shared
// from any number.
#ifndef TRACEMARK_DETECT_SHARED_TUPLES_H_
#define TRACEMARK_DETECT_SHARED_TUPLES_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace tracemark::detect {

class SharedTuples {
 public:
  // Tuples of a window of h ids and the token after it.
  explicit SharedTuples(size_t h) : h_(h) {}

  // Records the tuples at positions from .. ids.size() - 1 of document `document` (those with a
  // full window of h ids before them). A tuple recorded for two documents becomes shared.
  void Add(uint64_t document, absl::Span<const int32_t> ids, size_t from);

  // Whether the tuple at position i of `ids` occurs in more than one document; true, too, for a
  // position with fewer than h ids before it (its window is partly padding, which any document
  // may share).
  bool Shared(absl::Span<const int32_t> ids, size_t i) const;

  size_t distinct() const { return first_document_.size(); }
  size_t shared() const { return shared_; }

 private:
  static constexpr uint64_t kShared = ~uint64_t{0};
  size_t h_;
  size_t shared_ = 0;
  absl::flat_hash_map<uint64_t, uint64_t> first_document_;  // tuple key -> document, or kShared
};

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_SHARED_TUPLES_H_
