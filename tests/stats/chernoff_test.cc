#include "tracemark/stats/chernoff.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"
#include "tracemark/stats/tails.h"

namespace tracemark::stats {
namespace {

TEST(TwoPointSum, MomentsAndTrivialCases) {
  TwoPointSum s;
  s.Add(0.5, 1, -1);
  s.Add(0.25, 3, 0);
  EXPECT_DOUBLE_EQ(s.Mean(), 0.75);
  EXPECT_DOUBLE_EQ(s.Variance(), 1.0 + 0.25 * 0.75 * 9);
  EXPECT_DOUBLE_EQ(s.Max(), 4);
  EXPECT_EQ(s.UpperTailBound(0.0).log(), 0.0);
  EXPECT_NEAR(s.UpperTailBound(4.0).value(), 0.5 * 0.25, 1e-12);  // exact at the maximum
  EXPECT_TRUE(std::isinf(s.UpperTailBound(4.5).log()));
}

TEST(TwoPointSum, BoundsTheExactBinomialTailAndIsTight) {
  // n fair +-1 steps: S >= s  <=>  #ones >= (n + s) / 2. The bound must hold, and be within the
  // usual polynomial factor of the exact tail.
  const int n = 400;
  TwoPointSum s;
  for (int i = 0; i < n; ++i) s.Add(0.5, 1, -1);
  for (int thr : {20, 60, 120, 200, 300, 398}) {
    const double bound = s.UpperTailBound(thr).log();
    const double exact = BinomialUpperTail((n + thr) / 2, n, 0.5).log();
    EXPECT_GE(bound, exact - 1e-9) << thr;
    EXPECT_LE(bound - exact, std::log(10.0 * std::sqrt(n)) + 1) << thr;
  }
}

TEST(TwoPointSum, HoldsEmpiricallyForSkewedTerms) {
  // Monte Carlo with a fixed explicit generator: the bound must not be exceeded by the observed
  // frequency (beyond sampling error) at a few thresholds.
  TwoPointSum s;
  std::vector<double> p, a, b;
  uint64_t x = 12345;
  auto next = [&x]() {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  };
  for (int j = 0; j < 50; ++j) {
    const double pj = 0.05 + 0.9 * next();
    p.push_back(pj);
    a.push_back(std::sqrt((1 - pj) / pj));
    b.push_back(-std::sqrt(pj / (1 - pj)));
    s.Add(pj, a.back(), b.back());
  }
  const int trials = 200000;
  for (double thr : {5.0, 10.0, 15.0}) {
    int hits = 0;
    for (int t = 0; t < trials; ++t) {
      double sum = 0;
      for (int j = 0; j < 50; ++j) sum += next() < p[j] ? a[j] : b[j];
      hits += sum >= thr;
    }
    const double freq = static_cast<double>(hits) / static_cast<double>(trials);
    const double bound = s.UpperTailBound(thr).value();
    EXPECT_LE(freq, bound + 4 * std::sqrt(bound / static_cast<double>(trials)) + 1e-5) << thr;
  }
}

}  // namespace
}  // namespace tracemark::stats
