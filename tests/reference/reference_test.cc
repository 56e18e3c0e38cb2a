// End to end on real data: a real tokenizer, a Kneser-Ney model trained on part of the real corpus,
// watermarked generation for an account, then detection from the decoded text alone.
#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "reference_fixture.h"
#include "tracemark/detect/text_detection.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/tokenizer/tiktoken.h"

namespace tracemark::reference {
namespace {

TEST_F(ReferenceTest, WatermarkedTextIsDetectedAndAttributedFromItsText) {
  watermark::Config config;
  config.vocab_size = tok_->vocab_size();
  const watermark::Key master = Master();
  auto wm = *watermark::Watermarker::Create(*watermark::DeriveEpochKey(master, 3), config);
  auto acct = *wm->ForAccount(5);
  ReferenceGenerator gen(model_, tok_);
  GenerateOptions opt;
  opt.max_tokens = 400;
  opt.seed = 11;
  const std::string prompt = "The state of the Union is";
  auto g = gen.Generate(prompt, wm.get(), &acct, opt);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->ids.size(), 400u);
  EXPECT_EQ(g->layer_counts[0], 0u);  // the prompt supplies the context from the first token
  detect::DetectOptions d;
  d.epochs = {0, 1, 2, 3};
  d.prompt = prompt;
  d.account = 5;
  d.account_limit = 1000;
  auto r = detect::DetectText(master, config, *tok_, g->text, d);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(r->provider_p_value.log10(), -6);
  EXPECT_EQ(r->epochs[r->best_provider_epoch].epoch, 3u);
  EXPECT_LT(r->account_p_value.log10(), -3);
  ASSERT_TRUE(r->attributed_account.has_value());
  EXPECT_EQ(*r->attributed_account, 5u);
}

TEST_F(ReferenceTest, PlainTextShowsNothing) {
  watermark::Config config;
  config.vocab_size = tok_->vocab_size();
  ReferenceGenerator gen(model_, tok_);
  GenerateOptions opt;
  opt.max_tokens = 300;
  auto g = gen.Generate("In this year", nullptr, nullptr, opt);
  ASSERT_TRUE(g.ok());
  detect::DetectOptions d;
  d.account = 5;
  auto r = detect::DetectText(Master(), config, *tok_, g->text, d);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->provider_p_value.value(), 1e-4);
  EXPECT_GT(r->account_p_value.value(), 1e-4);
  EXPECT_FALSE(r->attributed_account.has_value());
}

TEST_F(ReferenceTest, TemperatureZeroIsGreedy) {
  ReferenceGenerator gen(model_, tok_);
  GenerateOptions opt;
  opt.temperature = 0;
  opt.max_tokens = 40;
  opt.seed = 1;
  auto a = gen.Generate("The state of the union", nullptr, nullptr, opt);
  opt.seed = 2;
  auto b = gen.Generate("The state of the union", nullptr, nullptr, opt);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->ids, b->ids);  // the seed does not matter
  EXPECT_EQ(a->ids.size(), 40u);
  // Each token is the model's most likely one.
  std::vector<float> lp(static_cast<size_t>(model_->vocab_size()));
  std::vector<int32_t> history = a->prompt_ids;
  for (int32_t id : a->ids) {
    model_->LogProbs(history, absl::MakeSpan(lp));
    EXPECT_EQ(id, std::max_element(lp.begin(), lp.end()) - lp.begin());
    history.push_back(id);
  }
}

TEST_F(ReferenceTest, BadOptionsAreRejected) {
  ReferenceGenerator gen(model_, tok_);
  GenerateOptions opt;
  opt.temperature = -1;
  EXPECT_EQ(gen.Generate("x", nullptr, nullptr, opt).status().code(),
            absl::StatusCode::kInvalidArgument);
  opt.temperature = std::nan("");
  EXPECT_EQ(gen.Generate("x", nullptr, nullptr, opt).status().code(),
            absl::StatusCode::kInvalidArgument);
  opt = {};
  opt.top_p = 1.5;
  EXPECT_FALSE(gen.Generate("x", nullptr, nullptr, opt).ok());
  watermark::Config wrong;
  wrong.vocab_size = 1000;
  std::vector<uint8_t> b(32, 1);
  auto wm = *watermark::Watermarker::Create(*watermark::Key::FromBytes(b), wrong);
  EXPECT_EQ(gen.Generate("x", wm.get(), nullptr, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tracemark::reference
