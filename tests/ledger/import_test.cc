// Importing serving logs (ledger/import.h): the documented line shapes give their records, and
// every other shape is refused with a reason, never read as an empty response.
#include "tracemark/ledger/import.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "tracemark/tokenizer/load.h"

namespace tracemark::ledger {
namespace {

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = tokenizer::LoadTokenizer("cl100k_base", TRACEMARK_DATA_DIR);
    TRACEMARK_REQUIRE_DATA(tok.ok(), "the cl100k_base tokenizer data");
    tok_ = *std::move(tok);
  }
  absl::StatusOr<Record> Parse(std::string_view line) const {
    return ParseImportLine(line, defaults_, *tok_);
  }
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  ImportDefaults defaults_{
      .epoch = 2, .epoch_key_id = "kid", .tokenizer = "cl100k_base", .time_us = 5};
};

TEST_F(ImportTest, TextLinesAreTokenizedWithTheServingTokenizer) {
  auto r = Parse(R"j({"account": 42, "prompt": "Sort it.", "completion": "sorted(xs)",)j"
                 R"j( "time": "2026-12-04T14:00:00Z"})j");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->account, std::optional<uint64_t>(42));
  EXPECT_EQ(r->epoch, 2u);
  EXPECT_EQ(r->epoch_key_id, "kid");
  EXPECT_EQ(r->tokenizer, "cl100k_base");
  EXPECT_EQ(r->time_us, 1796392800000000);
  EXPECT_EQ(r->prompt_ids, *tok_->Encode("Sort it."));
  EXPECT_EQ(r->response_ids, *tok_->Encode("sorted(xs)"));
}

TEST_F(ImportTest, IdLinesAnonymousRequestsOtherEpochsAndDefaults) {
  auto r = Parse(R"({"account": null, "response_ids": [1, 2, 100255], "time": 1.5, "epoch": 9})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->account.has_value());
  EXPECT_EQ(r->epoch, 9u);
  EXPECT_EQ(r->epoch_key_id, "");  // another epoch's key id is not the import's
  EXPECT_EQ(r->time_us, 1500000);
  EXPECT_TRUE(r->prompt_ids.empty());
  EXPECT_EQ(r->response_ids, std::vector<int32_t>({1, 2, 100255}));
  auto d = Parse(R"({"completion": "x"})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->account.has_value());
  EXPECT_EQ(d->time_us, 5);
  EXPECT_EQ(d->epoch_key_id, "kid");
}

TEST_F(ImportTest, OtherShapesAreRefusedWithAReason) {
  const struct {
    const char* line;
    const char* says;
  } bad[] = {
      {"", "not a JSON object"},
      {"[1, 2]", "not a JSON object"},
      {"{\"completion\": \"a \xff b\"}", "UTF-8"},
      {R"({"account": 1})", "no \"completion\""},
      {R"({"account": -1, "completion": "x"})", "\"account\" is not a non-negative integer"},
      {R"({"account": "7", "completion": "x"})", "\"account\" is not"},
      {R"({"account": 1.5, "completion": "x"})", "\"account\" is not"},
      {R"({"completion": "x", "response_ids": [1]})", "both"},
      {R"({"response_ids": [1, -2]})", "\"response_ids\" is not"},
      {R"({"response_ids": [100277]})", "\"response_ids\" is over"},
      {R"({"response_ids": "1 2"})", "not an array"},
      {R"({"completion": 7})", "not a string"},
      {R"({"completion": "x", "time": "yesterday"})", "RFC 3339"},
      {R"({"completion": "x", "time": -3})", "seconds since 1970"},
      {R"({"completion": "x", "epoch": 4294967296})", "\"epoch\" is over"},
      {R"({"completion": "x", "user": "alice"})", "unknown field \"user\""},
  };
  for (const auto& b : bad) {
    auto r = Parse(b.line);
    ASSERT_FALSE(r.ok()) << b.line;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << b.line;
    EXPECT_NE(r.status().message().find(b.says), absl::string_view::npos)
        << b.line << ": " << r.status();
  }
}

}  // namespace
}  // namespace tracemark::ledger
