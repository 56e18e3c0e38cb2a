#include "tracemark/refmodel/kneser_ney.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "tracemark/refmodel/sampling.h"

namespace tracemark::refmodel {
namespace {

using Corpus = std::vector<std::vector<int32_t>>;

// A sparse random Markov chain of order `memory` over [0, used) (ids >= used never occur):
// each history has a handful of successors with Zipf-like weights. Deterministic in `seed`.
class MarkovChain {
 public:
  MarkovChain(int32_t used, int memory, uint64_t seed)
      : used_(used), memory_(memory), seed_(seed) {}

  Corpus Generate(int docs, int min_len, int max_len, uint64_t stream) const {
    SplitMix64 rng(seed_ ^ (stream * 0x9e3779b97f4a7c15ULL));
    Corpus corpus;
    for (int d = 0; d < docs; ++d) {
      const int len = min_len + static_cast<int>(rng.NextU64() % (max_len - min_len + 1));
      std::vector<int32_t> doc;
      for (int i = 0; i < len; ++i) doc.push_back(Next(doc, rng.NextDouble()));
      corpus.push_back(doc);
    }
    return corpus;
  }

 private:
  int32_t Next(const std::vector<int32_t>& doc, double u) const {
    uint64_t h = seed_;
    for (int j = 1; j <= memory_; ++j) {
      const uint64_t prev = doc.size() >= static_cast<size_t>(j) ? doc[doc.size() - j] + 1 : 0;
      h = (h ^ prev) * 0xbf58476d1ce4e5b9ULL + 0x94d049bb133111ebULL;
    }
    SplitMix64 successors(h);
    constexpr int kFanOut = 6;
    double weights[kFanOut];
    double total = 0;
    for (int i = 0; i < kFanOut; ++i) total += weights[i] = 1.0 / (i + 1);
    double target = u * total;
    int32_t pick = 0;
    for (int i = 0; i < kFanOut; ++i) {
      pick = static_cast<int32_t>(successors.NextU64() % used_);
      if (target < weights[i]) break;
      target -= weights[i];
    }
    return pick;
  }

