// Which accounts were served each context window (DESIGN.md §3.2): for every record of a ledger and
// every response position whose h ids before it are known (the record's kept prompt ids, then
// the response's own), the window — those h ids — and the account served the token after it.
// Built at investigation time from the ledger; ledger-keyed attribution scores a suspect's token
// at a window against the key of each account the index names for it.
//
//   TRACEMARK_ASSIGN_OR_RETURN(ledger::WindowIndex index, ledger::WindowIndex::Build(dir, 3));
//   if (const ledger::WindowIndex::Served* s = index.Find(ids, i)) { ... s->accounts ... }
//
// Windows are keyed by base::WindowKey (64 bits: a collision only adds a window to a test, and a
// window's colour under an account's key is the key's function of the window itself, so it never
// biases a test's null). Thread-safe after Build (Find is const).
#ifndef TRACEMARK_LEDGER_WINDOW_INDEX_H_
#define TRACEMARK_LEDGER_WINDOW_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/record.h"

namespace tracemark::ledger {

class WindowIndex {
 public:
  struct Served {
    absl::InlinedVector<uint64_t, 1> accounts;  // distinct, ascending
    uint32_t positions = 0;                     // served positions with this window (all accounts)
    bool anonymous = false;                     // also served to a request without an account
    // Served to exactly one account and to no anonymous request.
    bool exclusive() const { return accounts.size() == 1 && !anonymous; }
  };

  struct Stats {
    uint64_t records = 0;
    uint64_t positions = 0;          // response positions indexed
    uint64_t positions_skipped = 0;  // response positions with fewer than h ids before them
    uint64_t windows = 0;            // distinct windows
    uint64_t exclusive_windows = 0;  // served to exactly one account (Served::exclusive)
    uint64_t anonymous_only = 0;     // served to anonymous requests only
  };

  // An empty index of windows of h ids (h >= 1; InvalidArgument otherwise).
  static absl::StatusOr<WindowIndex> Create(int h);
  // The index of every record of the ledger at `path` (ReadLedger's errors, and Create's).
  static absl::StatusOr<WindowIndex> Build(const std::string& path, int h,
                                           const ReadOptions& options = {},
                                           ReadReport* report = nullptr);

  // Adds one record's windows.
  void Add(const Record& record);

  // The window ids[i - h .. i): what was served after it, or null when the ledger never served it
  // (also for i < h or i > ids.size()).
  const Served* Find(absl::Span<const int32_t> ids, size_t i) const;

  int h() const { return h_; }
  // Counts over everything added so far (windows and exclusive windows are counted on demand).
  Stats stats() const;

 private:
  explicit WindowIndex(int h) : h_(h) {}
  int h_;
  uint64_t records_ = 0, positions_ = 0, skipped_ = 0;
  absl::flat_hash_map<uint64_t, Served> windows_;
};

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_WINDOW_INDEX_H_
