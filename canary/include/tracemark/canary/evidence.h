// Canary evidence: which keyed choices a text agrees with, and exact tests of that agreement.
//
// Events are reduced to distinct (set, context) tuples; for each tuple the text's majority member
// (ties to the lowest index) stands for it, a function of the text alone. For an account whose key
// the text does not depend on, the keyed choice at each tuple is uniform over the set and
// independent across tuples, so its number of matches is exactly a sum of Binomial(n_k, 1/k) over
// set sizes k (stats::BinomialSum): the p-values below are exact, whatever the natural frequencies
// of the members. A cohort's count sums its accounts' matches: Binomial(|C| n_k, 1/k) under the
// null, since different accounts' keys are independent.
//
//   CanaryStatistics stats;
//   stats.Add(ExtractEvents(text, lexicon, active));      // per document; Merge() across shards
//   auto tuples = stats.Tuples();
//   CanaryResult r = TestAccount(tuples, lexicon, key);
//   CanaryAttribution a = AttributeAmong(tuples, lexicon, keys, /*top=*/5, /*threads=*/2);
//
// CanaryStatistics is thread-compatible; the functions are thread-safe.
#ifndef TRACEMARK_CANARY_EVIDENCE_H_
#define TRACEMARK_CANARY_EVIDENCE_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "tracemark/canary/canary_key.h"
#include "tracemark/canary/events.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/stats/binomial_sum.h"
#include "tracemark/stats/pvalue.h"

namespace tracemark::canary {

struct Tuple {
  uint32_t set = 0;
  uint32_t set_size = 0;
  uint64_t context = 0;
  uint32_t member = 0;  // the text's majority member
};

class CanaryStatistics {
 public:
  void Add(absl::Span<const Event> events);
  void Merge(const CanaryStatistics& other);
  uint64_t events() const { return events_; }
  size_t tuple_count() const { return counts_.size(); }
  // The distinct tuples in a fixed order (by set, then context), with their majority members.
  std::vector<Tuple> Tuples(const Lexicon& lexicon) const;

  // The raw counts, for serializing a scan partition's result: per distinct (set, context), how
  // often each member was seen; and the inverse, adding such counts (and events) back.
  using Counts = std::array<uint32_t, kMaxSetSize>;
  struct Entry {
    uint32_t set = 0;
    uint64_t context = 0;
    Counts counts{};
  };
  std::vector<Entry> Entries() const;  // sorted by (set, context)
  void AddEntry(const Entry& entry);
  void AddEvents(uint64_t events) { events_ += events; }

 private:
  struct Key {
    uint32_t set;
    uint64_t context;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.set, k.context);
    }
    friend bool operator==(const Key& a, const Key& b) {
      return a.set == b.set && a.context == b.context;
    }
  };
  absl::flat_hash_map<Key, std::array<uint32_t, kMaxSetSize>> counts_;
  uint64_t events_ = 0;
};

// The null distribution of one account's matches over `tuples`.
stats::BinomialSum NullOfMatches(absl::Span<const Tuple> tuples, uint64_t accounts = 1);

struct CanaryResult {
  uint64_t account = 0;
  uint64_t tuples = 0;
  uint64_t matches = 0;
  double expected = 0;  // mean matches under the null
  stats::PValue p;      // P(matches >= observed) under the null, for this account alone
};

CanaryResult TestAccount(absl::Span<const Tuple> tuples, const CanaryKey& key);

// The number of tuples whose text member equals the key's choice (the statistic of TestAccount).
uint64_t CountMatches(absl::Span<const Tuple> tuples, const CanaryKey& key);

struct CanaryAttribution {
  std::vector<CanaryResult> top;  // the accounts with most matches, best first
  uint64_t accounts_tried = 0;
  stats::PValue corrected;  // the best account's p, Bonferroni-corrected over accounts_tried
  bool exact = true;        // false when the null is a Chernoff bound (very many tuples)
};

// Tests every key and reports the `top` best; `threads` >= 1 workers split the keys.
CanaryAttribution AttributeAmong(absl::Span<const Tuple> tuples, absl::Span<const CanaryKey> keys,
                                 size_t top = 5, int threads = 1);

struct CohortResult {
  uint64_t accounts = 0;
  uint64_t tuples = 0;
  uint64_t matches = 0;  // summed over the cohort's accounts
  double expected = 0;
  stats::PValue p;  // the summed matches' test
  // The heaviest contributor: the member whose own matches are least likely under the null, with
  // its p-value Bonferroni-corrected over the members. A cohort whose data came mostly from one
  // account shows here, where the sum dilutes it among the others.
  uint64_t best_account = 0;
  uint64_t best_matches = 0;
  stats::PValue best_member_p;
  // The cohort test to report: the smaller of p and best_member_p, Bonferroni-corrected for
  // taking the smaller of the two.
  stats::PValue combined_p;
};

// The cohort's summed matches against Binomial(|C| n_k, 1/k), and its heaviest contributor.
CohortResult TestCohort(absl::Span<const Tuple> tuples, absl::Span<const CanaryKey> cohort);

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_EVIDENCE_H_
