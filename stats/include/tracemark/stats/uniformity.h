// Goodness-of-fit of p-values to the uniform distribution, for validity studies: under the null
// hypothesis a valid p-value is uniform on [0, 1] (or stochastically larger, for discrete tests).
//
//   KsResult r = KolmogorovSmirnovUniform(p_values);
//   if (r.p_value < 0.01) { ... the p-values are not uniform ... }
//
// Thread-safe (pure functions).
#ifndef TRACEMARK_STATS_UNIFORMITY_H_
#define TRACEMARK_STATS_UNIFORMITY_H_

#include <cstddef>
#include <vector>

namespace tracemark::stats {

struct KsResult {
  size_t n = 0;
  double statistic = 0;  // sup |F_n(x) - x|
  double p_value = 1;    // asymptotic Kolmogorov distribution with Stephens' small-n correction
  // One-sided statistic sup (F_n(x) - x): positive when small p-values are over-represented, the
  // direction that would make a detector anti-conservative.
  double statistic_plus = 0;
};

// Two-sided one-sample KS test against Uniform(0, 1). Values are clamped to [0, 1].
KsResult KolmogorovSmirnovUniform(std::vector<double> values);

// Fraction of values <= alpha.
double FractionAtOrBelow(const std::vector<double>& values, double alpha);

}  // namespace tracemark::stats

#endif  // TRACEMARK_STATS_UNIFORMITY_H_
