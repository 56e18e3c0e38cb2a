// The llama.cpp sampler adapter against the Watermarker it wraps, through libllama's own sampler
// functions and chains (no model needed: llama_token_data_array is filled here).
#include "tracemark/llama/watermark_sampler.h"

#include <stdlib.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "testing/ledger_records.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::llama {
namespace {

using watermark::Candidate;
using watermark::Config;
using watermark::Watermarker;

constexpr int32_t kVocab = 5000;

std::shared_ptr<const Watermarker> MakeWatermarker(const std::string& scheme,
                                                   int32_t vocab = kVocab) {
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(7 * i + 3);
  auto key = watermark::Key::FromBytes(bytes);
  EXPECT_TRUE(key.ok());
  Config base;
  base.vocab_size = vocab;
  auto config = watermark::ParseConfig("scheme=" + scheme, base);
  EXPECT_TRUE(config.ok()) << config.status();
  auto wm = Watermarker::Create(*key, *config);
  EXPECT_TRUE(wm.ok()) << wm.status();
  return std::shared_ptr<const Watermarker>(std::move(*wm));
}

struct SamplerFree {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerFree>;

SamplerPtr MakeSampler(std::shared_ptr<const Watermarker> wm, std::optional<uint64_t> account) {
  WatermarkSamplerOptions options;
  options.watermarker = std::move(wm);
  options.account = account;
  auto s = NewWatermarkSampler(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return SamplerPtr(*s);
}

// `n` candidates with distinct ids and random logits (a top-k list), in random id order.
std::vector<llama_token_data> Candidates(std::mt19937* rng, size_t n) {
  std::vector<llama_token_data> c;
  std::uniform_int_distribution<int32_t> id(0, kVocab - 1);
  std::normal_distribution<float> logit(0.0f, 2.0f);
  std::vector<bool> used(kVocab);
  while (c.size() < n) {
    const int32_t i = id(*rng);
    if (used[i]) continue;
    used[i] = true;
    c.push_back({i, logit(*rng), 0.0f});
  }
  return c;
}

llama_token_data_array View(std::vector<llama_token_data>* c, bool sorted = false) {
  return {c->data(), c->size(), -1, sorted};
}

// What Watermarker::ProcessSparse does to the same candidates with the same context.
std::vector<Candidate> Expected(const Watermarker& wm, const watermark::AccountKeys* account,
                                std::vector<int32_t> context,
                                const std::vector<llama_token_data>& c,
                                watermark::SequenceState* state, watermark::StepResult* step) {
  std::vector<Candidate> want;
  for (const auto& t : c) want.push_back({t.id, t.logit});
  auto r = wm.ProcessSparse(account, context, absl::MakeSpan(want), state);
  EXPECT_TRUE(r.ok()) << r.status();
  if (step != nullptr) *step = *r;
  return want;
}

void ExpectLogits(const std::vector<llama_token_data>& got, const std::vector<Candidate>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << i;        // order unchanged
    EXPECT_EQ(got[i].logit, want[i].logit) << i;  // bit for bit (-inf included)
  }
}

TEST(WatermarkSamplerTest, ApplyIsProcessSparseOnTheLastHIdsOfPromptAndAcceptedTokens) {
  auto wm = MakeWatermarker("kgw");
  auto account = wm->ForAccount(42);
  ASSERT_TRUE(account.ok());
  SamplerPtr s = MakeSampler(wm, 42);
  const std::vector<llama_token> prompt = {11, 12, 13, 14, 15};
  ASSERT_TRUE(SetPrompt(s.get(), prompt).ok());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  watermark::SequenceState state;
  std::mt19937 rng(1);
  int changed = 0;
  for (int step = 0; step < 200; ++step) {
    std::vector<llama_token_data> c = Candidates(&rng, 40);
    const std::vector<int32_t> ctx(history.end() - 3, history.end());
    const std::vector<Candidate> want = Expected(*wm, &*account, ctx, c, &state, nullptr);
    const std::vector<llama_token_data> before = c;
    llama_token_data_array arr = View(&c, /*sorted=*/true);
    llama_sampler_apply(s.get(), &arr);
    ExpectLogits(c, want);
    EXPECT_FALSE(arr.sorted);
    for (size_t i = 0; i < c.size(); ++i) changed += c[i].logit != before[i].logit;
    const llama_token next = c[static_cast<size_t>(step) % c.size()].id;
    llama_sampler_accept(s.get(), next);
    history.push_back(next);
  }
  EXPECT_GT(changed, 0);  // the bias was applied somewhere
  auto stats = Stats(s.get());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->steps, 200u);
  EXPECT_EQ(stats->failed, 0u);
  EXPECT_EQ(stats->provider + stats->account + stats->unmarked, 200u);
  EXPECT_GT(stats->provider, 0u);
  EXPECT_GT(stats->account, 0u);
}

// With canary phrasings the sampler is the serving chain on the response's history, bit for bit,
// ids included (a canary may give a candidate's slot to its keyed member). The tiny Llama model's
// tokenizer is GPT-2's (tiktoken:r50k_base); every id is a candidate, so that canary sets apply.
TEST(WatermarkSamplerTest, CanariesAreTheServingChainOnTheResponsesHistory) {
  auto tok = tokenizer::LoadTokenizer("tiktoken:r50k_base", TRACEMARK_DATA_DIR);
  TRACEMARK_REQUIRE_DATA(tok.ok(), "the r50k_base tokenizer data");
  const int32_t vocab = (*tok)->vocab_size();
  for (const char* scheme : {"kgw", "gumbel"}) {
    auto wm = MakeWatermarker(scheme, vocab);
    std::shared_ptr<const canary::CanaryProcessor> canary =
        *canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), **tok);
    const engine::ServingChain chain = *engine::ServingChain::Create(wm.get(), canary.get());
    auto account = wm->ForAccount(9);
    WatermarkSamplerOptions options{.watermarker = wm, .canary = canary, .account = 9};
    SamplerPtr s(*NewWatermarkSampler(options));
    std::vector<int32_t> history = *(*tok)->Encode("The committee met, and");
    ASSERT_TRUE(SetPrompt(s.get(), history).ok());
    engine::Response response;
    std::mt19937 rng(5);
    std::normal_distribution<float> logit(0.0f, 2.0f);
    uint64_t moved = 0;
    for (int step = 0; step < 60; ++step) {
      std::vector<llama_token_data> c;
      for (int32_t id = 0; id < vocab; ++id) c.push_back({id, logit(rng), 0.0f});
      std::vector<Candidate> want;
      for (const auto& t : c) want.push_back({t.id, t.logit});
      auto r = chain.ProcessSparse(&*account, history, absl::MakeSpan(want), &response);
      ASSERT_TRUE(r.ok()) << r.status();
      moved += static_cast<uint64_t>(r->canary_moves);
      llama_token_data_array arr = View(&c);
      llama_sampler_apply(s.get(), &arr);
      ExpectLogits(c, want);
      size_t best = 0;
      for (size_t i = 1; i < c.size(); ++i) best = c[i].logit > c[best].logit ? i : best;
      llama_sampler_accept(s.get(), c[best].id);
      history.push_back(c[best].id);
    }
    EXPECT_GT(moved, 0u) << scheme << ": the comparison must cover canary steps";
    EXPECT_EQ(Stats(s.get())->canary, moved);
  }
}

