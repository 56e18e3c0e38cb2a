#include "tracemark/refmodel/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace tracemark::refmodel {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<float> LogOf(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(p > 0 ? static_cast<float>(std::log(p)) : kNegInf);
  return out;
}

TEST(SplitMix64Test, MatchesReferenceSequence) {
  // Vigna's splitmix64.c with x = 0.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.NextU64(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.NextU64(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.NextU64(), 0x06c45d188009454fULL);
  SplitMix64 a(12345), b(12345);
  for (int i = 0; i < 100; ++i) {
    const double x = a.NextDouble();
    EXPECT_EQ(x, static_cast<double>(b.NextU64() >> 11) * 0x1.0p-53);
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
  }
}

TEST(TopCandidatesTest, SortsByScoreThenId) {
  const std::vector<float> s = {1.0f, 3.0f, 2.0f, 3.0f, kNegInf, 0.5f, 2.0f};
  EXPECT_EQ(TopCandidates(s, 0, 1.0), (std::vector<int32_t>{1, 3, 2, 6, 0, 5}));
  EXPECT_EQ(TopCandidates(s, 3, 1.0), (std::vector<int32_t>{1, 3, 2}));
  EXPECT_EQ(TopCandidates(s, 1, 1.0), (std::vector<int32_t>{1}));
  EXPECT_EQ(TopCandidates(s, 100, 1.0), (std::vector<int32_t>{1, 3, 2, 6, 0, 5}));
  EXPECT_EQ(TopCandidates(s, -5, 1.0), (std::vector<int32_t>{1, 3, 2, 6, 0, 5}));
  const std::vector<float> nan = {std::nanf(""), 0.0f, kNegInf};
  EXPECT_EQ(TopCandidates(nan, 0, 1.0), (std::vector<int32_t>{1}));
  EXPECT_TRUE(TopCandidates(std::vector<float>{kNegInf, kNegInf}, 0, 0.5).empty());
  EXPECT_TRUE(TopCandidates(std::vector<float>{}, 4, 0.5).empty());
}

