#include "tracemark/stats/tails.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace tracemark::stats {
namespace {

// log(sum exp(v)) in long double.
long double LogSumExp(const std::vector<long double>& v) {
  long double m = -INFINITY;
  for (auto x : v) m = std::max(m, x);
  long double s = 0;
  for (auto x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// Reference: log P(X >= k) by summing the pmf terms directly.
double ReferenceBinomialTail(int k, int n, double p) {
  std::vector<long double> terms;
  for (int i = k; i <= n; ++i) {
    terms.push_back(std::lgamma((long double)n + 1) - std::lgamma((long double)i + 1) -
                    std::lgamma((long double)(n - i) + 1) + i * std::log((long double)p) +
                    (n - i) * std::log1p(-(long double)p));
  }
  return static_cast<double>(LogSumExp(terms));
}

// Reference: log Q(n, x) = log(e^-x sum_{k<n} x^k / k!) for integer n.
double ReferenceGammaTail(int n, double x) {
  std::vector<long double> terms;
  for (int k = 0; k < n; ++k) {
    terms.push_back(-(long double)x + k * std::log((long double)x) -
                    std::lgamma((long double)k + 1));
  }
  return static_cast<double>(LogSumExp(terms));
}

TEST(BinomialUpperTail, MatchesDirectSummation) {
  for (double p : {0.5, 0.25, 0.1, 1.0 / 3.0}) {
    for (int n : {1, 7, 50, 200, 1000, 3000}) {
      for (int k : {0, 1, n / 4, n / 3, n / 2, (3 * n) / 4, n - 1, n}) {
        if (k <= 0) {
          EXPECT_EQ(BinomialUpperTail(k, n, p).log(), 0.0);
          continue;
        }
        const double got = BinomialUpperTail(k, n, p).log();
        const double want = ReferenceBinomialTail(k, n, p);
        EXPECT_NEAR(got, want, 1e-9 * (1 + std::fabs(want)))
            << "n=" << n << " k=" << k << " p=" << p;
      }
    }
  }
}

TEST(BinomialUpperTail, ExactFarBelowDoubleRange) {
  // P(X >= n) = p^n exactly.
  EXPECT_NEAR(BinomialUpperTail(2000, 2000, 0.5).log(), 2000 * std::log(0.5), 1e-8);
  EXPECT_NEAR(BinomialUpperTail(5000, 5000, 0.25).log(), 5000 * std::log(0.25), 1e-7);
  const PValue p = BinomialUpperTail(2000, 2000, 0.5);
  EXPECT_EQ(p.value(), 0.0);            // underflows as a double...
  EXPECT_EQ(p.ToString(), "8.7e-603");  // ...but is shown exactly.
}

TEST(BinomialUpperTail, EdgeCases) {
  EXPECT_TRUE(std::isinf(BinomialUpperTail(11, 10, 0.5).log()));
  EXPECT_EQ(BinomialUpperTail(3, 10, 1.0).log(), 0.0);
  EXPECT_TRUE(std::isinf(BinomialUpperTail(3, 10, 0.0).log()));
}

TEST(GammaUpperTail, MatchesClosedFormForIntegerShape) {
  for (int n : {1, 2, 10, 100, 1000}) {
    for (double factor : {0.2, 0.9, 1.0, 1.1, 1.5, 3.0, 10.0}) {
      const double x = n * factor;
      const double got = GammaUpperTail(n, x).log();
      const double want = ReferenceGammaTail(n, x);
      EXPECT_NEAR(got, want, 1e-9 * (1 + std::fabs(want))) << "n=" << n << " x=" << x;
    }
  }
  // Exponential: Q(1, x) = e^-x, exact far below 1e-300.
  EXPECT_NEAR(GammaUpperTail(1, 5000).log(), -5000, 1e-9);
}

TEST(IncompleteBeta, ComplementsAddToOne) {
  for (double a : {0.5, 2.0, 30.0, 400.0}) {
    for (double b : {0.7, 3.0, 50.0, 1000.0}) {
      for (double x : {0.01, 0.2, 0.5, 0.8, 0.99}) {
        const double s =
            std::exp(LogIncompleteBeta(a, b, x)) + std::exp(LogIncompleteBetaComplement(a, b, x));
        EXPECT_NEAR(s, 1.0, 1e-12) << a << " " << b << " " << x;
      }
    }
  }
}

}  // namespace
}  // namespace tracemark::stats
