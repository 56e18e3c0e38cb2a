#include "tracemark/watermark/prf.h"

#include <sodium.h>

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace tracemark::watermark {
namespace {

TEST(SipHash, MatchesLibsodium) {
  ASSERT_GE(sodium_init(), 0);
  uint8_t key[16];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i * 7 + 3);
  const SipKey k = SipKeyFromBytes(key);
  for (size_t n = 0; n <= 9; ++n) {
    std::vector<uint32_t> words(n);
    for (size_t i = 0; i < n; ++i) words[i] = static_cast<uint32_t>(0x9E3779B9u * (i + 1) + n);
    std::vector<uint8_t> bytes(4 * n);
    for (size_t i = 0; i < n; ++i) {
      for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<uint8_t>(words[i] >> (8 * b));
    }
    uint8_t out[8];
    crypto_shorthash_siphash24(out, bytes.data(), bytes.size(), key);
    uint64_t want = 0;
    for (int b = 7; b >= 0; --b) want = (want << 8) | out[b];
    EXPECT_EQ(SipHashWords(k, words.data(), n), want) << n;
  }
}

TEST(Mix, KnownAnswersAndUniformBits) {
  // Pinned: Mix is part of the watermark's definition.
  EXPECT_EQ(Mix(0, 0), 0u);
  EXPECT_EQ(Mix(1, 0), 0x4179b061e0c0e0d0ull);
  EXPECT_EQ(Mix(0x0123456789abcdefull, 151935), 0xef391395aac1506bull);
  // Each output bit is balanced over consecutive seeds and tokens.
  std::vector<int> ones(64, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const uint64_t x =
        Mix(static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull, static_cast<uint64_t>(i % 1000));
    for (int b = 0; b < 64; ++b) ones[b] += (x >> b) & 1;
  }
  for (int b = 0; b < 64; ++b) EXPECT_NEAR(ones[b], n / 2, 5 * std::sqrt(n / 4.0)) << b;
}

TEST(Thresholds, ExactProbabilities) {
  EXPECT_EQ(ThresholdProbability(ProbabilityThreshold(0.25)), 0.25);
  EXPECT_EQ(ThresholdProbability(ProbabilityThreshold(0.5)), 0.5);
  EXPECT_NEAR(ThresholdProbability(ProbabilityThreshold(0.1)), 0.1, 1e-15);
  EXPECT_EQ(ProbabilityThreshold(0.0), 0u);
  EXPECT_EQ(ProbabilityThreshold(1.0), ~0ull);
  EXPECT_GT(UnitOpen(0), 0.0);
  EXPECT_LT(UnitOpen(~0ull), 1.0);
  EXPECT_GT(UnitOpenComplement(~0ull), 0.0);
  EXPECT_EQ(MulHiIndex(~0ull, 7), 6u);
}

}  // namespace
}  // namespace tracemark::watermark
