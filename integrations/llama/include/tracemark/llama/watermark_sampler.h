// A llama.cpp sampler that watermarks every token llama.cpp draws, for one account.
//
// NewWatermarkSampler() returns a `llama_sampler` (llama.h's llama_sampler_i: apply, accept,
// reset, clone, free) over a shared Watermarker. Put it in a sampler chain after the samplers that
// shape the distribution (penalties, top-k, top-p, min-p, temperature) and before the one that
// draws the token (dist), as the watermarker expects the step's final logits:
//
//   std::shared_ptr<const Watermarker> wm = ...;             // once per process and epoch
//   llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
//   llama_sampler_chain_add(chain, llama_sampler_init_top_k(40));
//   llama_sampler_chain_add(chain, llama_sampler_init_temp(0.8f));
//   absl::StatusOr<llama_sampler*> mark = NewWatermarkSampler(
//       {.watermarker = wm, .account = 42, .vocab = llama_model_get_vocab(model)});
//   llama_sampler_chain_add(chain, *mark);                   // the chain owns it from here
//   llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
//   SetPrompt(*mark, prompt_ids);                             // before each response
//   ... llama_sampler_sample(chain, ctx, -1) at every step, as usual.
//
// Contract of the llama_sampler_i functions:
//  - apply: hands the candidates (id, logit) to the serving chain (engine/serving_chain.h: the
//    canary choice when `canary` is set and the sampler has an account, then the watermark layers)
//    with the last history_width() ids of the response (prompt first, then every accepted token)
//    and writes them back in place, order unchanged (a canary may replace a candidate's id with
//    its keyed member's). Bias schemes raise the keyed tokens' logits; sampling schemes (Gumbel,
//    SynthID) leave only the chosen token finite and set `selected` to it, so that dist (or
//    greedy) returns it. `p` is left stale (later samplers recompute it) and `sorted` is cleared.
//    apply cannot return an error: an invalid step (NaN or +inf logits, an id outside the
//    vocabulary) leaves the candidates untouched and is counted; Stats() keeps the first error.
//    An empty candidate list is left alone.
//  - accept: appends the token to the response's context (llama_sampler_sample calls it).
//  - reset: starts the response again: context back to the prompt, the response's state
//    (contexts already seen, for skip_repeated; a canary member in progress) emptied.
//  - clone: an independent copy with the same account, prompt, context and state.
//  - free: releases everything (the account's keys are wiped).
// A sampler serves one sequence at a time (llama.cpp's samplers are not thread-safe either); the
// Watermarker behind it is shared, immutable and thread-safe.
#ifndef TRACEMARK_LLAMA_WATERMARK_SAMPLER_H_
#define TRACEMARK_LLAMA_WATERMARK_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "llama.h"
#include "tracemark/canary/processor.h"
#include "tracemark/engine/ledger_stage.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::llama {

struct WatermarkSamplerOptions {
  // Required. Shared by every sampler made from it; kept alive by them.
  std::shared_ptr<const watermark::Watermarker> watermarker;
  // Optional: the account's canary phrasings (docs/canary.md), applied before the watermark by
  // the serving chain; built for the model's tokenizer. Shared and kept alive like the watermarker.
  std::shared_ptr<const canary::CanaryProcessor> canary;
  // The account the response is served to; nullopt serves it anonymously (provider layer only).
  std::optional<uint64_t> account;
  // When set, its number of tokens must equal the watermarker's vocabulary size.
  const llama_vocab* vocab = nullptr;
  // The serving ledger (engine/ledger_stage.h): EndResponse then appends each response's record.
  // Not owned; must outlive the sampler and its clones.
  const engine::LedgerStage* ledger = nullptr;
};

// The sampler, owned by the caller until added to a chain (llama_sampler_free releases it).
// InvalidArgument when the watermarker is missing, the account id does not fit the payload, or
// the vocabulary (the model's, the watermark's, the canary's) does not match.
absl::StatusOr<llama_sampler*> NewWatermarkSampler(const WatermarkSamplerOptions& options);

// True if `sampler` was made by NewWatermarkSampler (or cloned from one).
bool IsWatermarkSampler(const llama_sampler* sampler);

// Sets the ids that precede the response (its prompt; only the last history_width() are used) and
// starts the response (as reset). InvalidArgument for a sampler that is not a watermark sampler or
// ids outside the vocabulary.
absl::Status SetPrompt(llama_sampler* sampler, absl::Span<const llama_token> prompt);

// Ends the response SetPrompt began: with a ledger, appends its record — the sampler's account,
// the prompt's last history_width() ids and `response` (every id served, as the caller kept
// them) — and restarts the response. InvalidArgument for a sampler that is not a watermark
// sampler or a negative id; the ledger's write errors. Serve the response once this returns OK.
absl::Status EndResponse(llama_sampler* sampler, absl::Span<const llama_token> response);

struct WatermarkSamplerStats {
  uint64_t steps = 0;        // apply calls with candidates
  uint64_t provider = 0;     // positions carrying the provider layer
  uint64_t account = 0;      // positions carrying an account layer (payload or fingerprint)
  uint64_t unmarked = 0;     // context too short or repeated: no watermark layer
  uint64_t canary = 0;       // canary sets whose mass moved (and forced continuation tokens)
  uint64_t failed = 0;       // invalid steps, left untouched
  absl::Status first_error;  // the first failed step's error (OK when none)
};

// Counts since the sampler was made (reset does not clear them). InvalidArgument for a sampler
// that is not a watermark sampler.
absl::StatusOr<WatermarkSamplerStats> Stats(const llama_sampler* sampler);

}  // namespace tracemark::llama

#endif  // TRACEMARK_LLAMA_WATERMARK_SAMPLER_H_
