// Per-token cost of the canary choice in the sampling loop, against the same loop without it.
//
// Real inputs: the reference model's next-token distributions at 256 positions of State of the
// Union text (cl100k_base), computed once at start-up; the built-in lexicon; a real account key.
//  - BM_CanarySparse: the position's top-64 candidates copied in, then (canary) ProcessSparse,
//    then softmax sampling of the list — what llama.cpp-style loops do per token;
//  - BM_CanaryDense: the position's full row (100,277 logits) copied in, then (canary)
//    ProcessDense, then softmax sampling over the row.
// Ratios: python3 bench/ratios.py build-rel/bench/canary_bench (pairs each variant with
// FAMILY/baseline). Needs the data and model of scripts/demo.sh.
#include <benchmark/benchmark.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>

#include "tracemark/canary/processor.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/refmodel/sampling.h"
#include "tracemark/tokenizer/tiktoken.h"

namespace {

namespace tmk = tracemark;

constexpr int kPositions = 256;
constexpr int kDenseRows = 16;
constexpr int kTopK = 64;

struct Inputs {
  std::unique_ptr<tmk::tokenizer::Tokenizer> tok;
  std::unique_ptr<tmk::canary::CanaryProcessor> proc;
  std::optional<tmk::canary::CanaryKey> key;
  std::vector<std::vector<int32_t>> histories;
  std::vector<std::vector<tmk::watermark::Candidate>> sparse;
  std::vector<std::vector<float>> dense;
};

const Inputs* Load() {
  static const Inputs* const inputs = []() -> const Inputs* {
    auto* in = new Inputs;
    auto tok = tmk::tokenizer::LoadTiktokenFromDataDir(TRACEMARK_DATA_DIR, "cl100k_base");
    auto model =
        tmk::refmodel::KneserNeyModel::Load(tmk::reference::DefaultModelPath(TRACEMARK_DATA_DIR));
    auto files = tmk::reference::CorpusFiles(TRACEMARK_DATA_DIR);
    if (!tok.ok() || !model.ok() || !files.ok()) {
      std::cerr << "canary_bench needs the data and model of scripts/demo.sh\n";
      return nullptr;
    }
    in->tok = *std::move(tok);
    in->proc = *tmk::canary::CanaryProcessor::Create(&tmk::canary::Lexicon::BuiltIn(), *in->tok);
    in->key =
        tmk::canary::CanaryKey::FromSipKey(42, {0x0123456789abcdefull, 0xfedcba9876543210ull});
    std::ifstream f(files->back());
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::vector<int32_t> ids = *in->tok->Encode(text);
    std::vector<float> logprobs(static_cast<size_t>(model->vocab_size()));
    for (int p = 0; p < kPositions; ++p) {
      const size_t end = 64 + static_cast<size_t>(p) * (ids.size() - 64) / kPositions;
      in->histories.emplace_back(ids.begin() + static_cast<ptrdiff_t>(end - 64),
                                 ids.begin() + static_cast<ptrdiff_t>(end));
      model->LogProbs(in->histories.back(), absl::MakeSpan(logprobs));
      std::vector<tmk::watermark::Candidate> cands;
      for (int32_t id : tmk::refmodel::TopCandidates(logprobs, kTopK, 1.0)) {
        cands.push_back({id, logprobs[static_cast<size_t>(id)]});
      }
      in->sparse.push_back(std::move(cands));
      if (p < kDenseRows) in->dense.push_back(logprobs);
    }
    return in;
  }();
  return inputs;
}

void BM_CanarySparse(benchmark::State& state, bool canary) {
  const Inputs* in = Load();
  if (in == nullptr) return state.SkipWithError("data missing");
  tmk::canary::CanaryState cstate;
  tmk::refmodel::SplitMix64 rng(1);
  std::vector<tmk::watermark::Candidate> cands;
  std::vector<float> logits;
  int64_t moved = 0;
  size_t p = 0;
  for (auto _ : state) {
    cands = in->sparse[p];
    if (canary) {
      moved +=
          *in->proc->ProcessSparse(&*in->key, in->histories[p], absl::MakeSpan(cands), &cstate);
    }
    logits.clear();
    for (const auto& c : cands) logits.push_back(c.logit);
    benchmark::DoNotOptimize(tmk::refmodel::SampleFromLogits(logits, rng.NextDouble()));
    p = (p + 1) % in->sparse.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["tokens_per_iter"] = 1;
  state.counters["moved_per_token"] =
      static_cast<double>(moved) / static_cast<double>(std::max<int64_t>(state.iterations(), 1));
}

void BM_CanaryDense(benchmark::State& state, bool canary) {
  const Inputs* in = Load();
  if (in == nullptr) return state.SkipWithError("data missing");
  tmk::canary::CanaryState cstate;
  tmk::refmodel::SplitMix64 rng(1);
  std::vector<float> row(in->dense[0].size());
  size_t p = 0;
  for (auto _ : state) {
    std::copy(in->dense[p].begin(), in->dense[p].end(), row.begin());
    if (canary) {
      benchmark::DoNotOptimize(
          *in->proc->ProcessDense(&*in->key, in->histories[p], absl::MakeSpan(row), &cstate));
    }
    benchmark::DoNotOptimize(tmk::refmodel::SampleFromLogits(row, rng.NextDouble()));
    p = (p + 1) % in->dense.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["tokens_per_iter"] = 1;
}

BENCHMARK_CAPTURE(BM_CanarySparse, baseline, false)->Unit(benchmark::kNanosecond);
BENCHMARK_CAPTURE(BM_CanarySparse, canary, true)->Unit(benchmark::kNanosecond);
BENCHMARK_CAPTURE(BM_CanaryDense, baseline, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CanaryDense, canary, true)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
