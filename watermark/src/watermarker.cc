#include "tracemark/watermark/watermarker.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "layout.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::watermark {
namespace {

using internal::Layout;
using internal::Position;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Uniform access to a sparse candidate list or a dense row.
struct SparseView {
  static constexpr bool kIdsAreIndices = false;
  absl::Span<Candidate> c;
  size_t size() const { return c.size(); }
  int32_t id(size_t i) const { return c[i].id; }
  float& logit(size_t i) const { return c[i].logit; }
};
struct DenseView {
  static constexpr bool kIdsAreIndices = true;
  absl::Span<float> row;
  size_t size() const { return row.size(); }
  int32_t id(size_t i) const { return static_cast<int32_t>(i); }
  float& logit(size_t i) const { return row[i]; }
};

// Adds `delta` to the logits of the tokens in the list, without a data-dependent branch (the list
// is a keyed pseudo-random half or quarter of the vocabulary: a branch would mispredict often).
template <typename View>
void AddBias(const View& v, float delta, const auto& in_list) {
  for (size_t i = 0; i < v.size(); ++i) {
    v.logit(i) += delta * static_cast<float>(in_list(v.id(i)));
  }
}

template <typename View>
size_t ArgMaxLogit(const View& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v.logit(i) > v.logit(best) || (v.logit(i) == v.logit(best) && v.id(i) < v.id(best)))
      best = i;
  }
  return best;
}

// Gumbel noise -log(-log r) for r = UnitOpen(x), precise as r -> 1.
double GumbelNoise(uint64_t x) { return -std::log(-std::log1p(-UnitOpenComplement(x))); }

// Gumbel-max / EXP: argmax_i logit_i + G(r_i), r_i = UnitOpen(Mix(seed, id_i)); a sample from
// softmax(logits) that the key fixes. A token can only beat the incumbent score B if
// 1 - r_i < exp(logit_i - B) (since -log r >= 1 - r), which prunes almost every token of a dense
// row with one exp and no log.
template <typename View>
size_t GumbelChoose(const View& v, uint64_t seed) {
  size_t best = ArgMaxLogit(v);
  double best_score = v.logit(best) + GumbelNoise(Mix(seed, static_cast<uint32_t>(v.id(best))));
  for (size_t i = 0; i < v.size(); ++i) {
    const float l = v.logit(i);
    if (l == kNegInf || i == best) continue;
    const uint64_t x = Mix(seed, static_cast<uint32_t>(v.id(i)));
    const double gap = static_cast<double>(l) - best_score;
    if (gap < -40.0) continue;  // G(r) <= 37.4 for every representable r
    if (UnitOpenComplement(x) >= std::exp(gap) * 1.000001) continue;
    const double score = l + GumbelNoise(x);
    if (score > best_score || (score == best_score && v.id(i) < v.id(best))) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

// SynthID tournament, distortion-free setting: with two competitors per match, layer l turns the
// distribution p into p(v) (1 + g_l(v) - E_p[g_l]), g_l(v) the l-th bit of Mix(seed, v). The
// result is sampled by inverse CDF in increasing token-id order with a keyed uniform.
//
// A token's weight after layer l depends on it only through its first l+1 g-bits, so the layers
// are applied in chunks of kChunkBits: one pass histograms the current weights by the chunk's bits,
// the chunk's layers run on the 2^kChunkBits histogram entries, and one pass multiplies each
// token's weight by its entry's factor. That is about layers / kChunkBits + 2 passes over the
// candidates instead of 2 * layers, with the same arithmetic up to summation order.
constexpr int kChunkBits = 10;

struct SynthIdScratch {
  std::vector<double> w;
  std::vector<uint64_t> g;
  std::vector<uint32_t> order;
  double hist[1 << kChunkBits];
  double factor[1 << kChunkBits];
};

template <typename View>
size_t SynthIdChoose(const View& v, uint64_t seed, int layers, SynthIdScratch* s) {
  const size_t n = v.size();
  s->w.resize(n);
  s->g.resize(n);
  float max_logit = kNegInf;
  for (size_t i = 0; i < n; ++i) max_logit = std::max(max_logit, v.logit(i));
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::exp(static_cast<double>(v.logit(i)) - max_logit);
    s->w[i] = e;
    total += e;
    s->g[i] = Mix(seed, static_cast<uint32_t>(v.id(i)));
  }
  if (n < (size_t{1} << kChunkBits)) {
    // Few candidates (a top-k list): apply the layers directly, without branches on the g-bits.
    for (int l = 0; l < layers; ++l) {
      double mean_g = 0;
      for (size_t i = 0; i < n; ++i) mean_g += s->w[i] * static_cast<double>(s->g[i] >> l & 1);
      mean_g /= total;
      for (size_t i = 0; i < n; ++i)
        s->w[i] *= 1.0 - mean_g + static_cast<double>(s->g[i] >> l & 1);
    }
  }
  for (int c0 = 0; n >= (size_t{1} << kChunkBits) && c0 < layers; c0 += kChunkBits) {
    const int bits = std::min(kChunkBits, layers - c0);
    const uint64_t keys = 1ull << bits, mask = keys - 1;
    std::fill(s->hist, s->hist + keys, 0.0);
    for (size_t i = 0; i < n; ++i) s->hist[(s->g[i] >> c0) & mask] += s->w[i];
    std::fill(s->factor, s->factor + keys, 1.0);
    for (int j = 0; j < bits; ++j) {
      double mean_g = 0;
      for (uint64_t k = 0; k < keys; ++k) {
        if (k >> j & 1) mean_g += s->hist[k] * s->factor[k];
      }
      mean_g /= total;  // the tournament preserves the total mass
      for (uint64_t k = 0; k < keys; ++k)
        s->factor[k] *= (k >> j & 1) ? 2.0 - mean_g : 1.0 - mean_g;
    }
    for (size_t i = 0; i < n; ++i) s->w[i] *= s->factor[(s->g[i] >> c0) & mask];
  }
  double final_total = 0;
  for (size_t i = 0; i < n; ++i) final_total += s->w[i];
  const double u = UnitOpen(Mix(seed, internal::kSampleSalt)) * final_total;
  double acc = 0;
  size_t last_positive = 0;
  auto visit = [&](size_t i) {
    if (s->w[i] <= 0) return false;
    last_positive = i;
    acc += s->w[i];
    return u < acc;
  };
  if constexpr (View::kIdsAreIndices) {
    for (size_t i = 0; i < n; ++i) {
      if (visit(i)) return i;
    }
  } else {
    s->order.resize(n);
    std::iota(s->order.begin(), s->order.end(), 0u);
    std::sort(s->order.begin(), s->order.end(),
              [&](uint32_t a, uint32_t b) { return v.id(a) < v.id(b); });
    for (uint32_t i : s->order) {
      if (visit(i)) return i;
    }
  }
  return last_positive;
}

template <typename View>
void ForceToken(const View& v, size_t chosen) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (i != chosen) v.logit(i) = kNegInf;
  }
}

