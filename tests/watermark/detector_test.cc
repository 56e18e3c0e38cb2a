#include "tracemark/watermark/detector.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "test_model.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::watermark {
namespace {

constexpr int32_t kVocab = 2000;

Key EpochKey(uint8_t fill) {
  std::vector<uint8_t> b(32, fill);
  return *Key::FromBytes(b);
}

struct Case {
  const char* name;
  const char* spec;
};
const Case kCases[] = {
    {"kgw-lefthash", "scheme=kgw"},
    {"kgw-selfhash", "scheme=kgw,hash=selfhash"},
    {"gumbel", "scheme=gumbel"},
    {"synthid", "scheme=synthid"},
};

Config ConfigFor(const Case& c) {
  Config base;
  base.vocab_size = kVocab;
  return *ParseConfig(c.spec, base);
}

TEST(Detector, FindsProviderAndAccountInWatermarkedText) {
  for (const Case& c : kCases) {
    const Config config = ConfigFor(c);
    auto wm = *Watermarker::Create(EpochKey(1), config);
    auto det = *Detector::Create(EpochKey(1), config);
    auto acct = *wm->ForAccount(4242);
    const std::vector<int32_t> ids = testing::Generate(wm.get(), &acct, 1200, 77, kVocab);
    TextStatistics stats;
    ASSERT_TRUE(det->Score(ids, 4, &stats).ok());
    const ProviderResult p = det->TestProvider(stats).value();
    EXPECT_LT(p.p_value.log10(), -6) << c.name << " " << p.method;
    // Decode, then confirm each candidate on the independent fingerprint positions.
    const PayloadResult id = det->DecodePayload(stats).value();
    EXPECT_TRUE(id.decoded) << c.name << " " << id.detail;
    std::vector<uint64_t> confirmed;
    for (uint64_t cand : id.candidates) {
      const AccountResult conf = det->TestAccount(stats, *det->ForAccount(cand)).value();
      if (stats::Bonferroni(conf.p_value, id.candidates.size()).log10() < -3)
        confirmed.push_back(cand);
    }
    EXPECT_EQ(confirmed, std::vector<uint64_t>{4242}) << c.name;
    // With the number of issued accounts known, false candidates are rarer still.
    PayloadOptions limited;
    limited.account_limit = 25000;
    EXPECT_EQ(det->DecodePayload(stats, limited).value().account, 4242u) << c.name;
    const AccountResult a = det->TestAccount(stats, *det->ForAccount(4242)).value();
    EXPECT_LT(a.p_value.log10(), -6) << c.name << " score " << a.score;
    // Innocent accounts, whose codewords are independent of the text.
    for (uint64_t other : {0u, 4243u, 99u}) {
      const AccountResult o = det->TestAccount(stats, *det->ForAccount(other)).value();
      EXPECT_GT(o.p_value.value(), 1e-4) << c.name << " account " << other;
    }
  }
}

TEST(Detector, WrongKeyAndPlainTextShowNothing) {
  for (const Case& c : kCases) {
    const Config config = ConfigFor(c);
    auto wm = *Watermarker::Create(EpochKey(1), config);
    auto wrong = *Detector::Create(EpochKey(2), config);
    auto acct = *wm->ForAccount(7);
    const std::vector<int32_t> marked = testing::Generate(wm.get(), &acct, 400, 5, kVocab);
    const std::vector<int32_t> plain = testing::Generate(nullptr, nullptr, 400, 5, kVocab);
    auto right = *Detector::Create(EpochKey(1), config);
    for (const auto& [det, ids] : {std::pair{wrong.get(), marked}, std::pair{right.get(), plain}}) {
      TextStatistics stats;
      ASSERT_TRUE(det->Score(ids, 4, &stats).ok());
      EXPECT_GT(det->TestProvider(stats).value().p_value.value(), 1e-4) << c.name;
      EXPECT_GT(det->TestAccount(stats, *det->ForAccount(7)).value().p_value.value(), 1e-4)
          << c.name;
      EXPECT_FALSE(det->DecodePayload(stats).value().decoded &&
                   det->DecodePayload(stats).value().account == 7);
    }
  }
}

// On text independent of the key, P(p <= alpha) <= alpha (a quick check; the full study with
// 10,000 texts is studies/validity_study).
TEST(Detector, NullPValuesAreValid) {
  for (const Case& c : kCases) {
    const Config config = ConfigFor(c);
    int below_5 = 0, below_1 = 0, acct_below_5 = 0;
    const int n = 400;
    for (int i = 0; i < n; ++i) {
      auto det = *Detector::Create(EpochKey(static_cast<uint8_t>(10 + i % 200)), config);
      const std::vector<int32_t> ids = testing::Generate(nullptr, nullptr, 150, 1000 + i, kVocab);
      TextStatistics stats;
      ASSERT_TRUE(det->Score(ids, 4, &stats).ok());
      const double p = det->TestProvider(stats).value().p_value.value();
      below_5 += p <= 0.05;
      below_1 += p <= 0.01;
      acct_below_5 += det->TestAccount(stats, *det->ForAccount(i)).value().p_value.value() <= 0.05;
    }
    // Binomial(400, 0.05) exceeds 33 with probability < 1e-3.
    EXPECT_LE(below_5, 33) << c.name;
    EXPECT_LE(below_1, 11) << c.name;
    EXPECT_LE(acct_below_5, 33) << c.name;
  }
}

TEST(Detector, StatisticsMergeExactlyAndIgnoreRepeats) {
  const Config config = ConfigFor(kCases[0]);
  auto wm = *Watermarker::Create(EpochKey(1), config);
  auto det = *Detector::Create(EpochKey(1), config);
  auto acct = *wm->ForAccount(1);
  const auto a = testing::Generate(wm.get(), &acct, 200, 1, kVocab);
  const auto b = testing::Generate(wm.get(), &acct, 200, 2, kVocab);
  TextStatistics both, sa, sb;
  ASSERT_TRUE(det->Score(a, 4, &both).ok());
  ASSERT_TRUE(det->Score(b, 4, &both).ok());
  ASSERT_TRUE(det->Score(b, 4, &both).ok());  // a duplicate document adds nothing
  ASSERT_TRUE(det->Score(a, 4, &sa).ok());
  ASSERT_TRUE(det->Score(b, 4, &sb).ok());
  ASSERT_TRUE(sb.Merge(sa).ok());
  EXPECT_EQ(sb.tuples(), both.tuples());
  EXPECT_EQ(det->TestProvider(sb).value().p_value.log(),
            det->TestProvider(both).value().p_value.log());
}

TEST(Detector, RejectsIdsOutsideTheVocabulary) {
  auto det = *Detector::Create(EpochKey(1), ConfigFor(kCases[0]));
  TextStatistics stats;
  const std::vector<int32_t> ids = {1, 2, 3, kVocab, 5};
  EXPECT_EQ(det->Score(ids, 0, &stats).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stats.size(), 0u);
}

}  // namespace
}  // namespace tracemark::watermark

