// Per-token cost of the watermark in a serving engine's sampling loop, against the same loop
// without it.
//
// Each shape has a baseline, "what an engine does per token anyway", and one variant per scheme
// that runs the same loop plus the watermark call; the ratio script pairs them by name
// (BM_Sparse/baseline with BM_Sparse/kgw, and so on) and prints time per token as a ratio:
//
//   python3 bench/ratios.py build/bench/sampling_loop_bench
//
// Shapes (V = 151,936, the Qwen2 vocabulary):
//  - BM_Sparse: k = 64 candidates (the top-64 of a logits row) copied in fresh, then softmax and
//    an inverse-CDF draw over them; watermarked: ProcessSparse before the draw.
//  - BM_Dense: one logits row restored from a pristine copy (memcpy), then max, sum of exp and a
//    cumulative scan (a CPU sampler); watermarked: ProcessDense before the draw.
//  - BM_Batch: 64 such rows; watermarked: ProcessBatch over them, then the draw on each row.
// Schemes whose position picks the token (Gumbel, SynthID on provider positions) skip the draw,
// as an engine would. Every stream has its own account (a real AccountKeys) and SequenceState,
// reset every 256 tokens like a new response, and its context changes every step (a counter and
// the previous token), so no context repeats within a response and nothing is cached.
//
// Logits: standard Gumbel values G_i times a scale s fixed by bisection so that the entropy of
// softmax(s G) on row 0 is kEntropyBits = 3 bits (a peaked next-token distribution, a few bits as
// LLMs typically have; s comes out near 1.5, reported as the logit_scale counter), generated once
// from SplitMix64 with explicit conversions. The entropy matters for the Gumbel scheme (how many
// tokens its pruning skips) and for where the inverse-CDF scan stops.
//
// Also: Detector::Score throughput on a 10,000-token text per scheme, ContextHash, Mix and
// Watermarker::ForAccount.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/refmodel/sampling.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/prf.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::watermark {
namespace {

constexpr int32_t kVocab = 151936;
constexpr size_t kTopK = 64;
constexpr size_t kBatch = 64;
constexpr size_t kContextWidth = 3;  // the default h
constexpr uint64_t kResponseLength = 256;
constexpr double kEntropyBits = 3.0;

// Baseline rows: no watermark call at all.
constexpr const char* kNoWatermark = nullptr;

// Scheme variants, as ParseConfig specs over {vocab_size = kVocab} (account_share 0.5 by default).
constexpr const char kKgw[] = "scheme=kgw";
constexpr const char kKgwSelfHash[] = "scheme=kgw,hash=selfhash";
constexpr const char kGumbel[] = "scheme=gumbel";
constexpr const char kSynthId[] = "scheme=synthid";
constexpr const char kKgwProviderOnly[] = "scheme=kgw,account_share=0";
constexpr const char kGumbelProviderOnly[] = "scheme=gumbel,account_share=0";
constexpr const char kSynthIdProviderOnly[] = "scheme=synthid,account_share=0";

const Key& EpochKey() {
  static const Key* key = [] {
    std::array<uint8_t, kKeySize> bytes;
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0xA5 ^ (7 * i));
    return new Key(*Key::FromBytes(bytes));
  }();
  return *key;
}

absl::StatusOr<Config> MakeConfig(const char* spec) {
  Config base;
  base.vocab_size = kVocab;
  return ParseConfig(spec, base);
}

// Entropy in bits of softmax(scale * g).
double EntropyBits(const std::vector<double>& g, double scale) {
  double max = -std::numeric_limits<double>::infinity();
  for (double x : g) max = std::max(max, scale * x);
  double z = 0, s = 0;  // z = sum w, s = sum w * (x - max)
  for (double x : g) {
    const double d = scale * x - max;
    const double w = std::exp(d);
    z += w;
    s += w * d;
  }
  return (std::log(z) - s / z) / std::log(2.0);
}

// Standard Gumbel draws -log(-log u), u = (top 53 bits + 1/2) / 2^53 of SplitMix64.
std::vector<double> GumbelDraws(uint64_t seed, size_t n) {
  refmodel::SplitMix64 rng(seed);
  std::vector<double> g(n);
  for (double& x : g) {
    const double u = (static_cast<double>(rng.NextU64() >> 11) + 0.5) * 0x1.0p-53;
    x = -std::log(-std::log(u));
  }
  return g;
}

