#include "tracemark/stats/binomial_sum.h"

#include <algorithm>
#include <cmath>

namespace tracemark::stats {
namespace {

// expl() of anything above this stays a normal long double (the minimum is about e^-11355).
constexpr long double kLogFloor = -11000.0L;

}  // namespace

void BinomialSum::Add(uint64_t trials, double p) {
  if (trials == 0) return;
  p = std::clamp(p, 0.0, 1.0);
  for (Term& t : terms_) {
    if (t.p == p) {
      t.n += trials;
      table_built_ = false;
      return;
    }
  }
  terms_.push_back({trials, p});
  table_built_ = false;
}

uint64_t BinomialSum::trials() const {
  uint64_t n = 0;
  for (const Term& t : terms_) n += t.n;
  return n;
}

double BinomialSum::Mean() const {
  double m = 0;
  for (const Term& t : terms_) m += static_cast<double>(t.n) * t.p;
  return m;
}

bool BinomialSum::exact() const {
  // The smallest probability of any single outcome is the product over terms of min(p, 1-p)^n;
  // while its log stays above kLogFloor, every convolution term is a normal long double.
  long double log_min = 0;
  for (const Term& t : terms_) {
    const double q = std::min(t.p, 1.0 - t.p);
    if (q > 0) log_min += static_cast<long double>(t.n) * std::log(static_cast<long double>(q));
  }
  return log_min > kLogFloor;
}

void BinomialSum::BuildTable() const {
  table_built_ = true;
  std::vector<long double> pmf = {1.0L};
  for (const Term& t : terms_) {
    // Binomial(n, p) pmf in extended precision from log-gamma (degenerate p handled exactly).
    std::vector<long double> b(t.n + 1, 0.0L);
    if (t.p <= 0) {
      b[0] = 1;
    } else if (t.p >= 1) {
      b[t.n] = 1;
    } else {
      const long double n = static_cast<long double>(t.n);
      const long double lp = std::log(static_cast<long double>(t.p));
      const long double lq = std::log1p(-static_cast<long double>(t.p));
      for (uint64_t j = 0; j <= t.n; ++j) {
        const long double k = static_cast<long double>(j);
        b[j] = std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1) + k * lp +
                        (n - k) * lq);
      }
    }
    std::vector<long double> out(pmf.size() + t.n, 0.0L);
    for (size_t i = 0; i < pmf.size(); ++i) {
      if (pmf[i] == 0) continue;
      for (size_t j = 0; j < b.size(); ++j) out[i + j] += pmf[i] * b[j];
    }
    pmf = std::move(out);
  }
  // Reverse cumulative sums of positive terms: no cancellation.
  log_tail_.assign(pmf.size(), 0.0);
  long double acc = 0;
  for (size_t s = pmf.size(); s-- > 0;) {
    acc += pmf[s];
    log_tail_[s] = acc > 0 ? static_cast<double>(std::log(acc)) : -INFINITY;
  }
  log_tail_[0] = 0.0;  // P(S >= 0) = 1 exactly, whatever the rounding.
  for (double& v : log_tail_) v = std::min(v, 0.0);
}

PValue BinomialSum::ChernoffBound(uint64_t s) const {
  // log P(S >= s) <= min_{t >= 0} -t s + sum_k n_k log(1 - p_k + p_k e^t); the derivative in t is
  // increasing, so the minimiser is found by bisection.
  const double target = static_cast<double>(s);
  auto derivative = [&](double t) {
    double d = -target;
    for (const Term& k : terms_) {
      if (k.p <= 0) continue;
      const double num = k.p * std::exp(t);
      d += static_cast<double>(k.n) * num / (1.0 - k.p + num);
    }
    return d;
  };
  auto objective = [&](double t) {
    double v = -t * target;
    for (const Term& k : terms_) {
      if (k.p <= 0) continue;
      // log(1 - p + p e^t) = t + log(p + (1 - p) e^-t), stable for large t.
      v += static_cast<double>(k.n) * (t + std::log(k.p + (1.0 - k.p) * std::exp(-t)));
    }
    return v;
  };
  double lo = 0, hi = 1;
  while (derivative(hi) < 0 && hi < 1e4) hi *= 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (derivative(mid) < 0 ? lo : hi) = mid;
  }
  return PValue::FromLog(std::min(0.0, objective(hi)));
}

PValue BinomialSum::UpperTail(uint64_t s) const {
  if (s == 0) return PValue();
  const uint64_t n = trials();
  if (s > n) return PValue::FromLog(-INFINITY);
  if (exact()) {
    if (!table_built_) BuildTable();
    return PValue::FromLog(log_tail_[s]);
  }
  if (static_cast<double>(s) <= Mean()) return PValue();
  if (s == n) {
    // The maximum: every trial succeeds.
    double lp = 0;
    for (const Term& t : terms_) lp += static_cast<double>(t.n) * std::log(t.p);
    return PValue::FromLog(lp);
  }
  return ChernoffBound(s);
}

}  // namespace tracemark::stats
