// Exact upper tails of the null distributions tracemark's detectors use, computed in log space so
// that they stay exact far below 1e-300.
//
//   // 130 green tokens out of 200 with green fraction 0.25:
//   PValue p = BinomialUpperTail(130, 200, 0.25);
//   // Gumbel (EXP) score: sum of 150 Exp(1) variables observed at 260.0:
//   PValue q = GammaUpperTail(150, 260.0);
//
// Thread-safe (pure functions).
#ifndef TRACEMARK_STATS_TAILS_H_
#define TRACEMARK_STATS_TAILS_H_

#include <cstdint>

#include "tracemark/stats/pvalue.h"

namespace tracemark::stats {

// P(X >= k) for X ~ Binomial(n, p), through the regularised incomplete beta function
// I_p(k, n - k + 1). k <= 0 gives 1; k > n gives the exact 0 (log -inf). Requires 0 <= p <= 1.
PValue BinomialUpperTail(uint64_t k, uint64_t n, double p);

// P(G >= x) for G ~ Gamma(shape, 1), the regularised upper incomplete gamma Q(shape, x).
// shape must be > 0; x <= 0 gives 1.
PValue GammaUpperTail(double shape, double x);

// Natural logarithms of the regularised incomplete beta I_x(a, b) and its complement 1 - I_x(a, b),
// a, b > 0, 0 <= x <= 1. Accurate to about 1e-13 relative in the log.
double LogIncompleteBeta(double a, double b, double x);
double LogIncompleteBetaComplement(double a, double b, double x);

// Natural logarithms of the regularised lower and upper incomplete gamma P(a, x) and Q(a, x).
double LogLowerIncompleteGamma(double a, double x);
double LogUpperIncompleteGamma(double a, double x);

// Thread-safe log-gamma for positive arguments.
double LogGamma(double x);

}  // namespace tracemark::stats

#endif  // TRACEMARK_STATS_TAILS_H_