TEST(WatermarkSamplerTest, ShortContextLeavesLogitsAloneUntilHIdsAreKnown) {
  auto wm = MakeWatermarker("kgw");
  SamplerPtr s = MakeSampler(wm, std::nullopt);  // no prompt given: the context starts empty
  std::mt19937 rng(2);
  for (int step = 0; step < 3; ++step) {
    std::vector<llama_token_data> c = Candidates(&rng, 30);
    const auto before = c;
    llama_token_data_array arr = View(&c);
    llama_sampler_apply(s.get(), &arr);
    for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i].logit, before[i].logit);
    llama_sampler_accept(s.get(), c[0].id);
  }
  auto stats = Stats(s.get());
  EXPECT_EQ(stats->unmarked, 3u);
}

TEST(WatermarkSamplerTest, ResetReturnsToThePromptAndForgetsSeenContexts) {
  auto wm = MakeWatermarker("gumbel");
  SamplerPtr s = MakeSampler(wm, std::nullopt);
  ASSERT_TRUE(SetPrompt(s.get(), std::vector<llama_token>{1, 2, 3}).ok());
  std::mt19937 rng(3);
  const std::vector<llama_token_data> c0 = Candidates(&rng, 50);
  auto first = c0;
  llama_token_data_array arr = View(&first);
  llama_sampler_apply(s.get(), &arr);
  ASSERT_GE(arr.selected, 0);  // Gumbel chose a token
  // Same context again in the same response: a repeated context is left alone.
  auto again = c0;
  arr = View(&again);
  llama_sampler_apply(s.get(), &arr);
  for (size_t i = 0; i < again.size(); ++i) EXPECT_EQ(again[i].logit, c0[i].logit);
  // After reset the response starts over: the same choice as the first time.
  llama_sampler_accept(s.get(), 9);
  llama_sampler_reset(s.get());
  auto after = c0;
  arr = View(&after);
  llama_sampler_apply(s.get(), &arr);
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].logit, first[i].logit);
}