// kBatch pristine rows of kVocab logits, row-major; row 0 is the one the single-row shapes use.
// The scale is fixed on row 0 (bisection; the entropy decreases with the scale) and shared.
struct Logits {
  double scale = 0, entropy_bits = 0;
  std::vector<float> rows;
};

const Logits& PristineLogits() {
  static const Logits* logits = [] {
    auto* l = new Logits();
    const std::vector<double> g0 = GumbelDraws(1, kVocab);
    double lo = 0.01, hi = 100;
    for (int i = 0; i < 60; ++i) {
      const double mid = 0.5 * (lo + hi);
      (EntropyBits(g0, mid) > kEntropyBits ? lo : hi) = mid;
    }
    l->scale = 0.5 * (lo + hi);
    l->entropy_bits = EntropyBits(g0, l->scale);
    l->rows.resize(kBatch * kVocab);
    for (size_t b = 0; b < kBatch; ++b) {
      const std::vector<double> g = b == 0 ? g0 : GumbelDraws(1 + b, kVocab);
      for (size_t i = 0; i < g.size(); ++i) {
        l->rows[b * kVocab + i] = static_cast<float>(l->scale * g[i]);
      }
    }
    return l;
  }();
  return *logits;
}

absl::Span<const float> PristineRow(size_t b) {
  return absl::MakeConstSpan(PristineLogits().rows).subspan(b * kVocab, kVocab);
}

// What a CPU sampler does with one row: softmax weights in place (max, then exp and their sum),
// then the inverse-CDF scan to the draw `uniform` in [0, 1). Same result as
// refmodel::SampleFromLogits up to float rounding of the weights.
int32_t SampleInPlace(absl::Span<float> logits, double uniform) {
  float max = -std::numeric_limits<float>::infinity();
  for (float l : logits) max = std::max(max, l);
  double sum = 0;
  for (float& l : logits) {
    l = std::exp(l - max);
    sum += l;
  }
  const double target = uniform * sum;
  double acc = 0;
  size_t last = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] <= 0) continue;
    last = i;
    acc += logits[i];
    if (acc > target) break;
  }
  return static_cast<int32_t>(last);
}

// Same on a candidate list; returns the chosen candidate's token id.
int32_t SampleCandidates(absl::Span<Candidate> candidates, double uniform) {
  float max = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : candidates) max = std::max(max, c.logit);
  double sum = 0;
  for (Candidate& c : candidates) {
    c.logit = std::exp(c.logit - max);
    sum += c.logit;
  }
  const double target = uniform * sum;
  double acc = 0;
  int32_t last = candidates[0].id;
  for (const Candidate& c : candidates) {
    if (c.logit <= 0) continue;
    last = c.id;
    acc += c.logit;
    if (acc > target) break;
  }
  return last;
}

// One decode stream: its account, response state and context (ids stay in [0, kVocab)).
struct Stream {
  AccountKeys account;
  SequenceState seq;
  tracemark::engine::Response response;  // the serving chain's state (BM_Chain*)
  std::array<int32_t, kContextWidth> context{};
  uint64_t step = 0;

  // Starts the next position after `token` was emitted: the context becomes (stream-specific
  // id, step counter, token), so no context repeats within a response; every kResponseLength
  // tokens (staggered by `phase`) a new response starts.
  void Advance(int32_t token, uint64_t phase) {
    ++step;
    if ((step + phase) % kResponseLength == 0) seq.Reset(), response.Reset();
    context[1] = static_cast<int32_t>((step * 7919) % kVocab);
    context[2] = token;
  }
};

// The watermarker of `spec` (null for kNoWatermark) and `n` streams with distinct accounts.
struct Setup {
  std::unique_ptr<Watermarker> wm;
  std::vector<Stream> streams;
};

absl::StatusOr<Setup> MakeSetup(const char* spec, size_t n) {
  Setup s;
  const bool watermark = spec != kNoWatermark;
  absl::StatusOr<Config> config = MakeConfig(watermark ? spec : "");
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<Watermarker>> wm = Watermarker::Create(EpochKey(), *config);
  if (!wm.ok()) return wm.status();
  s.streams.resize(n);
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<AccountKeys> account = (*wm)->ForAccount(1000 + 17 * i);
    if (!account.ok()) return account.status();
    s.streams[i].account = *std::move(account);
    s.streams[i].context = {static_cast<int32_t>((i * 104729) % kVocab), 0, 0};
  }
  if (watermark) s.wm = *std::move(wm);
  return s;
}