template <typename View>
StepResult ProcessPosition(const Layout& layout, const AccountKeys* account, const int32_t* ctx,
                           const View& v, SequenceState* state) {
  const Config& c = layout.config();
  StepResult r;
  const Position pos = layout.Locate(ctx);
  switch (pos.layer) {
    case Layer::kProvider: {
      if (c.scheme == Scheme::kKgw) {
        r.layer = Layer::kProvider;
        AddBias(v, static_cast<float>(c.kgw.delta),
                [&](int32_t id) { return layout.IsGreen(layout.ProviderSeed(pos, id), id); });
        return r;
      }
      // A context's layer depends on the context alone, so tracking provider positions of the
      // distortion-free schemes is enough to know whether this context occurred before.
      const bool repeated = state != nullptr && state->CheckAndInsert(pos.context_key);
      if (repeated && c.skip_repeated_contexts) return r;  // engine samples as usual
      r.layer = Layer::kProvider;
      thread_local SynthIdScratch scratch;
      const size_t chosen = c.scheme == Scheme::kGumbel
                                ? GumbelChoose(v, pos.seed)
                                : SynthIdChoose(v, pos.seed, c.synthid.layers, &scratch);
      ForceToken(v, chosen);
      r.token_chosen = true;
      r.token = v.id(chosen);
      return r;
    }
    case Layer::kAccountPayload:
    case Layer::kAccountFingerprint: {
      if (account == nullptr) return r;
      r.layer = pos.layer;
      uint32_t colour = 0, colours = 2;
      Layout::Preferred(pos, *account, &colour, &colours, layout.payload_colours());
      AddBias(v, static_cast<float>(c.account.delta),
              [&](int32_t id) { return Layout::Colour(pos.seed, id, colours) == colour; });
      return r;
    }
    case Layer::kNone:
      break;
  }
  return r;
}

}  // namespace