namespace tracemark::watermark {
namespace {

TEST(Detector, RefusesToMixEpochKeysOrConfigurations) {
  const Config a = ConfigFor(kCases[0]);
  Config b = a;
  b.account.fingerprint_slots = 16;  // a smaller layout: mixing would index out of bounds
  auto det_a = *Detector::Create(EpochKey(1), a);
  auto det_b = *Detector::Create(EpochKey(1), b);
  auto det_c = *Detector::Create(EpochKey(2), a);
  const std::vector<int32_t> ids = testing::Generate(nullptr, nullptr, 200, 3, kVocab);
  TextStatistics sa, sb;
  ASSERT_TRUE(det_a->Score(ids, 4, &sa).ok());
  ASSERT_TRUE(det_b->Score(ids, 4, &sb).ok());
  EXPECT_EQ(det_b->TestProvider(sa).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(det_c->DecodePayload(sa).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(det_b->TestAccount(sb, *det_a->ForAccount(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(det_b->Score(ids, 4, &sa).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sa.Merge(sb).code(), absl::StatusCode::kInvalidArgument);
  auto wm_b = *Watermarker::Create(EpochKey(1), b);
  auto acct_a = *det_a->ForAccount(1);
  std::vector<float> row(kVocab, 0.0f);
  const std::vector<int32_t> ctx = {1, 2, 3};
  EXPECT_EQ(wm_b->ProcessDense(&acct_a, ctx, absl::MakeSpan(row), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tracemark::watermark

namespace tracemark::watermark {
namespace {

TEST(Detector, PayloadDecodingNeverTriesIdsAboveTheAccountsIssued) {
  const Config config = ConfigFor(kCases[0]);
  auto wm = *Watermarker::Create(EpochKey(1), config);
  auto det = *Detector::Create(EpochKey(1), config);
  auto acct = *wm->ForAccount(300);
  // Short text: the payload is uncertain, so many symbol vectors are tried.
  const std::vector<int32_t> ids = testing::Generate(wm.get(), &acct, 260, 8, kVocab);
  TextStatistics stats;
  ASSERT_TRUE(det->Score(ids, 4, &stats).ok());
  PayloadOptions opt;
  opt.account_limit = 1000;  // ids below 2^10: id bits 10..23 are zero
  opt.max_candidates = 1000;
  const PayloadResult r = det->DecodePayload(stats, opt).value();
  // With 2 bits a symbol, slots 5..11 carry only id bits that must be zero.
  for (uint32_t j = 5; j < 12; ++j) EXPECT_EQ(r.symbols[j], 0) << "slot " << j;
  for (uint64_t c : r.candidates) EXPECT_LT(c, 1000u);
  const IssuedAccounts issued({300, 17});
  PayloadOptions by_list;
  by_list.issued = &issued;
  by_list.max_candidates = 1000;
  const PayloadResult l = det->DecodePayload(stats, by_list).value();
  for (uint64_t c : l.candidates) EXPECT_TRUE(issued.contains(c)) << c;
  for (uint32_t j = 5; j < 12; ++j) EXPECT_EQ(l.symbols[j], 0) << "slot " << j;  // 300 < 2^9
}

TEST(Detector, ShortOrEmptyTextDecodesNoPayload) {
  auto det = *Detector::Create(EpochKey(1), ConfigFor(kCases[0]));
  TextStatistics empty;
  const PayloadResult r = det->DecodePayload(empty).value();
  EXPECT_FALSE(r.decoded);
  EXPECT_TRUE(r.candidates.empty());
  EXPECT_EQ(r.slots_covered, 0u);
  EXPECT_EQ(det->TestProvider(empty).value().p_value.log(), 0.0);
}

}  // namespace
}  // namespace tracemark::watermark
