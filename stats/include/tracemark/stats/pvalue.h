// A p-value held as its natural logarithm, so that values far below the smallest double (1e-308)
// stay exact and are never shown as 0.
//
//   PValue p = PValue::FromLog(-2000.0);
//   p.ToString();   // "1.2e-869"
//   p.log10();      // -868.6
//   Bonferroni(p, 25000).ToString();
//
// Plain value type; thread-compatible.
#ifndef TRACEMARK_STATS_PVALUE_H_
#define TRACEMARK_STATS_PVALUE_H_

#include <cstdint>
#include <string>

namespace tracemark::stats {

class PValue {
 public:
  // The p-value 1 (no evidence).
  PValue() = default;
  // `log_p` is clamped to (-inf, 0]; NaN becomes 0 (p = 1) so that a numerical failure can never
  // overstate evidence.
  static PValue FromLog(double log_p);
  static PValue FromValue(double p);

  double log() const { return log_p_; }
  double log10() const;
  // The value as a double; 0 only when it underflows (use ToString or log10 to show it).
  double value() const;
  // Scientific notation with `digits` significant digits, exact in the exponent for any size,
  // e.g. "3.1e-4127". Never "0".
  std::string ToString(int digits = 2) const;

  friend bool operator<(PValue a, PValue b) { return a.log_p_ < b.log_p_; }
  friend bool operator<=(PValue a, PValue b) { return a.log_p_ <= b.log_p_; }

 private:
  explicit PValue(double log_p) : log_p_(log_p) {}
  double log_p_ = 0.0;
};

// Bonferroni correction over `tests` tests: min(1, tests * p). `tests` == 0 is treated as 1.
PValue Bonferroni(PValue p, uint64_t tests);

// Probability that the smallest of `tests` independent uniform p-values is <= p:
// 1 - (1 - p)^tests (Šidák); exact for independent tests, and never above Bonferroni.
PValue Sidak(PValue p, uint64_t tests);

// Fisher's method would need independence across documents; tracemark combines evidence by pooling
// counts instead (see docs/detection.md).

}  // namespace tracemark::stats

#endif  // TRACEMARK_STATS_PVALUE_H_
