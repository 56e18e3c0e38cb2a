#include "tracemark/detect/text_detection.h"

#include <cmath>

#include "../watermark/test_model.h"
#include "gtest/gtest.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::detect {
namespace {

constexpr int32_t kVocab = 2000;

watermark::Key Master() {
  std::vector<uint8_t> b(32, 5);
  return *watermark::Key::FromBytes(b);
}

TEST(DetectIds, FindsTheEpochAndCorrectsForEveryEpochTried) {
  watermark::Config config;
  config.vocab_size = kVocab;
  const watermark::Key master = Master();
  auto wm = *watermark::Watermarker::Create(*watermark::DeriveEpochKey(master, 2), config);
  auto acct = *wm->ForAccount(31);
  const std::vector<int32_t> ids = watermark::testing::Generate(wm.get(), &acct, 1200, 9, kVocab);
  DetectOptions one, four;
  one.epochs = {2};
  four.epochs = {0, 1, 2, 3};
  one.account = four.account = 31;
  one.account_limit = four.account_limit = 1000;
  auto r1 = DetectIds(master, config, ids, 4, one);
  auto r4 = DetectIds(master, config, ids, 4, four);
  ASSERT_TRUE(r1.ok() && r4.ok());
  EXPECT_EQ(r4->epochs[r4->best_provider_epoch].epoch, 2u);
  EXPECT_NEAR(r4->provider_p_value.log(), r1->provider_p_value.log() + std::log(4.0), 1e-9);
  EXPECT_NEAR(r4->account_p_value.log(), r1->account_p_value.log() + std::log(4.0), 1e-9);
  ASSERT_TRUE(r4->attributed_account.has_value());
  EXPECT_EQ(*r4->attributed_account, 31u);
  EXPECT_GE(r4->attribution_tests, 1u);
  EXPECT_LT(r4->provider_p_value.log10(), -10);
}

TEST(DetectIds, ErrorsAreReported) {
  watermark::Config config;
  config.vocab_size = kVocab;
  DetectOptions none;
  none.epochs = {};
  EXPECT_EQ(DetectIds(Master(), config, {1, 2, 3, 4}, 0, none).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DetectIds(Master(), config, {1, 2, 3, kVocab + 5}, 0, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tracemark::detect