TEST(WatermarkSamplerTest, CloneAndCopyCarryContextAndStateAndAreIndependent) {
  auto wm = MakeWatermarker("kgw");
  SamplerPtr a = MakeSampler(wm, 7);
  ASSERT_TRUE(SetPrompt(a.get(), std::vector<llama_token>{100, 200, 300}).ok());
  llama_sampler_accept(a.get(), 400);
  SamplerPtr b(llama_sampler_clone(a.get()));
  ASSERT_TRUE(IsWatermarkSampler(b.get()));
  std::mt19937 rng(4);
  const auto c0 = Candidates(&rng, 64);
  auto ca = c0, cb = c0;
  llama_token_data_array xa = View(&ca), xb = View(&cb);
  llama_sampler_apply(a.get(), &xa);
  llama_sampler_apply(b.get(), &xb);
  for (size_t i = 0; i < ca.size(); ++i) EXPECT_EQ(ca[i].logit, cb[i].logit);
  // Diverge: b's context moves on, a's does not.
  llama_sampler_accept(b.get(), 500);
  auto wa = c0, wb = c0;
  xa = View(&wa);
  xb = View(&wb);
  llama_sampler_apply(a.get(), &xa);
  llama_sampler_apply(b.get(), &xb);
  auto acct = wm->ForAccount(7);
  const auto want_a = Expected(*wm, &*acct, {200, 300, 400}, c0, nullptr, nullptr);
  const auto want_b = Expected(*wm, &*acct, {300, 400, 500}, c0, nullptr, nullptr);
  ExpectLogits(wa, want_a);
  ExpectLogits(wb, want_b);
  // llama_sampler_copy: a takes b's state.
  llama_sampler_copy(b.get(), a.get());
  auto wc = c0;
  xa = View(&wc);
  llama_sampler_apply(a.get(), &xa);
  ExpectLogits(wc, want_b);
}

TEST(WatermarkSamplerTest, SamplingSchemeDecidesTheDrawOfADistSamplerInAChain) {
  for (const char* scheme : {"gumbel", "synthid"}) {
    auto wm = MakeWatermarker(scheme);
    std::mt19937 rng(5);
    int checked = 0;
    for (int trial = 0; trial < 20; ++trial) {
      const auto c0 = Candidates(&rng, 100);
      const std::vector<int32_t> ctx = {trial + 1, trial + 2, trial + 3};
      watermark::StepResult step;
      Expected(*wm, nullptr, ctx, c0, nullptr, &step);
      if (step.layer != watermark::Layer::kProvider) continue;
      ASSERT_TRUE(step.token_chosen);
      ++checked;
      // Whatever the dist sampler's seed, the chain returns the keyed choice.
      for (uint32_t seed : {1u, 2u, 3u}) {
        SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
        llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(60));
        llama_sampler* mark = MakeSampler(wm, std::nullopt).release();
        llama_sampler_chain_add(chain.get(), mark);
        llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(seed));
        ASSERT_TRUE(SetPrompt(mark, std::vector<llama_token>(ctx.begin(), ctx.end())).ok());
        // top-k keeps the 60 largest; the keyed choice among those is what ProcessSparse picks
        // from the same 60.
        auto c = c0;
        llama_token_data_array arr = View(&c);
        llama_sampler_apply(chain.get(), &arr);
        ASSERT_GE(arr.selected, 0);
        std::vector<llama_token_data> top;  // the 60 ids left, with their original logits
        for (size_t i = 0; i < arr.size; ++i) {
          for (const auto& o : c0) {
            if (o.id == arr.data[i].id) top.push_back(o);
          }
        }
        ASSERT_EQ(top.size(), 60u);
        watermark::StepResult top_step;
        Expected(*wm, nullptr, ctx, top, nullptr, &top_step);
        EXPECT_EQ(arr.data[arr.selected].id, top_step.token) << scheme << " seed " << seed;
      }
    }
    EXPECT_GT(checked, 3) << scheme;  // provider positions among the 20 contexts
  }
}

