#include "tracemark/watermark/watermarker.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "test_model.h"

namespace tracemark::watermark {
namespace {

using testing::ModelLogits;

Key EpochKey(uint8_t fill = 1) {
  std::vector<uint8_t> b(32, fill);
  return *Key::FromBytes(b);
}

Config MakeConfig(Scheme s, int32_t vocab = 1000) {
  Config c;
  c.scheme = s;
  c.vocab_size = vocab;
  return c;
}

TEST(Watermarker, RejectsBadInputWithoutModifyingIt) {
  auto wm = *Watermarker::Create(EpochKey(), MakeConfig(Scheme::kKgw, 100));
  const std::vector<int32_t> ctx = {1, 2, 3, 4};
  std::vector<Candidate> empty;
  EXPECT_EQ(wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(empty), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<Candidate> c = {{1, 0.5f}, {2, NAN}};
  EXPECT_EQ(wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(c), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c[0].logit, 0.5f);
  c = {{1, 0.5f}, {100, 1.0f}};
  EXPECT_EQ(wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(c), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  c = {{1, 0.5f}, {-3, 1.0f}};
  EXPECT_FALSE(wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(c), nullptr).ok());
  c = {{1, INFINITY}};
  EXPECT_FALSE(wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(c), nullptr).ok());
  c = {{1, -INFINITY}, {2, -INFINITY}};
  EXPECT_FALSE(wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(c), nullptr).ok());
  std::vector<float> row(99, 0.0f);
  EXPECT_FALSE(wm->ProcessDense(nullptr, ctx, absl::MakeSpan(row), nullptr).ok());
}

TEST(Watermarker, ShortContextLeavesLogitsAlone) {
  auto wm = *Watermarker::Create(EpochKey(), MakeConfig(Scheme::kGumbel, 100));
  std::vector<float> row = ModelLogits(3, 100);
  const std::vector<float> before = row;
  const std::vector<int32_t> ctx = {5, 6};  // h = 3
  auto r = wm->ProcessDense(nullptr, ctx, absl::MakeSpan(row), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->layer, Layer::kNone);
  EXPECT_FALSE(r->token_chosen);
  EXPECT_EQ(row, before);
}

TEST(Watermarker, SparseMatchesDenseAndBatchMatchesRows) {
  for (Scheme s : {Scheme::kKgw, Scheme::kGumbel, Scheme::kSynthId}) {
    const int32_t vocab = 500;
    auto wm = *Watermarker::Create(EpochKey(), MakeConfig(s, vocab));
    auto acct = *wm->ForAccount(9);
    const int b = 16;
    std::vector<float> batch;
    std::vector<int32_t> contexts;
    std::vector<std::vector<float>> rows;
    std::vector<StepResult> expect;
    for (int row = 0; row < b; ++row) {
      const std::vector<int32_t> ctx = {row, row * 7 % vocab, row * 13 % vocab};
      std::vector<float> logits = ModelLogits(row, vocab);
      std::vector<Candidate> cands;
      for (int32_t v = 0; v < vocab; ++v) cands.push_back({v, logits[v]});
      batch.insert(batch.end(), logits.begin(), logits.end());
      contexts.insert(contexts.end(), ctx.begin(), ctx.end());
      auto dense = wm->ProcessDense(&acct, ctx, absl::MakeSpan(logits), nullptr);
      auto sparse = wm->ProcessSparse(&acct, ctx, absl::MakeSpan(cands), nullptr);
      ASSERT_TRUE(dense.ok() && sparse.ok());
      EXPECT_EQ(dense->layer, sparse->layer);
      EXPECT_EQ(dense->token, sparse->token);
      for (int32_t v = 0; v < vocab; ++v) EXPECT_EQ(logits[v], cands[v].logit);
      rows.push_back(logits);
      expect.push_back(*dense);
    }
    std::vector<const AccountKeys*> accts(b, &acct);
    std::vector<StepResult> results(b);
    ASSERT_TRUE(
        wm->ProcessBatch(accts, contexts, absl::MakeSpan(batch), {}, absl::MakeSpan(results)).ok());
    for (int row = 0; row < b; ++row) {
      EXPECT_EQ(results[row].layer, expect[row].layer);
      EXPECT_EQ(results[row].token, expect[row].token);
      EXPECT_TRUE(std::equal(rows[row].begin(), rows[row].end(), batch.begin() + row * vocab));
    }
  }
}

TEST(Watermarker, BatchValidatesEveryRowFirst) {
  auto wm = *Watermarker::Create(EpochKey(), MakeConfig(Scheme::kKgw, 10));
  std::vector<float> logits(20, 1.0f);
  logits[15] = NAN;
  std::vector<int32_t> contexts = {1, 2, 3, 4, 5, 6};
  std::vector<const AccountKeys*> accts(2, nullptr);
  std::vector<StepResult> results(2);
  absl::Status s =
      wm->ProcessBatch(accts, contexts, absl::MakeSpan(logits), {}, absl::MakeSpan(results));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("row 1"), std::string::npos);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(logits[i], 1.0f);
}