  int32_t used_;
  int memory_;
  uint64_t seed_;
};

// The hand-checked corpus (ids 0..3 occur; 4 never does).
Corpus HandCorpus() { return {{0, 1, 0, 1, 0, 1, 0, 1}, {1, 2, 0, 2}, {1, 2}, {3, 0, 1}, {2, 0}}; }

double Prob(const KneserNeyModel& lm, std::vector<int32_t> context, int32_t id) {
  return std::exp(lm.LogProb(context, id));
}

TEST(KneserNeyTest, RejectsBadParameters) {
  const Corpus corpus = HandCorpus();
  EXPECT_EQ(KneserNeyModel::Train(corpus, 5, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KneserNeyModel::Train(corpus, 5, 7).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KneserNeyModel::Train(corpus, 0, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KneserNeyModel::Train(corpus, 3, 3).status().code(),  // id 3 out of range
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KneserNeyModel::Train({{0, -1}}, 3, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KneserNeyModel::Train({{}, {}}, 3, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(KneserNeyModel::Train({{}, {2}}, 3, 6).ok());
}

// Order 2 on HandCorpus(), V = 5.
//
// Unigram continuation counts (distinct left neighbours, plus one if the id opens a document):
//   id 0: {1, 2, 3} + start = 4;   id 1: {0} + start = 2;   id 2: {1, 0} + start = 3;
//   id 3: start = 1;   id 4: 0.   Total 10.
// Count-of-counts n1..n4 = 1, 1, 1, 1, so Y = 1/(1+2) = 1/3 and
//   D1 = 1 - 2Y(1/1) = 1/3,  D2 = 2 - 3Y(1/1) = 1,  D3+ = 3 - 4Y(1/1) = 5/3.
// Backoff to uniform: gamma0 = (5/3 [c=4] + 1 [c=2] + 5/3 [c=3] + 1/3 [c=1]) / 10 = 7/15.
//   p1(0) = (4 - 5/3)/10 + (7/15)/5 = 7/30 + 7/75 = 49/150
//   p1(1) = (2 - 1)/10 + 7/75 = 29/150
//   p1(2) = (3 - 5/3)/10 + 7/75 = 2/15 + 7/75 = 17/75
//   p1(3) = (1 - 1/3)/10 + 7/75 = 4/25
//   p1(4) = 7/75
// Bigram raw counts: (0,1)=5 (1,0)=3 (1,2)=2 (2,0)=2 (0,2)=1 (3,0)=1, so n1..n4 = 2, 2, 1, 0,
//   Y = 2/(2+4) = 1/3,  D1 = 1 - 2Y(2/2) = 1/3,  D2 = 2 - 3Y(1/2) = 3/2,  D3+ = 3 - 0 = 3.
// Context [1]: followers 0 (c=3) and 2 (c=2), total 5, gamma = (3 + 3/2)/5 = 9/10.
//   p(0|1) = (3-3)/5 + 9/10 * 49/150 = 147/500
//   p(2|1) = (2-3/2)/5 + 9/10 * 17/75 = 1/10 + 51/250 = 38/125
//   p(4|1) = 9/10 * 7/75 = 21/250
// Context [0]: followers 1 (c=5) and 2 (c=1), total 6, gamma = (3 + 1/3)/6 = 5/9.
//   p(1|0) = (5-3)/6 + 5/9 * 29/150 = 1/3 + 29/270 = 119/270
//   p(2|0) = (1-1/3)/6 + 5/9 * 17/75 = 1/9 + 17/135 = 32/135
// Context [4] (never seen): the unigram distribution.
TEST(KneserNeyTest, MatchesHandComputedBigramModel) {
  auto lm = KneserNeyModel::Train(HandCorpus(), 5, 2);
  ASSERT_TRUE(lm.ok()) << lm.status();
  constexpr double kTol = 1e-6;
  const auto d1 = lm->Discounts(1);
  EXPECT_NEAR(d1[0], 1.0 / 3, 1e-12);
  EXPECT_NEAR(d1[1], 1.0, 1e-12);
  EXPECT_NEAR(d1[2], 5.0 / 3, 1e-12);
  const auto d2 = lm->Discounts(2);
  EXPECT_NEAR(d2[0], 1.0 / 3, 1e-12);
  EXPECT_NEAR(d2[1], 1.5, 1e-12);
  EXPECT_NEAR(d2[2], 3.0, 1e-12);
  EXPECT_EQ(lm->NumNgrams(1), 4u);
  EXPECT_EQ(lm->NumNgrams(2), 6u);

  EXPECT_NEAR(Prob(*lm, {}, 0), 49.0 / 150, kTol);
  EXPECT_NEAR(Prob(*lm, {}, 1), 29.0 / 150, kTol);
  EXPECT_NEAR(Prob(*lm, {}, 2), 17.0 / 75, kTol);
  EXPECT_NEAR(Prob(*lm, {}, 3), 4.0 / 25, kTol);
  EXPECT_NEAR(Prob(*lm, {}, 4), 7.0 / 75, kTol);
  EXPECT_NEAR(Prob(*lm, {1}, 0), 147.0 / 500, kTol);
  EXPECT_NEAR(Prob(*lm, {1}, 2), 38.0 / 125, kTol);
  EXPECT_NEAR(Prob(*lm, {1}, 4), 21.0 / 250, kTol);
  EXPECT_NEAR(Prob(*lm, {0}, 1), 119.0 / 270, kTol);
  EXPECT_NEAR(Prob(*lm, {0}, 2), 32.0 / 135, kTol);
  EXPECT_NEAR(Prob(*lm, {4}, 0), 49.0 / 150, kTol);
  // Only the last id matters at order 2; out-of-range context ids cut the history.
  EXPECT_DOUBLE_EQ(lm->LogProb({3, 2, 1}, 2), lm->LogProb({1}, 2));
  EXPECT_DOUBLE_EQ(lm->LogProb({1, 99}, 2), lm->LogProb({}, 2));
  EXPECT_EQ(lm->LogProb({1}, 5), -INFINITY);
  EXPECT_EQ(lm->LogProb({1}, -1), -INFINITY);

  std::vector<float> out(5);
  lm->LogProbs(std::vector<int32_t>{1}, absl::MakeSpan(out));
  EXPECT_NEAR(std::exp(out[2]), 38.0 / 125, kTol);
  EXPECT_NEAR(std::exp(out[3]), 9.0 / 10 * 4 / 25, kTol);
}

// Clamping: at order 3 the bigram level uses continuation counts (0,1)=3 (1,0)=1 (1,2)=1
// (2,0)=2 (0,2)=1 (3,0)=1, so n1..n4 = 4, 1, 1, 0, Y = 4/6 and D2 = 2 - 3Y(1/1) = 0, clamped
// up to 0.1; D3+ = 3. The trigram level has n2 = 0, so D2 falls back to 2/2 = 1.
TEST(KneserNeyTest, DegenerateDiscountsFollowTheDocumentedFallbacks) {
  auto lm = KneserNeyModel::Train(HandCorpus(), 5, 3);
  ASSERT_TRUE(lm.ok()) << lm.status();
  EXPECT_NEAR(lm->Discounts(2)[0], 2.0 / 3, 1e-12);
  EXPECT_NEAR(lm->Discounts(2)[1], 0.1, 1e-12);
  EXPECT_NEAR(lm->Discounts(2)[2], 3.0, 1e-12);
  EXPECT_NEAR(lm->Discounts(3)[1], 1.0, 1e-12);
  // p(0 | 3 0) from the order-3 model, computed with exact fractions: 539/1800.
  EXPECT_NEAR(Prob(*lm, {3, 0}, 0), 539.0 / 1800, 1e-6);
  EXPECT_NEAR(Prob(*lm, {1}, 2), 143.0 / 450, 1e-6);
}

// A direct, slow transcription of the model's definition, used to cross-check the trie.
class ReferenceModel {
 public:
  ReferenceModel(const Corpus& docs, int32_t v, int order) : v_(v), order_(order) {
    counts_.resize(order + 1);
    std::map<std::vector<int32_t>, std::set<int32_t>> left;  // -1 = document start
    for (const auto& d : docs) {
      for (size_t i = 0; i < d.size(); ++i) {
        for (int n = 1; n <= order && static_cast<size_t>(n) <= i + 1; ++n) {
          const size_t s = i + 1 - n;
          std::vector<int32_t> g(d.begin() + s, d.begin() + i + 1);
          if (n == order) {
            ++counts_[n][g];
          } else {
            left[g].insert(s > 0 ? d[s - 1] : -1);
          }
        }
      }
    }
    for (const auto& [g, l] : left) counts_[g.size()][g] = static_cast<uint32_t>(l.size());
    discounts_.resize(order + 1);
    for (int n = 1; n <= order; ++n) {
      double nk[5] = {0, 0, 0, 0, 0};
      for (const auto& [g, c] : counts_[n]) {
        if (c <= 4) ++nk[c];
      }
      const double y = nk[1] + 2 * nk[2] > 0 ? nk[1] / (nk[1] + 2 * nk[2]) : 0;
      for (int k = 1; k <= 3; ++k) {
        const double d = nk[k] > 0 ? k - (k + 1) * y * nk[k + 1] / nk[k] : k / 2.0;
        discounts_[n][k - 1] = std::clamp(d, 0.1, static_cast<double>(k));
      }
    }
  }

  double Prob(std::vector<int32_t> ctx, int32_t w) const {
    if (ctx.size() > static_cast<size_t>(order_ - 1))
      ctx.erase(ctx.begin(), ctx.end() - (order_ - 1));
    return P(ctx, w);
  }

 private:
  double P(const std::vector<int32_t>& h, int32_t w) const {
    const int n = static_cast<int>(h.size()) + 1;
    const double lower = h.empty() ? 1.0 / v_ : P(std::vector<int32_t>(h.begin() + 1, h.end()), w);
    double total = 0, mass = 0, own = 0;
    for (auto it = counts_[n].lower_bound(h); it != counts_[n].end(); ++it) {
      if (!std::equal(h.begin(), h.end(), it->first.begin())) break;
      const double c = it->second;
      const double d = discounts_[n][std::min<uint32_t>(it->second, 3) - 1];
      total += c;
      mass += d;
      if (it->first.back() == w) own = std::max(c - d, 0.0);
    }
    if (total == 0) return lower;
    return own / total + mass / total * lower;
  }

  int32_t v_;
  int order_;
  std::vector<std::map<std::vector<int32_t>, uint32_t>> counts_;
  std::vector<std::array<double, 3>> discounts_;
};

TEST(KneserNeyTest, AgreesWithReferenceTranscriptionAtEveryOrder) {
  const int32_t v = 40;
  const Corpus corpus = MarkovChain(/*used=*/30, /*memory=*/2, /*seed=*/7).Generate(60, 1, 40, 1);
  SplitMix64 rng(99);
  for (int order = 2; order <= 6; ++order) {
    auto lm = KneserNeyModel::Train(corpus, v, order);
    ASSERT_TRUE(lm.ok()) << lm.status();
    const ReferenceModel ref(corpus, v, order);
    for (int trial = 0; trial < 60; ++trial) {
      // Contexts taken from the corpus (so long histories are found) or random.
      std::vector<int32_t> ctx;
      const auto& doc = corpus[rng.NextU64() % corpus.size()];
      const size_t len = rng.NextU64() % order;
      if (trial % 3 != 0 && doc.size() >= len) {
        const size_t start = rng.NextU64() % (doc.size() - len + 1);
        ctx.assign(doc.begin() + start, doc.begin() + start + len);
      } else {
        for (size_t i = 0; i < len; ++i) ctx.push_back(static_cast<int32_t>(rng.NextU64() % v));
      }
      std::vector<float> out(v);
      lm->LogProbs(ctx, absl::MakeSpan(out));
      for (int32_t w = 0; w < v; ++w) {
        const double expected = ref.Prob(ctx, w);
        ASSERT_NEAR(std::exp(lm->LogProb(ctx, w)), expected, 2e-6 * expected)
            << "order " << order << " trial " << trial << " id " << w;
        ASSERT_NEAR(std::exp(out[w]), expected, 2e-6 * expected)
            << "order " << order << " trial " << trial << " id " << w;
      }
    }
  }
}

TEST(KneserNeyTest, DistributionsSumToOneAtEveryOrder) {
  const int32_t v = 300;  // ids >= 200 never occur
  const Corpus corpus = MarkovChain(200, 3, 11).Generate(200, 5, 120, 2);
  SplitMix64 rng(5);
  for (int order = 2; order <= 6; ++order) {
    auto lm = KneserNeyModel::Train(corpus, v, order);
    ASSERT_TRUE(lm.ok()) << lm.status();
    std::vector<float> out(v);
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<int32_t> ctx;
      const auto& doc = corpus[rng.NextU64() % corpus.size()];
      const size_t len = std::min<size_t>(rng.NextU64() % (order + 2), doc.size());
      if (trial % 2 == 0) {
        ctx.assign(doc.end() - len, doc.end());
      } else {
        for (size_t i = 0; i < len; ++i) ctx.push_back(static_cast<int32_t>(rng.NextU64() % v));
      }
      lm->LogProbs(ctx, absl::MakeSpan(out));
      double sum = 0;
      for (float x : out) {
        ASSERT_TRUE(std::isfinite(x));
        sum += std::exp(static_cast<double>(x));
      }
      EXPECT_NEAR(sum, 1.0, 1e-4) << "order " << order << " trial " << trial;
      // A context longer than order-1 ids scores like its last order-1 ids.
      if (ctx.size() >= static_cast<size_t>(order)) {
        std::vector<float> shorter(v);
        lm->LogProbs(absl::MakeConstSpan(ctx).subspan(ctx.size() - (order - 1)),
                     absl::MakeSpan(shorter));
        EXPECT_EQ(out, shorter);
      }
    }
  }
}

TEST(KneserNeyTest, LogProbsAgreesWithLogProb) {
  const int32_t v = 500;
  const Corpus corpus = MarkovChain(400, 2, 3).Generate(100, 10, 200, 3);
  auto lm = KneserNeyModel::Train(corpus, v, 4);
  ASSERT_TRUE(lm.ok()) << lm.status();
  std::vector<float> out(v);
  for (size_t start : {0u, 5u, 17u}) {
    const auto& doc = corpus[start];
    for (size_t len = 0; len <= 4; ++len) {
      const absl::Span<const int32_t> ctx = absl::MakeConstSpan(doc).subspan(0, len);
      lm->LogProbs(ctx, absl::MakeSpan(out));
      for (int32_t w = 0; w < v; ++w) {
        ASSERT_NEAR(out[w], lm->LogProb(ctx, w), 1e-5) << "len " << len << " id " << w;
      }
    }
  }
}

TEST(KneserNeyTest, OneIdContextIsConsistent) {
  // A one-id context gives the same answer alone, after an out-of-range id (which cuts the
  // history) and through LogProbs().
  const Corpus corpus = MarkovChain(50, 1, 21).Generate(80, 5, 60, 4);
  auto lm = KneserNeyModel::Train(corpus, 60, 4);
  ASSERT_TRUE(lm.ok()) << lm.status();
  for (int32_t a = 0; a < 60; ++a) {
    for (int32_t w = 0; w < 60; w += 7) {
      EXPECT_DOUBLE_EQ(lm->LogProb({a}, w), lm->LogProb({-1, a}, w));
      EXPECT_DOUBLE_EQ(lm->LogProb({a}, w), lm->LogProb({60, a}, w));
    }
    std::vector<float> out(60);
    lm->LogProbs(std::vector<int32_t>{a}, absl::MakeSpan(out));
    for (int32_t w = 0; w < 60; ++w) EXPECT_NEAR(out[w], lm->LogProb({a}, w), 1e-5);
  }
}

TEST(KneserNeyTest, UnseenIdsKeepNonZeroProbability) {
  auto lm = KneserNeyModel::Train({{0, 1, 2, 0, 1, 2}}, 1000, 3);
  ASSERT_TRUE(lm.ok()) << lm.status();
  std::vector<float> out(1000);
  lm->LogProbs(std::vector<int32_t>{0, 1}, absl::MakeSpan(out));
  for (float x : out) EXPECT_TRUE(std::isfinite(x));
  EXPECT_GT(out[2], out[999] + 3);  // the observed continuation dominates
}

TEST(KneserNeyTest, HeldOutTextBeatsShuffledText) {
  const MarkovChain chain(300, 1, 77);
  const Corpus train = chain.Generate(400, 20, 200, 10);
  const Corpus held_out = chain.Generate(20, 100, 100, 11);
  auto lm = KneserNeyModel::Train(train, 300, 4);
  ASSERT_TRUE(lm.ok()) << lm.status();
  std::vector<int32_t> text;
  for (const auto& d : held_out) text.insert(text.end(), d.begin(), d.end());
  std::vector<int32_t> shuffled = text;
  SplitMix64 rng(1);
  for (size_t i = shuffled.size() - 1; i > 0; --i) {
    std::swap(shuffled[i], shuffled[rng.NextU64() % (i + 1)]);
  }
  const double ppl = lm->Perplexity(text, 3);
  const double ppl_shuffled = lm->Perplexity(shuffled, 3);
  EXPECT_LT(ppl, 0.5 * ppl_shuffled) << ppl << " vs " << ppl_shuffled;
  EXPECT_GT(ppl, 1.0);
  EXPECT_TRUE(std::isnan(lm->Perplexity(text, text.size())));
  EXPECT_EQ(lm->Perplexity(std::vector<int32_t>{1, 300}), INFINITY);
  // Perplexity is exp of the mean negative log-probability.
  const std::vector<int32_t> three = {text[0], text[1], text[2]};
  const double mean = -(lm->LogProb({}, three[0]) + lm->LogProb({three[0]}, three[1]) +
                        lm->LogProb({three[0], three[1]}, three[2])) /
                      3;
  EXPECT_NEAR(lm->Perplexity(three), std::exp(mean), 1e-9 * std::exp(mean));
  EXPECT_NEAR(lm->Perplexity(three, 2), std::exp(-lm->LogProb({three[0], three[1]}, three[2])),
              1e-9);
}

class KneserNeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("kn_test_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void WriteAll(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  std::filesystem::path dir_;
};

TEST_F(KneserNeyFileTest, SaveLoadRoundTripIsExact) {
  const Corpus corpus = MarkovChain(150, 2, 5).Generate(100, 1, 80, 6);
  auto lm = KneserNeyModel::Train(corpus, 170, 5);
  ASSERT_TRUE(lm.ok()) << lm.status();
  const std::string path = (dir_ / "model.tmkn").string();
  ASSERT_TRUE(lm->Save(path).ok());
  auto loaded = KneserNeyModel::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->order(), 5);
  EXPECT_EQ(loaded->vocab_size(), 170);
  for (int n = 1; n <= 5; ++n) {
    EXPECT_EQ(loaded->NumNgrams(n), lm->NumNgrams(n));
    EXPECT_EQ(loaded->Discounts(n), lm->Discounts(n));
  }
  std::vector<float> a(170), b(170);
  for (const auto& doc : corpus) {
    for (size_t len = 0; len <= std::min<size_t>(doc.size(), 6); ++len) {
      const auto ctx = absl::MakeConstSpan(doc).subspan(0, len);
      lm->LogProbs(ctx, absl::MakeSpan(a));
      loaded->LogProbs(ctx, absl::MakeSpan(b));
      ASSERT_EQ(a, b);
    }
  }
  // Saving again over the same path replaces it and leaves no temporary file behind.
  ASSERT_TRUE(loaded->Save(path).ok());
  EXPECT_EQ(ReadAll(path), [&] {
    const std::string other = (dir_ / "other.tmkn").string();
    EXPECT_TRUE(lm->Save(other).ok());
    return ReadAll(other);
  }());
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST_F(KneserNeyFileTest, TruncatedAndCorruptFilesFailCleanly) {
  auto lm = KneserNeyModel::Train(HandCorpus(), 5, 3);
  ASSERT_TRUE(lm.ok());
  const std::string path = (dir_ / "model.tmkn").string();
  ASSERT_TRUE(lm->Save(path).ok());
  const std::string good = ReadAll(path);
  ASSERT_GT(good.size(), 64u);
  const std::string bad = (dir_ / "bad.tmkn").string();

  for (size_t cut = 0; cut < good.size(); ++cut) {
    WriteAll(bad, good.substr(0, cut));
    const auto status = KneserNeyModel::Load(bad).status();
    ASSERT_FALSE(status.ok()) << "cut " << cut;
    EXPECT_TRUE(status.code() == absl::StatusCode::kDataLoss ||
                status.code() == absl::StatusCode::kInvalidArgument)
        << status;
  }
  WriteAll(bad, good + "x");
  EXPECT_EQ(KneserNeyModel::Load(bad).status().code(), absl::StatusCode::kDataLoss);

  // Every single-byte corruption after the magic and version is caught.
  for (size_t i = 12; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x40);
    WriteAll(bad, flipped);
    const auto status = KneserNeyModel::Load(bad).status();
    ASSERT_FALSE(status.ok()) << "byte " << i;
    EXPECT_TRUE(status.code() == absl::StatusCode::kDataLoss ||
                status.code() == absl::StatusCode::kInvalidArgument)
        << status;
  }
  std::string wrong_magic = good;
  wrong_magic[0] = 'X';
  WriteAll(bad, wrong_magic);
  EXPECT_EQ(KneserNeyModel::Load(bad).status().code(), absl::StatusCode::kInvalidArgument);
  std::string wrong_version = good;
  wrong_version[8] = 2;
  WriteAll(bad, wrong_version);
  const auto version_status = KneserNeyModel::Load(bad).status();
  EXPECT_EQ(version_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(version_status.message().find("version"), std::string::npos) << version_status;

  EXPECT_EQ(KneserNeyModel::Load((dir_ / "missing.tmkn").string()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(lm->Save((dir_ / "no_such_dir" / "m.tmkn").string()).ok());
}

TEST(KneserNeyTest, LargeVocabularyStaysNormalised) {
  // V = 100k with a Zipf-ish Markov chain over the first 20k ids.
  const int32_t v = 100000;
  const Corpus corpus = MarkovChain(20000, 2, 9).Generate(200, 100, 1000, 12);
  auto lm = KneserNeyModel::Train(corpus, v, 4);
  ASSERT_TRUE(lm.ok()) << lm.status();
  std::vector<float> out(v);
  for (size_t d = 0; d < 10; ++d) {
    const auto& doc = corpus[d];
    lm->LogProbs(absl::MakeConstSpan(doc).subspan(0, 3), absl::MakeSpan(out));
    double sum = 0;
    for (float x : out) sum += std::exp(static_cast<double>(x));
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }
}

}  // namespace
}  // namespace tracemark::refmodel
