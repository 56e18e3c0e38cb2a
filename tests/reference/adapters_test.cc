// Every engine adapter goes through the one serving chain, so that fed the same inputs each gives
// the same output, bit for bit, canaries included (issue 17):
//  - the reference model's loop (sparse top-k candidates) against the same loop driven through
//    the C ABI's tracemark_process_sparse: the same tokens, the same final candidate logits;
//  - the chain's dense path against the C ABI's dense and batched calls, full histories against
//    histories cut to history_width(): the same logits and results.
// The llama.cpp sampler (tests/llama/) and the Python adapters (tests/python/) compare themselves
// with the chain in the same way.
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "reference_fixture.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/canary/suite.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/refmodel/sampling.h"
#include "tracemark/tracemark.h"
#include "tracemark/watermark/config.h"

namespace tracemark::reference {
namespace {

constexpr uint64_t kAccount = 7;
constexpr char kKeyVariable[] = "TRACEMARK_ADAPTERS_TEST_KEY";

// The C ABI's handles for the fixture's key, epoch 1, and `spec`, with canaries.
struct CHandles {
  tracemark_key_t* master = nullptr;
  tracemark_key_t* epoch = nullptr;
  tracemark_config_t* config = nullptr;
  tracemark_watermarker_t* wm = nullptr;
  tracemark_account_t* account = nullptr;
  ~CHandles() {
    tracemark_account_destroy(account);
    tracemark_watermarker_destroy(wm);
    tracemark_config_destroy(config);
    tracemark_key_destroy(epoch);
    tracemark_key_destroy(master);
  }
};

class AdaptersTest : public ReferenceTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    ReferenceTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    const std::string spec = GetParam();
    config_ = *watermark::ParseConfig(spec, [] {
      watermark::Config c;
      c.vocab_size = tok_->vocab_size();
      return c;
    }());
    epoch_ = *watermark::DeriveEpochKey(Master(), 1);
    wm_ = *watermark::Watermarker::Create(*epoch_, config_);
    canary_ = *canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), *tok_);
    chain_ = *engine::ServingChain::Create(wm_.get(), canary_.get());
    keys_ = *wm_->ForAccount(kAccount);
    OpenC(spec);
  }

  void OpenC(const std::string& spec) {
    const std::vector<uint8_t> bytes(32, 9);  // ReferenceTest::Master()
    setenv(kKeyVariable, absl::BytesToHexString(std::string(bytes.begin(), bytes.end())).c_str(),
           1);
    char* err = nullptr;
    ASSERT_EQ(tracemark_key_from_env(kKeyVariable, &c_.master, &err), TRACEMARK_OK) << err;
    unsetenv(kKeyVariable);
    ASSERT_EQ(tracemark_key_derive_epoch(c_.master, 1, &c_.epoch, &err), TRACEMARK_OK) << err;
    ASSERT_EQ(tracemark_config_create(spec.c_str(), tok_->vocab_size(), &c_.config, &err),
              TRACEMARK_OK)
        << err;
    ASSERT_EQ(tracemark_watermarker_create_with_canary(c_.epoch, c_.config, "tiktoken:cl100k_base",
                                                       TRACEMARK_DATA_DIR, &c_.wm, &err),
              TRACEMARK_OK)
        << err;
    ASSERT_EQ(tracemark_watermarker_has_canary(c_.wm), 1);
    ASSERT_EQ(tracemark_watermarker_account(c_.wm, kAccount, &c_.account, &err), TRACEMARK_OK)
        << err;
  }

  // The elicitation suite's first prompt: canary phrasings are likely right away.
  static std::vector<int32_t> Prompt() {
    const auto suite = *canary::ParseSuite(canary::BuiltInSuiteText());
    return *tok_->Encode(suite[3].prefix);
  }

  watermark::Config config_;
  std::optional<watermark::Key> epoch_;
  std::unique_ptr<watermark::Watermarker> wm_;
  std::unique_ptr<canary::CanaryProcessor> canary_;
  std::optional<engine::ServingChain> chain_;
  watermark::AccountKeys keys_;
  CHandles c_;
};

