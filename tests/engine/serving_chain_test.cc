// The serving chain's own contract (engine/serving_chain.h): what it refuses, with nothing
// modified, and the order and state it keeps. Adapter-against-chain equality is in
// tests/reference/adapters_test.cc, tests/llama/ and tests/python/.
#include "tracemark/engine/serving_chain.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "testing/ledger_records.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::engine {
namespace {

using watermark::Candidate;

std::unique_ptr<watermark::Watermarker> MakeWatermarker(int32_t vocab, const char* spec = "") {
  std::vector<uint8_t> bytes(32, 3);
  watermark::Config base;
  base.vocab_size = vocab;
  auto config = watermark::ParseConfig(spec, base);
  EXPECT_TRUE(config.ok()) << config.status();
  return *watermark::Watermarker::Create(*watermark::Key::FromBytes(bytes), *config);
}

TEST(ServingChainTest, NeedsAStageAndOneVocabulary) {
  EXPECT_EQ(ServingChain::Create(nullptr, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto tok = tokenizer::LoadTokenizer("tiktoken:r50k_base", TRACEMARK_DATA_DIR);
  TRACEMARK_REQUIRE_DATA(tok.ok(), "the r50k_base tokenizer data");
  auto canary = *canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), **tok);
  auto other = MakeWatermarker(1000);
  EXPECT_EQ(ServingChain::Create(other.get(), canary.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto wm = MakeWatermarker((*tok)->vocab_size());
  auto both = ServingChain::Create(wm.get(), canary.get());
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->history_width(), canary::CanaryProcessor::kHistoryIds);
  auto alone = ServingChain::Create(nullptr, canary.get());
  ASSERT_TRUE(alone.ok());  // canary phrasings alone
  EXPECT_EQ(alone->vocab_size(), (*tok)->vocab_size());
  EXPECT_EQ(ServingChain::Create(wm.get())->history_width(), 3u);
}

TEST(ServingChainTest, InvalidStepsAreRefusedWithNothingModified) {
  auto wm = MakeWatermarker(1000);
  const ServingChain chain = *ServingChain::Create(wm.get());
  auto account = *wm->ForAccount(5);
  const std::vector<int32_t> history = {1, 2, 3, 4};
  Response response;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const std::vector<Candidate>& bad : std::vector<std::vector<Candidate>>{
           {},                         // empty
           {{1, 0.5f}, {2, nan}},      // NaN
           {{1, 0.5f}, {2, inf}},      // +inf
           {{1, -inf}, {2, -inf}},     // every logit masked
           {{1, 0.5f}, {1000, 0.1f}},  // id outside the vocabulary
       }) {
    std::vector<Candidate> c = bad;
    EXPECT_EQ(chain.ProcessSparse(&account, history, absl::MakeSpan(c), &response).status().code(),
              absl::StatusCode::kInvalidArgument);
    for (size_t i = 0; i < c.size(); ++i) {
      EXPECT_EQ(c[i].id, bad[i].id);
      EXPECT_TRUE(c[i].logit == bad[i].logit ||
                  (std::isnan(c[i].logit) && std::isnan(bad[i].logit)));
    }
  }
  std::vector<float> short_row(999, 0.0f);
  EXPECT_EQ(
      chain.ProcessDense(&account, history, absl::MakeSpan(short_row), &response).status().code(),
      absl::StatusCode::kInvalidArgument);
  auto foreign_wm = MakeWatermarker(1000, "scheme=gumbel");
  auto foreign = *foreign_wm->ForAccount(5);
  std::vector<float> row(1000, 0.0f);
  EXPECT_EQ(chain.ProcessDense(&foreign, history, absl::MakeSpan(row), &response).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(row, std::vector<float>(1000, 0.0f));
}

TEST(ServingChainTest, BatchRowsAreValidatedFirstAndNeedTheHistoryWidth) {
  auto wm = MakeWatermarker(1000);
  const ServingChain chain = *ServingChain::Create(wm.get());
  auto account = *wm->ForAccount(5);
  const watermark::AccountKeys* accounts[] = {&account, nullptr};
  std::vector<float> logits(2000, 0.25f);
  logits[1500] = std::numeric_limits<float>::quiet_NaN();  // row 1 is bad
  const std::vector<float> before = logits;
  std::vector<Step> results(2);
  const std::vector<int32_t> histories = {7, 8, 9, -1, 4, 5};
  absl::Status s = chain.ProcessBatch(accounts, histories, 3, absl::MakeSpan(logits), {},
                                      absl::MakeSpan(results));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("row 1"), absl::string_view::npos) << s;
  EXPECT_EQ(std::memcmp(logits.data(), before.data(), logits.size() * sizeof(float)), 0);
  logits[1500] = 0.25f;
  const std::vector<int32_t> narrow = {8, 9, 4, 5};
  EXPECT_EQ(
      chain.ProcessBatch(accounts, narrow, 2, absl::MakeSpan(logits), {}, absl::MakeSpan(results))
          .code(),
      absl::StatusCode::kInvalidArgument);
  // Row 1's history is too short (a negative id marks the start): its logits stay as they were.
  ASSERT_TRUE(
      chain
          .ProcessBatch(accounts, histories, 3, absl::MakeSpan(logits), {}, absl::MakeSpan(results))
          .ok());
  EXPECT_EQ(results[1].layer, watermark::Layer::kNone);
  EXPECT_EQ(std::vector<float>(logits.begin() + 1000, logits.end()),
            std::vector<float>(1000, 0.25f));
}

TEST(ServingChainTest, TheChainIsTheCanaryThenTheWatermark) {
  auto tok = tokenizer::LoadTokenizer("tiktoken:r50k_base", TRACEMARK_DATA_DIR);
  TRACEMARK_REQUIRE_DATA(tok.ok(), "the r50k_base tokenizer data");
  const int32_t vocab = (*tok)->vocab_size();
  auto wm = MakeWatermarker(vocab);
  auto canary = *canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), **tok);
  const ServingChain chain = *ServingChain::Create(wm.get(), canary.get());
  auto account = *wm->ForAccount(11);
  const canary::CanaryKey key = canary::CanaryKey::FromAccountKeys(account);
  std::vector<int32_t> history = *(*tok)->Encode("We met, and");
  Response response;
  canary::CanaryState canary_state;
  watermark::SequenceState seen;
  int moved = 0;
  for (int step = 0; step < 40; ++step) {
    std::vector<float> row(static_cast<size_t>(vocab));
    for (int32_t i = 0; i < vocab; ++i)
      row[static_cast<size_t>(i)] =
          std::sin(0.37f * static_cast<float>(i) + static_cast<float>(step));
    std::vector<float> by_hand = row;
    auto r = chain.ProcessDense(&account, history, absl::MakeSpan(row), &response);
    ASSERT_TRUE(r.ok()) << r.status();
    const int n = *canary->ProcessDense(&key, history, absl::MakeSpan(by_hand), &canary_state);
    auto w = wm->ProcessDense(&account, history, absl::MakeSpan(by_hand), &seen);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(r->canary_moves, n);
    EXPECT_EQ(r->layer, w->layer);
    ASSERT_EQ(std::memcmp(row.data(), by_hand.data(), row.size() * sizeof(float)), 0) << step;
    moved += n;
    size_t best = 0;
    for (size_t i = 1; i < row.size(); ++i) best = row[i] > row[best] ? i : best;
    history.push_back(static_cast<int32_t>(best));
  }
  EXPECT_GT(moved, 0);
  // Anonymous: no canary, provider layer only.
  std::vector<float> row(static_cast<size_t>(vocab), 0.5f);
  auto anon = chain.ProcessDense(nullptr, history, absl::MakeSpan(row), nullptr);
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->canary_moves, 0);
}

