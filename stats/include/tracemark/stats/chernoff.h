// A provable upper bound on the upper tail of a sum of independent two-point random variables.
//
// tracemark's fingerprint (Tardos-family) accusation score of an account that is NOT in the
// coalition is, conditioned on the suspect text, exactly such a sum: slot j contributes
// `if_one[j]` with probability `p_one[j]` (the account's symbol is 1) and `if_zero[j]` otherwise,
// independently across slots, because the account's codeword is drawn from its own key and is
// independent of the text. The Chernoff bound
//     P(S >= s) <= min_{t >= 0} exp(-t s) * prod_j E[exp(t X_j)]
// then holds for every innocent account whatever the coalition did.
//
//   TwoPointSum null;
//   null.Add(/*p_one=*/0.3, /*if_one=*/1.53, /*if_zero=*/-0.65);
//   PValue p = null.UpperTailBound(observed_score);
//
// Thread-compatible.
#ifndef TRACEMARK_STATS_CHERNOFF_H_
#define TRACEMARK_STATS_CHERNOFF_H_

#include <cstddef>
#include <vector>

#include "tracemark/stats/pvalue.h"

namespace tracemark::stats {

class TwoPointSum {
 public:
  // Adds X = if_one with probability p_one, else if_zero. p_one is clamped to [0, 1].
  void Add(double p_one, double if_one, double if_zero);

  double Mean() const;
  double Variance() const;
  // The largest value the sum can take.
  double Max() const;
  size_t size() const { return terms_.size(); }

  // Chernoff upper bound on P(S >= s). Returns 1 when s <= Mean(); the exact probability of the
  // maximum when s >= Max() (0 above it).
  PValue UpperTailBound(double s) const;

 private:
  struct Term {
    double log_p1, log_p0, a, b;
  };
  // log E[exp(t S)] and its first two derivatives in t.
  void LogMgf(double t, double* value, double* d1, double* d2) const;
  std::vector<Term> terms_;
};

}  // namespace tracemark::stats

#endif  // TRACEMARK_STATS_CHERNOFF_H_
