// The upper tail of a sum of independent binomials with a few distinct success probabilities:
// S = Binomial(n_1, p_1) + ... + Binomial(n_m, p_m).
//
// tracemark's canary test counts, over distinct (set, context) tuples, how often the text's member
// equals an account's keyed choice; under the null a tuple of a set of size k matches with
// probability exactly 1/k, independently across tuples, so the count is such a sum.
//
//   BinomialSum null;
//   null.Add(/*trials=*/40, /*p=*/0.5);     // 40 tuples of sets of two
//   null.Add(/*trials=*/12, /*p=*/1.0 / 3);
//   PValue p = null.UpperTail(33);           // P(S >= 33)
//
// UpperTail is exact (to double rounding, in extended precision) while the whole distribution fits
// the range of long double (up to a few thousand trials); beyond that it returns the Chernoff bound
// min_t exp(-t s) E[exp(t S)], which is a valid (conservative) p-value. `exact()` says which.
// Thread-compatible; the exact table is computed once, on the first UpperTail call after an Add.
#ifndef TRACEMARK_STATS_BINOMIAL_SUM_H_
#define TRACEMARK_STATS_BINOMIAL_SUM_H_

#include <cstdint>
#include <vector>

#include "tracemark/stats/pvalue.h"

namespace tracemark::stats {

class BinomialSum {
 public:
  // Adds Binomial(trials, p). p is clamped to [0, 1]; terms with the same p are merged.
  void Add(uint64_t trials, double p);

  uint64_t trials() const;
  double Mean() const;
  // True when UpperTail is exact rather than a Chernoff bound.
  bool exact() const;

  // P(S >= s). s <= 0 gives 1; s > trials() gives the exact 0.
  PValue UpperTail(uint64_t s) const;
  // The Chernoff bound on P(S >= s) alone (what UpperTail returns when not exact()).
  PValue ChernoffBound(uint64_t s) const;

 private:
  struct Term {
    uint64_t n;
    double p;
  };
  void BuildTable() const;
  std::vector<Term> terms_;
  // log P(S >= s) for s = 0..trials(), when exact.
  mutable std::vector<double> log_tail_;
  mutable bool table_built_ = false;
};

}  // namespace tracemark::stats

#endif  // TRACEMARK_STATS_BINOMIAL_SUM_H_
