// Which accounts were served each context window (DESIGN.md §3.2): for every record of a ledger and
// every response position whose h ids before it are known (the record's kept prompt ids, then
// the response's own), the window — those h ids — and the account served the token after it.
// Built at investigation time from the ledger; ledger-keyed attribution scores a suspect's token
// at a window against the key of each account the index names for it.
//
//   TRACEMARK_ASSIGN_OR_RETURN(ledger::WindowIndex index, ledger::WindowIndex::Build(dir, 3));
//   if (auto served = index.Find(ids, i)) { ... served->accounts ... }
//
// The index is one sorted array of (window key, account) pairs, 16 bytes per distinct pair, so
// that a key range of it is a shard (the join of a suspect's windows against the ledger splits by
// window key). Windows are keyed by base::WindowKey (64 bits: a collision only adds a window to a
// test, and a window's colour under an account's key is the key's function of the window itself,
// so it never biases a test's null). Immutable and thread-safe once built.
#ifndef TRACEMARK_LEDGER_WINDOW_INDEX_H_
#define TRACEMARK_LEDGER_WINDOW_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/record.h"

namespace tracemark::ledger {

class WindowIndex {
 public:
  struct Served {
    absl::Span<const uint64_t> accounts;  // distinct, ascending; anonymous requests not included
    bool anonymous = false;               // also served to a request without an account
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
    uint64_t pairs = 0;              // distinct (window, account) pairs: the index's entries

    // Served to several accounts, or to one and to anonymous requests.
    uint64_t shared_windows() const { return windows - exclusive_windows - anonymous_only; }
  };

  // Collects records' windows, then sorts them into the index.
  class Builder {
   public:
    // Windows of h ids (h >= 1; InvalidArgument otherwise).
    static absl::StatusOr<Builder> Create(int h);
    void Add(const Record& record);
    WindowIndex Finish() &&;

   private:
    explicit Builder(int h) : h_(h) {}
    int h_;
    uint64_t records_ = 0, positions_ = 0, skipped_ = 0;
    std::vector<std::pair<uint64_t, uint64_t>> pairs_;  // (window key, account or kAnonymous)
  };

  // The index of every record of the ledger at `path` (ReadLedger's errors, and Create's).
  static absl::StatusOr<WindowIndex> Build(const std::string& path, int h,
                                           const ReadOptions& options = {},
                                           ReadReport* report = nullptr);

  // The window ids[i - h .. i): who was served after it, or nullopt when the ledger never served
  // it (also for i < h or i > ids.size()). The spans point into the index.
  std::optional<Served> Find(absl::Span<const int32_t> ids, size_t i) const;

  int h() const { return h_; }
  const Stats& stats() const { return stats_; }

 private:
  static constexpr uint64_t kAnonymous = ~0ull;  // sorts after every account of its window
  explicit WindowIndex(int h) : h_(h) {}
  int h_;
  std::vector<uint64_t> keys_;      // ascending; a window's key repeats once per account
  std::vector<uint64_t> accounts_;  // parallel to keys_; ascending within a window
  Stats stats_;
};

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_WINDOW_INDEX_H_