// Per-stream tallies of what the watermark did.
struct StepCounts {
  int64_t chosen = 0, watermarked = 0;
};

// Counters shared by the three shapes.
void ReportTokens(benchmark::State& state, size_t tokens_per_iteration, const StepCounts& counts) {
  const int64_t tokens = static_cast<int64_t>(state.iterations() * tokens_per_iteration);
  state.SetItemsProcessed(tokens);
  state.counters["tokens_per_iter"] = static_cast<double>(tokens_per_iteration);
  state.counters["entropy_bits"] = PristineLogits().entropy_bits;
  state.counters["logit_scale"] = PristineLogits().scale;
  if (tokens > 0) {
    // Fraction of tokens the scheme picked itself, and of tokens that carried any signal.
    state.counters["chosen_frac"] =
        static_cast<double>(counts.chosen) / static_cast<double>(tokens);
    state.counters["marked_frac"] =
        static_cast<double>(counts.watermarked) / static_cast<double>(tokens);
  }
}

// The set-up for `spec`, or nullopt after marking the benchmark as skipped with the reason.
std::optional<Setup> SetupOrSkip(benchmark::State& state, const char* spec, int streams) {
  absl::StatusOr<Setup> setup = MakeSetup(spec, streams);
  if (!setup.ok()) {
    state.SkipWithError(std::string(setup.status().message()).c_str());
    return std::nullopt;
  }
  return *std::move(setup);
}

// Records one step's result (a Watermarker's StepResult or the chain's Step); false (and the
// benchmark skipped with the error) if it failed.
template <typename Result>
bool Tally(benchmark::State& state, const absl::StatusOr<Result>& r, int32_t* token,
           StepCounts* counts) {
  if (!r.ok()) {
    state.SkipWithError(std::string(r.status().message()).c_str());
    return false;
  }
  if (r->token_chosen) *token = r->token;
  counts->chosen += r->token_chosen;
  counts->watermarked += r->layer != Layer::kNone;
  return true;
}

// Which API a benchmark's loop calls: the Watermarker directly, or the serving chain
// (engine/serving_chain.h, without canaries) as every adapter does (the chain_* variants).
enum class Path { kWatermarker, kChain };

// The chain over `wm` when `path` asks for it and there is a watermark.
std::optional<tracemark::engine::ServingChain> ChainFor(Path path, const Watermarker* wm) {
  if (path != Path::kChain || wm == nullptr) return std::nullopt;
  return *tracemark::engine::ServingChain::Create(wm);
}

void BM_Sparse(benchmark::State& state, const char* spec, Path path = Path::kWatermarker) {
  std::optional<Setup> setup = SetupOrSkip(state, spec, 1);
  if (!setup.has_value()) return;
  const Watermarker* wm = setup->wm.get();
  const std::optional<tracemark::engine::ServingChain> chain = ChainFor(path, wm);
  Stream& stream = setup->streams[0];
  // The top-k candidates of row 0, best first, as an engine's top-k step hands them over.
  const absl::Span<const float> row = PristineRow(0);
  std::vector<Candidate> pristine;
  for (int32_t id : refmodel::TopCandidates(row, static_cast<int>(kTopK), 1.0)) {
    pristine.push_back({id, row[static_cast<size_t>(id)]});
  }
  std::vector<Candidate> candidates(pristine.size());
  refmodel::SplitMix64 rng(7);
  StepCounts counts;
  for (auto _ : state) {
    std::copy(pristine.begin(), pristine.end(), candidates.begin());
    int32_t token = -1;
    if (chain) {
      if (!Tally(state,
                 chain->ProcessSparse(&stream.account, stream.context, absl::MakeSpan(candidates),
                                      &stream.response),
                 &token, &counts)) {
        break;
      }
    } else if (wm != nullptr) {
      absl::StatusOr<StepResult> r = wm->ProcessSparse(&stream.account, stream.context,
                                                       absl::MakeSpan(candidates), &stream.seq);
      if (!Tally(state, r, &token, &counts)) break;
    }
    const double u = rng.NextDouble();  // drawn either way: same work in both loops
    if (token < 0) token = SampleCandidates(absl::MakeSpan(candidates), u);
    benchmark::DoNotOptimize(token);
    stream.Advance(token, 0);
    benchmark::ClobberMemory();
  }
  ReportTokens(state, 1, counts);
}