TEST(WatermarkSamplerTest, InvalidStepsLeaveCandidatesAloneAndAreReported) {
  auto wm = MakeWatermarker("kgw");
  SamplerPtr s = MakeSampler(wm, 3);
  ASSERT_TRUE(SetPrompt(s.get(), std::vector<llama_token>{1, 2, 3}).ok());
  std::mt19937 rng(6);
  auto c = Candidates(&rng, 20);
  c[5].logit = std::numeric_limits<float>::quiet_NaN();
  auto before = c;
  llama_token_data_array arr = View(&c, true);
  llama_sampler_apply(s.get(), &arr);
  for (size_t i = 0; i < c.size(); ++i) {
    if (i != 5) {
      EXPECT_EQ(c[i].logit, before[i].logit);
    }
  }
  EXPECT_TRUE(arr.sorted);  // untouched
  auto c2 = Candidates(&rng, 20);
  c2[0].id = kVocab;  // outside the vocabulary
  arr = View(&c2);
  llama_sampler_apply(s.get(), &arr);
  std::vector<llama_token_data> empty;
  arr = View(&empty);
  llama_sampler_apply(s.get(), &arr);  // nothing to do, not an error
  auto stats = Stats(s.get());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->failed, 2u);
  EXPECT_EQ(stats->steps, 2u);
  EXPECT_EQ(stats->first_error.code(), absl::StatusCode::kInvalidArgument);
}

TEST(WatermarkSamplerTest, RefusesBadOptionsAndForeignSamplers) {
  WatermarkSamplerOptions options;
  EXPECT_EQ(NewWatermarkSampler(options).status().code(), absl::StatusCode::kInvalidArgument);
  auto wm = MakeWatermarker("kgw");
  options.watermarker = wm;
  options.account = uint64_t{1} << 40;  // beyond the payload's 24 bits
  EXPECT_EQ(NewWatermarkSampler(options).status().code(), absl::StatusCode::kInvalidArgument);
  SamplerPtr top_k(llama_sampler_init_top_k(5));
  EXPECT_FALSE(IsWatermarkSampler(top_k.get()));
  EXPECT_FALSE(IsWatermarkSampler(nullptr));
  EXPECT_EQ(SetPrompt(top_k.get(), {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stats(top_k.get()).status().code(), absl::StatusCode::kInvalidArgument);
  SamplerPtr s = MakeSampler(wm, std::nullopt);
  EXPECT_EQ(SetPrompt(s.get(), std::vector<llama_token>{1, -2}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetPrompt(s.get(), std::vector<llama_token>{kVocab}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_STREQ(llama_sampler_name(s.get()), "tracemark");
  EXPECT_EQ(EndResponse(top_k.get(), {}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(WatermarkSamplerTest, EndResponseRecordsTheResponseInTheLedger) {
  char dir_template[] = "/tmp/tracemark_llama_ledger_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  auto writer = ledger::Writer::Open(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const engine::LedgerStage stage{writer->get(), 0, "gguf:test"};
  WatermarkSamplerOptions options;
  options.watermarker = MakeWatermarker("kgw");
  options.account = 9;
  options.ledger = &stage;
  auto made = NewWatermarkSampler(options);
  ASSERT_TRUE(made.ok()) << made.status();
  SamplerPtr s(*made);
  ASSERT_TRUE(SetPrompt(s.get(), std::vector<llama_token>{10, 20, 30, 40}).ok());
  const std::vector<llama_token> served = {5, 6, 7};
  ASSERT_TRUE(EndResponse(s.get(), served).ok());
  EXPECT_EQ(EndResponse(s.get(), std::vector<llama_token>{1, -1}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*writer)->Close().ok());
  auto read = test_support::ReadRecords(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  const std::vector<ledger::Record>& records = *read;
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].account, std::optional<uint64_t>(9));
  EXPECT_EQ(records[0].prompt_ids, std::vector<int32_t>({20, 30, 40}));  // the last h = 3
  EXPECT_EQ(records[0].response_ids, std::vector<int32_t>({5, 6, 7}));
  EXPECT_EQ(records[0].tokenizer, "gguf:test");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tracemark::llama
