#include "tracemark/stats/binomial_sum.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tracemark/stats/tails.h"

namespace tracemark::stats {
namespace {

// P(S >= s) by direct dynamic programming over single Bernoulli trials, in double.
std::vector<double> BruteTail(const std::vector<std::pair<int, double>>& terms) {
  std::vector<double> pmf = {1.0};
  for (auto [n, p] : terms) {
    for (int i = 0; i < n; ++i) {
      std::vector<double> next(pmf.size() + 1, 0.0);
      for (size_t j = 0; j < pmf.size(); ++j) {
        next[j] += pmf[j] * (1 - p);
        next[j + 1] += pmf[j] * p;
      }
      pmf = next;
    }
  }
  std::vector<double> tail(pmf.size());
  double acc = 0;
  for (size_t s = pmf.size(); s-- > 0;) tail[s] = acc += pmf[s];
  return tail;
}

TEST(BinomialSumTest, OneTermMatchesTheBinomialTail) {
  BinomialSum sum;
  sum.Add(200, 0.25);
  ASSERT_TRUE(sum.exact());
  for (uint64_t s : {0, 1, 30, 50, 51, 90, 130, 200}) {
    EXPECT_NEAR(sum.UpperTail(s).log(), BinomialUpperTail(s, 200, 0.25).log(), 1e-9) << s;
  }
  EXPECT_EQ(sum.UpperTail(201).log(), -INFINITY);
}

TEST(BinomialSumTest, MixedTermsMatchDirectDynamicProgramming) {
  BinomialSum sum;
  sum.Add(17, 0.5);
  sum.Add(9, 1.0 / 3);
  sum.Add(5, 0.25);
  sum.Add(3, 0.5);  // merged with the first term
  const std::vector<double> brute = BruteTail({{20, 0.5}, {9, 1.0 / 3}, {5, 0.25}});
  EXPECT_EQ(sum.trials(), 34u);
  for (size_t s = 0; s < brute.size(); ++s) {
    EXPECT_NEAR(sum.UpperTail(s).log(), std::log(brute[s]), 1e-10) << s;
  }
}

TEST(BinomialSumTest, ExtremeTailsStayExactBelowTheDoubleRange) {
  BinomialSum sum;
  sum.Add(2000, 0.5);
  sum.Add(500, 0.25);
  ASSERT_TRUE(sum.exact());
  // Every trial succeeding: 2^-2000 * 4^-500, far below 1e-308.
  EXPECT_NEAR(sum.UpperTail(2500).log(), -2000 * std::log(2.0) - 500 * std::log(4.0), 1e-6);
}

TEST(BinomialSumTest, ChernoffBoundIsValidAndUsedForHugeSums) {
  BinomialSum small;
  small.Add(3000, 0.5);
  small.Add(1000, 1.0 / 3);
  ASSERT_TRUE(small.exact());
  BinomialSum huge;
  huge.Add(300000, 0.5);
  huge.Add(100000, 1.0 / 3);
  ASSERT_FALSE(huge.exact());
  // The bound of the huge sum at mean + z sd vs the normal tail: valid (above) and not absurd.
  const double mean = huge.Mean();
  const double sd = std::sqrt(300000 * 0.25 + 100000 * (2.0 / 9));
  const PValue huge_bound = huge.UpperTail(static_cast<uint64_t>(mean + 10 * sd));
  EXPECT_GT(huge_bound.log(), -50.5);  // never tighter than the Gaussian exp(-z^2 / 2) here
  EXPECT_LT(huge_bound.log(), -40.0);
  EXPECT_EQ(huge.UpperTail(static_cast<uint64_t>(mean) - 10).log(), 0.0);
  // Where both apply, the bound is above the exact value.
  for (uint64_t s = 1850; s < 4000; s += 50) {
    const double exact = small.UpperTail(s).log();
    const double bound = small.ChernoffBound(s).log();
    EXPECT_GE(bound, exact - 1e-9) << s;
    // Chernoff is loose by at most a polynomial factor here.
    EXPECT_LT(bound - exact, 8.0) << s;
  }
}

TEST(BinomialSumTest, EmptySumIsZero) {
  BinomialSum sum;
  EXPECT_EQ(sum.UpperTail(0).log(), 0.0);
  EXPECT_EQ(sum.UpperTail(1).log(), -INFINITY);
}

}  // namespace
}  // namespace tracemark::stats
