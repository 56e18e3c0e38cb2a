#include "tracemark/watermark/config.h"

#include "gtest/gtest.h"

namespace tracemark::watermark {
namespace {

TEST(Config, DescribeParsesBack) {
  Config c;
  c.vocab_size = 1000;
  c.scheme = Scheme::kSynthId;
  c.synthid.layers = 12;
  c.account.share = 0.3;
  absl::StatusOr<Config> back = ParseConfig(c.Describe(), Config{});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Describe(), c.Describe());
}

TEST(Config, RejectsBadValuesWithTheirNames) {
  Config base;
  base.vocab_size = 10;
  EXPECT_TRUE(base.Validate().ok());
  auto bad = [&](const char* spec, const char* name) {
    absl::StatusOr<Config> c = ParseConfig(spec, base);
    absl::Status s = c.ok() ? c->Validate() : c.status();
    EXPECT_FALSE(s.ok()) << spec;
    EXPECT_NE(std::string(s.message()).find(name), std::string::npos) << s;
  };
  bad("gamma=1.5", "gamma");
  bad("gamma=abc", "gamma");
  bad("h=0", "h");
  bad("scheme=foo", "scheme");
  bad("layers=65", "layers");
  bad("nonsense=1", "nonsense");
  bad("vocab=0", "vocab_size");
  bad("delta=nan", "delta");
  bad("account_share=2", "account_share");
}

}  // namespace
}  // namespace tracemark::watermark