TEST(TopCandidatesTest, TopPBoundary) {
  const std::vector<float> lp = LogOf({0.2, 0.5, 0.3, 0.0});
  EXPECT_EQ(TopCandidates(lp, 0, 0.5), (std::vector<int32_t>{1}));
  EXPECT_EQ(TopCandidates(lp, 0, 0.49), (std::vector<int32_t>{1}));
  EXPECT_EQ(TopCandidates(lp, 0, 0.51), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(TopCandidates(lp, 0, 0.8), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(TopCandidates(lp, 0, 0.81), (std::vector<int32_t>{1, 2, 0}));
  EXPECT_EQ(TopCandidates(lp, 0, 0.0), (std::vector<int32_t>{1}));
  EXPECT_EQ(TopCandidates(lp, 0, std::nan("")), (std::vector<int32_t>{1, 2, 0}));
  // With top_k, the mass is renormalised over the k candidates: 0.5 / 0.8 = 0.625.
  EXPECT_EQ(TopCandidates(lp, 2, 0.625), (std::vector<int32_t>{1}));
  EXPECT_EQ(TopCandidates(lp, 2, 0.63), (std::vector<int32_t>{1, 2}));
  // Unnormalised logits give the same answer as their softmax.
  std::vector<float> shifted = lp;
  for (float& x : shifted) x += 7.0f;
  EXPECT_EQ(TopCandidates(shifted, 0, 0.8), (std::vector<int32_t>{1, 2}));
}

TEST(TopCandidatesTest, LargeVocabularyMatchesFullSort) {
  const size_t v = 150000;
  SplitMix64 rng(3);
  std::vector<float> s(v);
  // Few distinct values so that ties are common.
  for (float& x : s) x = -static_cast<float>(rng.NextU64() % 5000) / 100.0f;
  std::vector<int32_t> all(v);
  std::iota(all.begin(), all.end(), 0);
  std::sort(all.begin(), all.end(),
            [&](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  for (int k : {1, 64, 1000}) {
    const std::vector<int32_t> top = TopCandidates(s, k, 1.0);
    ASSERT_EQ(top, std::vector<int32_t>(all.begin(), all.begin() + k)) << k;
  }
  // top_p with no top_k: compare with the prefix computed on the full sort.
  double total = 0;
  for (float x : s) total += std::exp(static_cast<double>(x));
  for (double p : {0.001, 0.1, 0.5, 0.9, 0.999}) {
    double mass = 0;
    size_t n = 0;
    while (mass < p - 1e-6) mass += std::exp(static_cast<double>(s[all[n++]])) / total;
    const std::vector<int32_t> top = TopCandidates(s, 0, p);
    ASSERT_EQ(top, std::vector<int32_t>(all.begin(), all.begin() + n)) << p;
  }
}

TEST(SampleFromLogitsTest, RejectsBadInput) {
  EXPECT_EQ(SampleFromLogits({}, 0.5).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> ok = {0.0f, 1.0f};
  EXPECT_EQ(SampleFromLogits(ok, 1.0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleFromLogits(ok, -0.1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleFromLogits(ok, std::nan("")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleFromLogits(std::vector<float>{kNegInf, kNegInf}, 0.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleFromLogits(std::vector<float>{0.0f, std::nanf("")}, 0.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleFromLogits(std::vector<float>{0.0f, std::numeric_limits<float>::infinity()}, 0.5)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SampleFromLogitsTest, InverseCdfBoundaries) {
  // softmax = {0.25, 0, 0.75}: [0, 0.25) -> 0, [0.25, 1) -> 2; index 1 is never chosen.
  const std::vector<float> logits = {0.0f, kNegInf, static_cast<float>(std::log(3.0))};
  EXPECT_EQ(*SampleFromLogits(logits, 0.0), 0);
  EXPECT_EQ(*SampleFromLogits(logits, 0.2499), 0);
  EXPECT_EQ(*SampleFromLogits(logits, 0.2501), 2);
  EXPECT_EQ(*SampleFromLogits(logits, std::nextafter(1.0, 0.0)), 2);
  const std::vector<float> leading_inf = {kNegInf, kNegInf, 5.0f};
  EXPECT_EQ(*SampleFromLogits(leading_inf, 0.0), 2);
  EXPECT_EQ(*SampleFromLogits(std::vector<float>{-1000.0f}, 0.7), 0);
}

TEST(SampleFromLogitsTest, EmpiricalFrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 0.0f, kNegInf, 2.5f, -1.0f, 0.5f};
  double z = 0;
  for (float x : logits) z += std::exp(static_cast<double>(x));
  SplitMix64 rng(2024);
  constexpr int kDraws = 200000;
  std::vector<int> hits(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) {
    auto s = SampleFromLogits(logits, rng.NextDouble());
    ASSERT_TRUE(s.ok()) << s.status();
    ++hits[*s];
  }
  EXPECT_EQ(hits[2], 0);
  for (size_t i = 0; i < logits.size(); ++i) {
    const double p = std::exp(static_cast<double>(logits[i])) / z;
    const double sd = std::sqrt(p * (1 - p) / kDraws);
    EXPECT_NEAR(static_cast<double>(hits[i]) / kDraws, p, 5 * sd + 1e-12) << i;
  }
  // Same seed, same draws.
  SplitMix64 again(2024);
  SplitMix64 first(2024);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(*SampleFromLogits(logits, again.NextDouble()),
              *SampleFromLogits(logits, first.NextDouble()));
  }
}

TEST(SampleFromLogitsTest, TemperatureIsLogitsOverT) {
  // At T -> small the argmax wins for every uniform below the top's share.
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f};
  std::vector<float> cold;
  for (float x : logits) cold.push_back(x / 0.01f);
  SplitMix64 rng(8);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(*SampleFromLogits(cold, rng.NextDouble()), 1);
}

}  // namespace
}  // namespace tracemark::refmodel