// The distortion-free schemes sample exactly from softmax(logits) when the key (here: the
// context) varies: compare frequencies with the probabilities.
TEST(Watermarker, DistortionFreeSchemesSampleTheModelDistribution) {
  for (Scheme s : {Scheme::kGumbel, Scheme::kSynthId}) {
    Config c = MakeConfig(s, 8);
    c.account.share = 0;
    auto wm = *Watermarker::Create(EpochKey(), c);
    const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -INFINITY, 0.2f, 1.5f};
    double z = 0;
    for (float l : logits) z += std::exp(l);
    std::vector<int> counts(8, 0);
    const int n = 40000;
    for (int i = 0; i < n; ++i) {
      std::vector<Candidate> cands;
      for (int32_t v = 0; v < 8; ++v) cands.push_back({v, logits[v]});
      const std::vector<int32_t> ctx = {i % 8, (i / 8) % 8, i / 64};
      c.vocab_size = 8;
      auto r = wm->ProcessSparse(nullptr, ctx, absl::MakeSpan(cands), nullptr);
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(r->token_chosen);
      counts[r->token]++;
    }
    EXPECT_EQ(counts[5], 0);
    for (int v = 0; v < 8; ++v) {
      const double p = std::exp(logits[v]) / z;
      EXPECT_NEAR(counts[v] / static_cast<double>(n), p, 5 * std::sqrt(p * (1 - p) / n) + 1e-4)
          << SchemeName(s) << " token " << v;
    }
  }
}

TEST(Watermarker, LayerSharesFollowTheConfiguration) {
  Config c = MakeConfig(Scheme::kKgw, 1000);
  c.account.share = 0.5;
  c.account.payload_share = 0.4;
  auto wm = *Watermarker::Create(EpochKey(), c);
  auto acct = *wm->ForAccount(1);
  int counts[4] = {0, 0, 0, 0};
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<Candidate> cands = {{1, 0.f}, {2, 0.f}};
    const std::vector<int32_t> ctx = {i % 1000, i / 1000, 7};
    counts[static_cast<int>(
        wm->ProcessSparse(&acct, ctx, absl::MakeSpan(cands), nullptr)->layer)]++;
  }
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
  EXPECT_NEAR(counts[3] / double(n), 0.3, 0.02);
}

TEST(Watermarker, AccountIdsMustFitThePayload) {
  Config c = MakeConfig(Scheme::kKgw);
  c.account.id_bits = 10;
  auto wm = *Watermarker::Create(EpochKey(), c);
  EXPECT_TRUE(wm->ForAccount(1023).ok());
  EXPECT_EQ(wm->ForAccount(1024).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Watermarker, RepeatedContextsAreLeftToTheEngineForDistortionFreeSchemes) {
  Config c = MakeConfig(Scheme::kGumbel, 50);
  c.account.share = 0;
  auto wm = *Watermarker::Create(EpochKey(), c);
  SequenceState state;
  const std::vector<int32_t> ctx = {1, 2, 3};
  std::vector<float> a = ModelLogits(1, 50), b = ModelLogits(1, 50);
  EXPECT_TRUE(wm->ProcessDense(nullptr, ctx, absl::MakeSpan(a), &state)->token_chosen);
  auto second = wm->ProcessDense(nullptr, ctx, absl::MakeSpan(b), &state);
  EXPECT_FALSE(second->token_chosen);
  EXPECT_EQ(second->layer, Layer::kNone);
  EXPECT_EQ(b, ModelLogits(1, 50));
}

}  // namespace
}  // namespace tracemark::watermark
