#include "tracemark/stats/tails.h"

#include <math.h>

#include <cmath>
#include <limits>

namespace tracemark::stats {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kEps = 1e-16;
constexpr double kTiny = 1e-300;
// Continued fractions converge in O(sqrt(max(a, b))) steps; this bound covers shapes beyond 1e12.
constexpr int kMaxIterations = 50'000'000;

// log(1 - exp(l)) for l <= 0, accurate near both ends.
double Log1mExp(double l) {
  if (l > -0.6931471805599453) return std::log(-std::expm1(l));
  return std::log1p(-std::exp(l));
}

// Continued fraction for I_x(a, b) (modified Lentz), valid and fast for x < (a + 1) / (a + b + 2).
double BetaContinuedFraction(double a, double b, double x) {
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return h;
}

// log of x^a (1-x)^b / (a B(a, b)) times the continued fraction: log I_x(a, b) on the fast side.
double LogBetaDirect(double a, double b, double x) {
  const double log_front = a * std::log(x) + b * std::log1p(-x) - std::log(a) -
                           (LogGamma(a) + LogGamma(b) - LogGamma(a + b));
  return log_front + std::log(BetaContinuedFraction(a, b, x));
}

}  // namespace

double LogGamma(double x) {
  int sign = 0;
  return lgamma_r(x, &sign);
}

double LogIncompleteBeta(double a, double b, double x) {
  if (x <= 0.0) return kNegInf;
  if (x >= 1.0) return 0.0;
  if (x < (a + 1.0) / (a + b + 2.0)) return LogBetaDirect(a, b, x);
  return Log1mExp(LogBetaDirect(b, a, 1.0 - x));
}

double LogIncompleteBetaComplement(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return kNegInf;
  // 1 - I_x(a, b) = I_{1-x}(b, a).
  return LogIncompleteBeta(b, a, 1.0 - x);
}

double LogLowerIncompleteGamma(double a, double x) {
  if (x <= 0.0) return kNegInf;
  if (x >= a + 1.0) return Log1mExp(LogUpperIncompleteGamma(a, x));
  // Series: P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a+1)...(a+n)).
  double ap = a, sum = 1.0 / a, del = sum;
  for (int n = 0; n < kMaxIterations; ++n) {
    ap += 1.0;
    del *= x / ap;
    sum += del;
    if (std::fabs(del) < std::fabs(sum) * kEps) break;
  }
  return std::log(sum) - x + a * std::log(x) - LogGamma(a);
}

double LogUpperIncompleteGamma(double a, double x) {
  if (x <= 0.0) return 0.0;
  if (x < a + 1.0) return Log1mExp(LogLowerIncompleteGamma(a, x));
  // Continued fraction (modified Lentz) for Q(a, x).
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i <= kMaxIterations; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return std::log(h) - x + a * std::log(x) - LogGamma(a);
}

PValue BinomialUpperTail(uint64_t k, uint64_t n, double p) {
  if (k == 0) return PValue();
  if (k > n) return PValue::FromLog(kNegInf);
  if (p <= 0.0) return PValue::FromLog(kNegInf);
  if (p >= 1.0) return PValue();
  return PValue::FromLog(
      LogIncompleteBeta(static_cast<double>(k), static_cast<double>(n - k + 1), p));
}

PValue GammaUpperTail(double shape, double x) {
  if (!(shape > 0.0) || x <= 0.0) return PValue();
  return PValue::FromLog(LogUpperIncompleteGamma(shape, x));
}

}  // namespace tracemark::stats
