#include "tracemark/stats/chernoff.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tracemark::stats {
namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}  // namespace

void TwoPointSum::Add(double p_one, double if_one, double if_zero) {
  p_one = std::clamp(p_one, 0.0, 1.0);
  terms_.push_back(Term{p_one > 0 ? std::log(p_one) : kNegInf,
                        p_one < 1 ? std::log1p(-p_one) : kNegInf, if_one, if_zero});
}

double TwoPointSum::Mean() const {
  double m = 0;
  for (const Term& t : terms_) m += std::exp(t.log_p1) * t.a + std::exp(t.log_p0) * t.b;
  return m;
}

double TwoPointSum::Variance() const {
  double v = 0;
  for (const Term& t : terms_) {
    const double d = t.a - t.b;
    v += std::exp(t.log_p1) * std::exp(t.log_p0) * d * d;
  }
  return v;
}

double TwoPointSum::Max() const {
  double m = 0;
  for (const Term& t : terms_) {
    double best = kNegInf;
    if (t.log_p1 > kNegInf) best = std::max(best, t.a);
    if (t.log_p0 > kNegInf) best = std::max(best, t.b);
    m += best;
  }
  return m;
}

void TwoPointSum::LogMgf(double t, double* value, double* d1, double* d2) const {
  double v = 0, m1 = 0, m2 = 0;
  for (const Term& term : terms_) {
    const double x1 = term.log_p1 + t * term.a;
    const double x0 = term.log_p0 + t * term.b;
    const double hi = std::max(x1, x0);
    const double w1 = std::exp(x1 - hi), w0 = std::exp(x0 - hi);
    const double z = w1 + w0;
    v += hi + std::log(z);
    const double q1 = w1 / z, q0 = w0 / z;  // the tilted probabilities
    const double mean = q1 * term.a + q0 * term.b;
    m1 += mean;
    const double d = term.a - term.b;
    m2 += q1 * q0 * d * d;
  }
  *value = v;
  *d1 = m1;
  *d2 = m2;
}

PValue TwoPointSum::UpperTailBound(double s) const {
  if (terms_.empty()) return s <= 0 ? PValue() : PValue::FromLog(kNegInf);
  if (s <= Mean()) return PValue();
  const double max = Max();
  if (s > max + 1e-9 * (1.0 + std::fabs(max))) return PValue::FromLog(kNegInf);
  if (s >= max - 1e-12 * (1.0 + std::fabs(max))) {
    // P(S = max) exactly: every term at its larger value.
    double lp = 0;
    for (const Term& t : terms_) {
      if (t.a > t.b)
        lp += t.log_p1;
      else if (t.b > t.a)
        lp += t.log_p0;
    }
    return PValue::FromLog(lp);
  }
  // Minimise f(t) = log M(t) - t s over t >= 0: f is convex, f'(t) = E_t[S] - s increases from
  // Mean() - s < 0 to Max() - s > 0. Bracket the root, then safeguarded Newton.
  double lo = 0, hi = 1;
  double v, d1, d2;
  for (int i = 0; i < 200; ++i) {
    LogMgf(hi, &v, &d1, &d2);
    if (d1 >= s) break;
    lo = hi;
    hi *= 2;
  }
  double t = 0.5 * (lo + hi);
  for (int i = 0; i < 200; ++i) {
    LogMgf(t, &v, &d1, &d2);
    const double g = d1 - s;
    if (g > 0)
      hi = t;
    else
      lo = t;
    double next = (d2 > 0) ? t - g / d2 : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::fabs(next - t) <= 1e-14 * (1.0 + t)) {
      t = next;
      break;
    }
    t = next;
  }
  LogMgf(t, &v, &d1, &d2);
  // Any t >= 0 gives a valid bound; the minimiser gives the tightest.
  return PValue::FromLog(std::min(0.0, v - t * s));
}

}  // namespace tracemark::stats