const internal::KernelParams& internal::KernelParamsOf(const Watermarker& wm) {
  return wm.layout_->kernel_params();
}

Watermarker::Watermarker(Config config, std::unique_ptr<internal::Layout> layout,
                         std::string key_id)
    : config_(std::move(config)), layout_(std::move(layout)), key_id_(std::move(key_id)) {}

Watermarker::~Watermarker() = default;

absl::StatusOr<std::unique_ptr<Watermarker>> Watermarker::Create(const Key& epoch_key,
                                                                 const Config& config) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Layout> layout, Layout::Create(epoch_key, config));
  return std::unique_ptr<Watermarker>(new Watermarker(config, std::move(layout), epoch_key.Id()));
}

absl::StatusOr<AccountKeys> Watermarker::ForAccount(uint64_t account) const {
  return layout_->ForAccount(account);
}

absl::Status Watermarker::CheckAccount(const AccountKeys* account) const {
  if (account != nullptr && account->layout_id() != layout_->id()) {
    return absl::InvalidArgumentError(
        "account keys were derived under a different epoch key or configuration");
  }
  return absl::OkStatus();
}

absl::StatusOr<StepResult> Watermarker::ProcessSparse(const AccountKeys* account,
                                                      absl::Span<const int32_t> context,
                                                      absl::Span<Candidate> candidates,
                                                      SequenceState* state) const {
  TRACEMARK_RETURN_IF_ERROR(CheckAccount(account));
  TRACEMARK_RETURN_IF_ERROR(CheckCandidates(candidates, config_.vocab_size));
  return SparseChecked(account, context, candidates, state);
}

absl::StatusOr<StepResult> Watermarker::ProcessDense(const AccountKeys* account,
                                                     absl::Span<const int32_t> context,
                                                     absl::Span<float> logits,
                                                     SequenceState* state) const {
  TRACEMARK_RETURN_IF_ERROR(CheckAccount(account));
  TRACEMARK_RETURN_IF_ERROR(CheckRow(logits, config_.vocab_size).status());
  return DenseChecked(account, context, logits, state);
}

StepResult Watermarker::SparseChecked(const AccountKeys* account, absl::Span<const int32_t> context,
                                      absl::Span<Candidate> candidates,
                                      SequenceState* state) const {
  const size_t h = static_cast<size_t>(config_.context_width);
  if (context.size() < h) return StepResult{};
  return ProcessPosition(*layout_, account, context.data() + context.size() - h,
                         SparseView{candidates}, state);
}

StepResult Watermarker::DenseChecked(const AccountKeys* account, absl::Span<const int32_t> context,
                                     absl::Span<float> logits, SequenceState* state) const {
  const size_t h = static_cast<size_t>(config_.context_width);
  if (context.size() < h) return StepResult{};
  return ProcessPosition(*layout_, account, context.data() + context.size() - h, DenseView{logits},
                         state);
}

absl::Status Watermarker::ProcessBatch(absl::Span<const AccountKeys* const> accounts,
                                       absl::Span<const int32_t> contexts, absl::Span<float> logits,
                                       absl::Span<SequenceState* const> states,
                                       absl::Span<StepResult> results) const {
  const size_t b = accounts.size();
  const size_t h = static_cast<size_t>(config_.context_width);
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  if (contexts.size() != b * h || logits.size() != b * vocab || results.size() != b ||
      (!states.empty() && states.size() != b)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch shapes disagree: ", b, " accounts, ", contexts.size(), " context ids (want ", b * h,
        "), ", logits.size(), " logits (want ", b * vocab, "), ", results.size(), " results"));
  }
  for (size_t row = 0; row < b; ++row) {
    if (absl::Status s = CheckAccount(accounts[row]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", row, ": ", s.message()));
    }
    TRACEMARK_RETURN_IF_ERROR(CheckRow(logits.subspan(row * vocab, vocab), config_.vocab_size,
                                       absl::StrCat("row ", row, ": "))
                                  .status());
  }
  for (size_t row = 0; row < b; ++row) {
    const int32_t* ctx = contexts.data() + row * h;
    if (std::any_of(ctx, ctx + h, [](int32_t id) { return id < 0; })) {
      results[row] = StepResult{};
      continue;
    }
    const DenseView v{logits.subspan(row * vocab, vocab)};
    results[row] =
        ProcessPosition(*layout_, accounts[row], ctx, v, states.empty() ? nullptr : states[row]);
  }
  return absl::OkStatus();
}

}  // namespace tracemark::watermark