void BM_Dense(benchmark::State& state, const char* spec, Path path = Path::kWatermarker) {
  std::optional<Setup> setup = SetupOrSkip(state, spec, 1);
  if (!setup.has_value()) return;
  const Watermarker* wm = setup->wm.get();
  const std::optional<tracemark::engine::ServingChain> chain = ChainFor(path, wm);
  Stream& stream = setup->streams[0];
  const absl::Span<const float> pristine = PristineRow(0);
  std::vector<float> logits(kVocab);
  refmodel::SplitMix64 rng(7);
  StepCounts counts;
  for (auto _ : state) {
    std::memcpy(logits.data(), pristine.data(), kVocab * sizeof(float));
    int32_t token = -1;
    if (chain) {
      if (!Tally(state,
                 chain->ProcessDense(&stream.account, stream.context, absl::MakeSpan(logits),
                                     &stream.response),
                 &token, &counts)) {
        break;
      }
    } else if (wm != nullptr) {
      absl::StatusOr<StepResult> r =
          wm->ProcessDense(&stream.account, stream.context, absl::MakeSpan(logits), &stream.seq);
      if (!Tally(state, r, &token, &counts)) break;
    }
    const double u = rng.NextDouble();
    if (token < 0) token = SampleInPlace(absl::MakeSpan(logits), u);
    benchmark::DoNotOptimize(token);
    stream.Advance(token, 0);
    benchmark::ClobberMemory();
  }
  ReportTokens(state, 1, counts);
}

void BM_Batch(benchmark::State& state, const char* spec) {
  std::optional<Setup> setup = SetupOrSkip(state, spec, kBatch);
  if (!setup.has_value()) return;
  const Watermarker* wm = setup->wm.get();
  std::vector<Stream>& streams = setup->streams;
  const std::vector<float>& pristine = PristineLogits().rows;
  std::vector<float> logits(pristine.size());
  std::vector<const AccountKeys*> accounts(kBatch);
  std::vector<SequenceState*> states(kBatch);
  for (size_t b = 0; b < kBatch; ++b) {
    accounts[b] = &streams[b].account;
    states[b] = &streams[b].seq;
  }
  std::vector<int32_t> contexts(kBatch * kContextWidth);
  std::vector<StepResult> results(kBatch);
  refmodel::SplitMix64 rng(7);
  StepCounts counts;
  for (auto _ : state) {
    std::memcpy(logits.data(), pristine.data(), pristine.size() * sizeof(float));
    if (wm != nullptr) {
      for (size_t b = 0; b < kBatch; ++b) {
        std::copy(streams[b].context.begin(), streams[b].context.end(),
                  contexts.begin() + static_cast<ptrdiff_t>(b * kContextWidth));
      }
      const absl::Status s = wm->ProcessBatch(accounts, contexts, absl::MakeSpan(logits), states,
                                              absl::MakeSpan(results));
      if (!s.ok()) {
        state.SkipWithError(std::string(s.message()).c_str());
        break;
      }
    }
    for (size_t b = 0; b < kBatch; ++b) {
      const double u = rng.NextDouble();
      int32_t token = -1;
      if (wm != nullptr) {
        if (results[b].token_chosen) token = results[b].token;
        counts.chosen += results[b].token_chosen;
        counts.watermarked += results[b].layer != Layer::kNone;
      }
      if (token < 0) {
        token = SampleInPlace(absl::MakeSpan(logits).subspan(b * kVocab, kVocab), u);
      }
      benchmark::DoNotOptimize(token);
      streams[b].Advance(token, 4 * b);
    }
    benchmark::ClobberMemory();
  }
  ReportTokens(state, kBatch, counts);
}

// Detector::Score over a 10,000-token text of pseudo-random ids (no repeated context).
void BM_DetectorScore(benchmark::State& state, const char* spec) {
  constexpr size_t kTokens = 10000;
  absl::StatusOr<Config> config = MakeConfig(spec);
  absl::StatusOr<std::unique_ptr<Detector>> det =
      config.ok() ? Detector::Create(EpochKey(), *config) : config.status();
  if (!det.ok()) {
    state.SkipWithError(std::string(det.status().message()).c_str());
    return;
  }
  refmodel::SplitMix64 rng(11);
  std::vector<int32_t> ids(kTokens);
  for (int32_t& id : ids) id = static_cast<int32_t>(MulHiIndex(rng.NextU64(), kVocab));
  size_t tuples = 0;
  for (auto _ : state) {
    TextStatistics stats;
    const absl::Status s = (*det)->Score(ids, 0, &stats);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
    tuples = stats.size();
    benchmark::DoNotOptimize(stats);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kTokens));
  state.counters["tuples"] = static_cast<double>(tuples);
}

