#include "tracemark/stats/pvalue.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace tracemark::stats {

PValue PValue::FromLog(double log_p) {
  if (std::isnan(log_p)) return PValue(0.0);
  return PValue(log_p > 0.0 ? 0.0 : log_p);
}

PValue PValue::FromValue(double p) {
  if (std::isnan(p) || p >= 1.0) return PValue(0.0);
  if (p <= 0.0) return PValue(-std::numeric_limits<double>::infinity());
  return PValue(std::log(p));
}

double PValue::log10() const { return log_p_ / std::log(10.0); }

double PValue::value() const { return std::exp(log_p_); }

std::string PValue::ToString(int digits) const {
  if (digits < 1) digits = 1;
  if (std::isinf(log_p_)) return "0 (exact: impossible under the null)";
  const double l10 = log10();
  if (l10 > -300.0) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*g", digits, value());
    return buf;
  }
  double exponent = std::floor(l10);
  double mantissa = std::pow(10.0, l10 - exponent);
  // Rounding the mantissa to `digits` may carry into the exponent (9.99 -> 10.0).
  const double scale = std::pow(10.0, digits - 1);
  mantissa = std::round(mantissa * scale) / scale;
  if (mantissa >= 10.0) {
    mantissa /= 10.0;
    exponent += 1.0;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*fe%.0f", digits - 1, mantissa, exponent);
  return buf;
}

PValue Bonferroni(PValue p, uint64_t tests) {
  if (tests <= 1) return p;
  return PValue::FromLog(p.log() + std::log(static_cast<double>(tests)));
}

PValue Sidak(PValue p, uint64_t tests) {
  if (tests <= 1) return p;
  // 1 - (1-p)^m = -expm1(m * log1p(-p)); for tiny p use the Bonferroni limit m*p(1 - (m-1)p/2).
  const double m = static_cast<double>(tests);
  if (p.log() < -30.0) {
    return PValue::FromLog(p.log() + std::log(m) + std::log1p(-(m - 1.0) * p.value() / 2.0));
  }
  return PValue::FromValue(-std::expm1(m * std::log1p(-p.value())));
}

}  // namespace tracemark::stats
