#include "tracemark/stats/uniformity.h"

#include <algorithm>
#include <cmath>

namespace tracemark::stats {
namespace {

// Q_KS(lambda) = 2 sum_{j>=1} (-1)^{j-1} exp(-2 j^2 lambda^2).
// For small lambda the alternating series converges slowly; use the Jacobi-theta form there:
// 1 - Q = sqrt(2 pi) / lambda * sum_{j>=1} exp(-(2j-1)^2 pi^2 / (8 lambda^2)).
double KolmogorovQ(double lambda) {
  constexpr double kPi = 3.14159265358979323846;
  if (lambda < 0.2) return 1.0;  // 1 - Q < 1e-26
  if (lambda < 1.18) {
    double sum = 0;
    for (int j = 1; j <= 50; ++j) {
      const double k = 2.0 * j - 1.0;
      sum += std::exp(-k * k * kPi * kPi / (8.0 * lambda * lambda));
    }
    return std::clamp(1.0 - std::sqrt(2.0 * kPi) / lambda * sum, 0.0, 1.0);
  }
  double sum = 0, sign = 1;
  for (int j = 1; j <= 200; ++j) {
    const double term = std::exp(-2.0 * j * j * lambda * lambda);
    sum += sign * term;
    if (term < 1e-18) break;
    sign = -sign;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

}  // namespace

KsResult KolmogorovSmirnovUniform(std::vector<double> values) {
  KsResult r;
  r.n = values.size();
  if (values.empty()) return r;
  for (double& v : values) v = std::clamp(std::isnan(v) ? 1.0 : v, 0.0, 1.0);
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  double d_plus = 0, d_minus = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    d_plus = std::max(d_plus, static_cast<double>(i + 1) / n - values[i]);
    d_minus = std::max(d_minus, values[i] - static_cast<double>(i) / n);
  }
  r.statistic = std::max(d_plus, d_minus);
  r.statistic_plus = d_plus;
  const double sn = std::sqrt(n);
  r.p_value = KolmogorovQ((sn + 0.12 + 0.11 / sn) * r.statistic);
  return r;
}

double FractionAtOrBelow(const std::vector<double>& values, double alpha) {
  if (values.empty()) return 0;
  size_t c = 0;
  for (double v : values) c += (v <= alpha);
  return static_cast<double>(c) / static_cast<double>(values.size());
}

}  // namespace tracemark::stats
