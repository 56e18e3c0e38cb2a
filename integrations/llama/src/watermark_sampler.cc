#include "tracemark/llama/watermark_sampler.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tracemark::llama {
namespace {

using watermark::Candidate;
using watermark::Layer;

// One sampler's state: llama_sampler::ctx points at it.
struct SamplerState {
  std::shared_ptr<const watermark::Watermarker> wm;
  std::shared_ptr<const canary::CanaryProcessor> canary;  // may be null
  engine::ServingChain chain;                             // over wm and canary
  std::optional<watermark::AccountKeys> account;
  std::vector<llama_token> prompt_tail;  // the prompt's last history_width() ids
  std::vector<llama_token> context;      // prompt tail, then accepted tokens; at most 2w kept
  engine::Response response;
  std::vector<Candidate> scratch;  // reused by apply
  WatermarkSamplerStats stats;

  size_t width() const { return chain.history_width(); }
  void Restart() {
    context = prompt_tail;
    response.Reset();
  }
  void Push(llama_token token) {
    const size_t h = width();
    if (h == 0) return;
    if (context.size() >= 2 * h) context.erase(context.begin(), context.end() - (h - 1));
    context.push_back(token);
  }

  absl::Span<const int32_t> Window() const {
    const size_t h = std::min(width(), context.size());
    return absl::MakeConstSpan(context).subspan(context.size() - h);
  }
};

const char* Name(const llama_sampler*) { return "tracemark"; }

void Accept(llama_sampler* smpl, llama_token token) {
  static_cast<SamplerState*>(smpl->ctx)->Push(token);
}

void Count(const engine::Step& step, WatermarkSamplerStats* stats) {
  stats->canary += static_cast<uint64_t>(step.canary_moves);
  switch (step.layer) {
    case Layer::kNone:
      ++stats->unmarked;
      break;
    case Layer::kProvider:
      ++stats->provider;
      break;
    case Layer::kAccountPayload:
    case Layer::kAccountFingerprint:
      ++stats->account;
      break;
  }
}

void Apply(llama_sampler* smpl, llama_token_data_array* cur) {
  auto* st = static_cast<SamplerState*>(smpl->ctx);
  if (cur->size == 0) return;
  st->scratch.resize(cur->size);
  for (size_t i = 0; i < cur->size; ++i) st->scratch[i] = {cur->data[i].id, cur->data[i].logit};
  ++st->stats.steps;
  absl::StatusOr<engine::Step> step =
      st->chain.ProcessSparse(st->account ? &*st->account : nullptr, st->Window(),
                              absl::MakeSpan(st->scratch), &st->response);
  if (!step.ok()) {
    ++st->stats.failed;
    if (st->stats.first_error.ok()) st->stats.first_error = step.status();
    return;
  }
  Count(*step, &st->stats);
  // A canary may give a candidate's slot to its keyed member (a new id), so ids go back too.
  for (size_t i = 0; i < cur->size; ++i) {
    cur->data[i].id = st->scratch[i].id;
    cur->data[i].logit = st->scratch[i].logit;
    if (step->token_chosen && cur->data[i].id == step->token) {
      cur->selected = static_cast<int64_t>(i);
    }
  }
  cur->sorted = false;
}

void Reset(llama_sampler* smpl) { static_cast<SamplerState*>(smpl->ctx)->Restart(); }

llama_sampler* Clone(const llama_sampler* smpl);

void Free(llama_sampler* smpl) { delete static_cast<SamplerState*>(smpl->ctx); }

// llama_sampler_copy: dst takes src's state (same type, as llama.cpp asserts).
void CopyState(const llama_sampler* src, llama_sampler* dst) {
  *static_cast<SamplerState*>(dst->ctx) = *static_cast<const SamplerState*>(src->ctx);
}

// The backend-sampling members stay null: tracemark samples on the CPU, after llama.cpp's logits.
llama_sampler_i kInterface = {
    .name = Name,
    .accept = Accept,
    .apply = Apply,
    .reset = Reset,
    .clone = Clone,
    .free = Free,
    .backend_init = nullptr,
    .backend_accept = nullptr,
    .backend_apply = nullptr,
    .backend_set_input = nullptr,
    .backend_reset = nullptr,
    .copy_state = CopyState,
};

llama_sampler* Clone(const llama_sampler* smpl) {
  return llama_sampler_init(&kInterface,
                            new SamplerState(*static_cast<const SamplerState*>(smpl->ctx)));
}

SamplerState* StateOf(const llama_sampler* smpl) {
  if (smpl == nullptr || smpl->iface != &kInterface) return nullptr;
  return static_cast<SamplerState*>(smpl->ctx);
}

absl::Status NotOurs() {
  return absl::InvalidArgumentError("not a tracemark watermark sampler (NewWatermarkSampler)");
}

}  // namespace

absl::StatusOr<llama_sampler*> NewWatermarkSampler(const WatermarkSamplerOptions& options) {
  if (options.watermarker == nullptr) {
    return absl::InvalidArgumentError("NewWatermarkSampler: no watermarker");
  }
  absl::StatusOr<engine::ServingChain> chain =
      engine::ServingChain::Create(options.watermarker.get(), options.canary.get(), options.ledger);
  if (!chain.ok()) return chain.status();
  const int32_t vocab_size = options.watermarker->config().vocab_size;
  if (options.vocab != nullptr && llama_vocab_n_tokens(options.vocab) != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NewWatermarkSampler: the model's vocabulary has ", llama_vocab_n_tokens(options.vocab),
        " tokens, the watermark configuration ", vocab_size, " (set vocab= to the model's)"));
  }
  auto st = std::unique_ptr<SamplerState>(
      new SamplerState{options.watermarker, options.canary, *chain, {}, {}, {}, {}, {}, {}});
  if (options.account.has_value()) {
    absl::StatusOr<watermark::AccountKeys> keys = st->wm->ForAccount(*options.account);
    if (!keys.ok()) return keys.status();
    st->account = *std::move(keys);
  }
  return llama_sampler_init(&kInterface, st.release());
}

bool IsWatermarkSampler(const llama_sampler* sampler) { return StateOf(sampler) != nullptr; }

absl::Status SetPrompt(llama_sampler* sampler, absl::Span<const llama_token> prompt) {
  SamplerState* st = StateOf(sampler);
  if (st == nullptr) return NotOurs();
  const int32_t vocab_size = st->wm->config().vocab_size;
  for (llama_token id : prompt) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("SetPrompt: id ", id, " outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  const size_t keep = std::min(st->width(), prompt.size());
  st->prompt_tail.assign(prompt.end() - keep, prompt.end());
  st->Restart();
  return absl::OkStatus();
}

absl::Status EndResponse(llama_sampler* sampler, absl::Span<const llama_token> response) {
  SamplerState* st = StateOf(sampler);
  if (st == nullptr) return NotOurs();
  const absl::Status s = st->chain.EndResponse(st->account ? &*st->account : nullptr,
                                               st->prompt_tail, response, &st->response);
  st->Restart();
  return s;
}

absl::StatusOr<WatermarkSamplerStats> Stats(const llama_sampler* sampler) {
  const SamplerState* st = StateOf(sampler);
  if (st == nullptr) return NotOurs();
  return st->stats;
}

}  // namespace tracemark::llama