// One ContextHash (SipHash-2-4 of h = 3 ids) per iteration, the context changing every time.
void BM_ContextHash(benchmark::State& state) {
  const SipKey key = SipKeyFromBytes(EpochKey().secret().data());
  std::array<int32_t, kContextWidth> ctx = {17, 4242, 99};
  for (auto _ : state) {
    const uint64_t h = ContextHash(key, ctx.data(), ctx.size());
    benchmark::DoNotOptimize(h);
    ctx[2] = static_cast<int32_t>(h % kVocab);
  }
  state.SetItemsProcessed(state.iterations());
}

// Mix(seed, id) over a whole row of ids, as a dense KGW step does (items = ids).
void BM_Mix(benchmark::State& state) {
  uint64_t seed = 0x0123456789abcdefull;
  for (auto _ : state) {
    uint64_t below = 0;
    for (uint32_t id = 0; id < static_cast<uint32_t>(kVocab); ++id) {
      below += Mix(seed, id) < (1ull << 62);
    }
    benchmark::DoNotOptimize(below);
    seed += below;
  }
  state.SetItemsProcessed(state.iterations() * kVocab);
}

// Watermarker::ForAccount: once per request (HKDF and the fingerprint codeword).
void BM_ForAccount(benchmark::State& state) {
  absl::StatusOr<Setup> setup = MakeSetup(kKgw, 0);
  if (!setup.ok()) {
    state.SkipWithError(std::string(setup.status().message()).c_str());
    return;
  }
  uint64_t account = 0;
  for (auto _ : state) {
    absl::StatusOr<AccountKeys> keys = setup->wm->ForAccount(account++ % (1u << 24));
    benchmark::DoNotOptimize(keys);
  }
  state.SetItemsProcessed(state.iterations());
}

#define TRACEMARK_SHAPE(shape, unit)                                               \
  BENCHMARK_CAPTURE(shape, baseline, kNoWatermark)->Unit(unit);                    \
  BENCHMARK_CAPTURE(shape, kgw, kKgw)->Unit(unit);                                 \
  BENCHMARK_CAPTURE(shape, kgw_selfhash, kKgwSelfHash)->Unit(unit);                \
  BENCHMARK_CAPTURE(shape, gumbel, kGumbel)->Unit(unit);                           \
  BENCHMARK_CAPTURE(shape, synthid, kSynthId)->Unit(unit);                         \
  BENCHMARK_CAPTURE(shape, kgw_provider_only, kKgwProviderOnly)->Unit(unit);       \
  BENCHMARK_CAPTURE(shape, gumbel_provider_only, kGumbelProviderOnly)->Unit(unit); \
  BENCHMARK_CAPTURE(shape, synthid_provider_only, kSynthIdProviderOnly)->Unit(unit)

TRACEMARK_SHAPE(BM_Sparse, benchmark::kNanosecond);
TRACEMARK_SHAPE(BM_Dense, benchmark::kMicrosecond);
TRACEMARK_SHAPE(BM_Batch, benchmark::kMillisecond);

// The same loops through the serving chain: BM_Sparse/chain_kgw against BM_Sparse/baseline.
#define TRACEMARK_CHAIN_VARIANTS(shape, unit)                                \
  BENCHMARK_CAPTURE(shape, chain_kgw, kKgw, Path::kChain)->Unit(unit);       \
  BENCHMARK_CAPTURE(shape, chain_gumbel, kGumbel, Path::kChain)->Unit(unit); \
  BENCHMARK_CAPTURE(shape, chain_synthid, kSynthId, Path::kChain)->Unit(unit)
TRACEMARK_CHAIN_VARIANTS(BM_Sparse, benchmark::kNanosecond);
TRACEMARK_CHAIN_VARIANTS(BM_Dense, benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DetectorScore, kgw, kKgw)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DetectorScore, kgw_selfhash, kKgwSelfHash)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DetectorScore, gumbel, kGumbel)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DetectorScore, synthid, kSynthId)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ContextHash);
BENCHMARK(BM_Mix)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ForAccount)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace tracemark::watermark

BENCHMARK_MAIN();