// The reference loop's sampling (reference_model.cc) around the C ABI's sparse step.
std::vector<int32_t> CAbiSparseLoop(const CHandles& c, const refmodel::KneserNeyModel& model,
                                    std::vector<int32_t> history, const GenerateOptions& o,
                                    uint64_t* canary_steps) {
  std::vector<int32_t> out;
  std::vector<float> lp(static_cast<size_t>(model.vocab_size()));
  refmodel::SplitMix64 rng(o.seed);
  tracemark_sequence_t* seq = tracemark_sequence_create();
  char* err = nullptr;
  for (int step = 0; step < o.max_tokens; ++step) {
    model.LogProbs(history, absl::MakeSpan(lp));
    for (float& l : lp) l *= static_cast<float>(1.0 / o.temperature);
    std::vector<tracemark_candidate> cands;
    for (int32_t id : refmodel::TopCandidates(lp, o.top_k, o.top_p)) {
      cands.push_back({id, lp[static_cast<size_t>(id)]});
    }
    const double u = rng.NextDouble();
    const std::vector<tracemark_candidate> before = cands;
    tracemark_step_result r;
    EXPECT_EQ(tracemark_process_sparse(c.wm, c.account, history.data(), history.size(),
                                       cands.data(), cands.size(), seq, &r, &err),
              TRACEMARK_OK)
        << err;
    for (size_t i = 0; i < cands.size(); ++i) {
      *canary_steps += cands[i].id != before[i].id ? 1 : 0;
    }
    int32_t token = r.token;
    if (!r.token_chosen) {
      std::vector<float> logits;
      for (const auto& cand : cands) logits.push_back(cand.logit);
      token = cands[static_cast<size_t>(*refmodel::SampleFromLogits(logits, u))].id;
    }
    history.push_back(token);
    out.push_back(token);
  }
  tracemark_sequence_destroy(seq);
  return out;
}

TEST_P(AdaptersTest, TheReferenceLoopAndTheCAbiGiveTheSameTokens) {
  GenerateOptions o;
  o.max_tokens = 400;
  o.seed = 11;
  o.canary = canary_.get();
  const ReferenceGenerator gen(model_, tok_);
  auto g = gen.GenerateIds(Prompt(), wm_.get(), &keys_, o);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_GT(g->canary_moves, 0u) << "the comparison must cover canary steps";
  uint64_t replaced = 0;
  const std::vector<int32_t> via_c = CAbiSparseLoop(c_, *model_, Prompt(), o, &replaced);
  EXPECT_EQ(via_c, g->ids);
}

TEST_P(AdaptersTest, DenseAndBatchedCallsEqualTheChainBitForBit) {
  const size_t v = static_cast<size_t>(tok_->vocab_size());
  const size_t width = tracemark_watermarker_history_width(c_.wm);
  ASSERT_EQ(width, chain_->history_width());
  ASSERT_GE(width, canary::CanaryProcessor::kHistoryIds);
  // A response of the reference model, then B = 4 rows at successive positions of it.
  GenerateOptions o;
  o.max_tokens = 160;
  o.canary = canary_.get();
  auto g = ReferenceGenerator(model_, tok_).GenerateIds(Prompt(), wm_.get(), &keys_, o);
  ASSERT_TRUE(g.ok());
  const std::vector<int32_t> all = g->AllIds();
  uint64_t moved = 0;
  engine::Response cpp_state;
  tracemark_sequence_t* dense_state = tracemark_sequence_create();
  tracemark_sequence_t* batch_state = tracemark_sequence_create();
  char* err = nullptr;
  for (size_t pos = g->prompt_ids.size(); pos < all.size(); ++pos) {
    const absl::Span<const int32_t> history(all.data(), pos);
    std::vector<float> row(v);
    model_->LogProbs(history, absl::MakeSpan(row));
    std::vector<float> dense = row, batched = row;
    auto step = chain_->ProcessDense(&keys_, history, absl::MakeSpan(row), &cpp_state);
    ASSERT_TRUE(step.ok()) << step.status();
    moved += static_cast<uint64_t>(step->canary_moves);
    tracemark_step_result d, b;
    ASSERT_EQ(tracemark_process_dense(c_.wm, c_.account, history.data(), history.size(),
                                      dense.data(), v, dense_state, &d, &err),
              TRACEMARK_OK)
        << err;
    // One batch row of exactly `width` ids: the history cut to what the chain reads.
    std::vector<int32_t> ctx(width, -1);
    const size_t take = std::min(width, history.size());
    std::copy(history.end() - static_cast<ptrdiff_t>(take), history.end(), ctx.end() - take);
    const tracemark_account_t* accounts[] = {c_.account};
    tracemark_sequence_t* states[] = {batch_state};
    ASSERT_EQ(tracemark_process_batch(c_.wm, accounts, 1, ctx.data(), width, batched.data(), v,
                                      states, &b, &err),
              TRACEMARK_OK)
        << err;
    ASSERT_EQ(std::memcmp(row.data(), dense.data(), v * sizeof(float)), 0) << "position " << pos;
    ASSERT_EQ(std::memcmp(row.data(), batched.data(), v * sizeof(float)), 0) << "position " << pos;
    for (const tracemark_step_result& r : {d, b}) {
      EXPECT_EQ(r.layer, static_cast<int32_t>(step->layer));
      EXPECT_EQ(r.token_chosen, step->token_chosen ? 1 : 0);
      EXPECT_EQ(r.token, step->token);
    }
  }
  EXPECT_GT(moved, 0u) << "the comparison must cover canary steps";
  tracemark_sequence_destroy(dense_state);
  tracemark_sequence_destroy(batch_state);
}

INSTANTIATE_TEST_SUITE_P(Schemes, AdaptersTest,
                         ::testing::Values("scheme=kgw", "scheme=gumbel", "scheme=synthid"));

}  // namespace
}  // namespace tracemark::reference