TEST(ServingChainTest, EndResponseWritesOneLedgerRecordAndResetsTheResponse) {
  char dir_template[] = "/tmp/tracemark_chain_ledger_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  auto writer = ledger::Writer::Open(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ(ServingChain::Create(nullptr, nullptr, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto wm = MakeWatermarker(1000);
  const LedgerStage no_writer{nullptr, 0, "x"};
  EXPECT_EQ(ServingChain::Create(wm.get(), nullptr, &no_writer).status().code(),
            absl::StatusCode::kInvalidArgument);
  const LedgerStage stage{writer->get(), 4, "tiktoken:r50k_base"};
  const ServingChain chain = *ServingChain::Create(wm.get(), nullptr, &stage);
  auto account = *wm->ForAccount(77);
  const std::vector<int32_t> prompt = {9, 8, 7, 6, 5};
  std::vector<int32_t> history = prompt, response_ids;
  Response response;
  for (int step = 0; step < 6; ++step) {
    std::vector<float> row(1000);
    for (size_t i = 0; i < row.size(); ++i) row[i] = std::cos(0.1f * static_cast<float>(i + step));
    ASSERT_TRUE(chain.ProcessDense(&account, history, absl::MakeSpan(row), &response).ok());
    const auto best = std::max_element(row.begin(), row.end()) - row.begin();
    history.push_back(static_cast<int32_t>(best));
    response_ids.push_back(static_cast<int32_t>(best));
  }
  ASSERT_TRUE(chain.EndResponse(&account, prompt, response_ids, &response).ok());
  ASSERT_TRUE(chain.EndResponse(nullptr, {}, {1, 2}, nullptr).ok());  // anonymous, no prompt
  const std::vector<int32_t> negative = {3, -1};
  EXPECT_EQ(chain.EndResponse(&account, prompt, negative, &response).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*writer)->Close().ok());
  auto read = test_support::ReadRecords(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  const std::vector<ledger::Record>& records = *read;
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].account, std::optional<uint64_t>(77));
  EXPECT_EQ(records[0].epoch, 4u);
  EXPECT_EQ(records[0].epoch_key_id, wm->key_id());
  EXPECT_EQ(records[0].tokenizer, "tiktoken:r50k_base");
  // The chain's history width (h = 3) of the prompt: every response position's context.
  EXPECT_EQ(records[0].prompt_ids, std::vector<int32_t>({7, 6, 5}));
  EXPECT_EQ(records[0].response_ids, response_ids);
  EXPECT_GT(records[0].time_us, 0);
  EXPECT_FALSE(records[1].account.has_value());
  EXPECT_TRUE(records[1].prompt_ids.empty());
  // A chain without a ledger ends a response without writing.
  EXPECT_TRUE(
      ServingChain::Create(wm.get())->EndResponse(&account, prompt, response_ids, nullptr).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tracemark::engine
