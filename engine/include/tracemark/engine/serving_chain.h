// The serving chain: what every engine calls at each decode step, so that every engine gets the
// same signals in the same order — the canary choice (the account's phrasings), then the watermark
// layers (provider, account) — from one validation of the step's logits and one state object per
// response, and at the end of the response the serving ledger's record (engine/ledger_stage.h). The
// C ABI, the Python package (Hugging Face, vLLM), the llama.cpp sampler and the reference model's
// loop all call it; the CUDA kernel takes the bias layers of a chain without canaries
// (cuda/batch_watermarker.h).
//
//   auto wm = watermark::Watermarker::Create(epoch_key, config);         // once
//   auto canary = canary::CanaryProcessor::Create(&lexicon, tokenizer);   // once (optional)
//   auto chain = ServingChain::Create(wm->get(), canary->get());          // once
//   auto account = (*wm)->ForAccount(42);                                 // once per request
//   Response response;                                                    // once per response
//   for (...) {                                                           // each step
//     auto step = chain->ProcessSparse(&*account, history, absl::MakeSpan(cands), &response);
//     if (!step.ok()) ...;  // invalid input: nothing was modified
//     token = step->token_chosen ? step->token : engine_sample(cands);
//   }
//   chain->EndResponse(&*account, prompt_ids, response_ids, &response);   // the ledger record
//
// Contract. `history` is the ids before the position, prompt included; only the last
// history_width() are read, so an engine may pass just those. At a step the chain (1) validates
// the logits once (watermark/logits.h) and, with canaries, the ids the canary reads; (2) with
// canaries and an account, moves each applicable canary set's mass to the account's keyed member
// (canary/processor.h); (3) applies the watermark layers to the result (watermark/watermarker.h):
// bias schemes add their bias, sampling schemes pick the token and set every other logit to -inf.
// An anonymous request (`account` null) gets the provider layer only, and no canary. Every
// decision is deterministic given keys, configuration, history, logits and the response's state,
// so any two engines fed the same inputs produce the same outputs, bit for bit (tested).
// InvalidArgument (nothing modified) for invalid logits or ids, a row not of the vocabulary's
// length, or account keys derived under another epoch key or configuration.
//
// The chain does not own its stages: the Watermarker and CanaryProcessor must outlive it. It is
// immutable and thread-safe; a Response belongs to one response at a time.
#ifndef TRACEMARK_ENGINE_SERVING_CHAIN_H_
#define TRACEMARK_ENGINE_SERVING_CHAIN_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/canary/processor.h"
#include "tracemark/engine/ledger_stage.h"
#include "tracemark/engine/response.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::engine {

// What one step did.
struct Step {
  watermark::Layer layer = watermark::Layer::kNone;  // the watermark signal at this position
  bool token_chosen = false;  // the scheme picked the token (Gumbel, SynthID): `token`
  int32_t token = -1;
  int canary_moves = 0;  // canary sets whose mass moved, plus one for a forced continuation
};

class ServingChain {
 public:
  // Either may be null (no watermark: canary phrasings alone, as a study of their cost measures
  // them; no canary phrasings), not both. InvalidArgument when the canary was built for another
  // vocabulary than the watermark's configuration. `ledger` (may be null; not owned, must
  // outlive the chain) writes one record per response at EndResponse; InvalidArgument when it
  // has no writer.
  static absl::StatusOr<ServingChain> Create(const watermark::Watermarker* watermarker,
                                             const canary::CanaryProcessor* canary = nullptr,
                                             const LedgerStage* ledger = nullptr);

  // Null when the chain has no watermark layers.
  const watermark::Watermarker* watermarker() const { return watermarker_; }
  // Null when the chain has no canary phrasings.
  const canary::CanaryProcessor* canary() const { return canary_; }
  // Null when the chain writes no ledger.
  const LedgerStage* ledger() const { return ledger_; }
  int32_t vocab_size() const;
  // The trailing history ids a step reads: h without canaries, at least
  // CanaryProcessor::kHistoryIds with them.
  size_t history_width() const;

  // One step over a sparse candidate list (after the engine's top-k/top-p), cost O(k).
  absl::StatusOr<Step> ProcessSparse(const watermark::AccountKeys* account,
                                     absl::Span<const int32_t> history,
                                     absl::Span<watermark::Candidate> candidates,
                                     Response* response) const;
  // One step over a dense row of vocab_size() logits, cost O(vocab).
  absl::StatusOr<Step> ProcessDense(const watermark::AccountKeys* account,
                                    absl::Span<const int32_t> history, absl::Span<float> logits,
                                    Response* response) const;
  // Ends a response: with a ledger, appends its record — `account`'s id (none for an anonymous
  // request), the epoch and the watermarker's key id, the time, the trailing prompt ids the
  // stage keeps and every id of `response_ids` — then resets `response` for the next one (also
  // when the append fails). `prompt` is the prompt's ids as the model saw them. The ledger's
  // write errors (ledger/writer.h); InvalidArgument for a negative id.
  absl::Status EndResponse(const watermark::AccountKeys* account, absl::Span<const int32_t> prompt,
                           absl::Span<const int32_t> response_ids, Response* response) const;

  // B rows: row b has the history histories[b*width .. b*width+width) (its last `width` ids,
  // oldest first; leading negative ids mark positions before the start of a short history), the
  // logits logits[b*V .. b*V+V), the account accounts[b] (may be null) and the response
  // responses[b] (may be null; `responses` may be empty). `width` must be at least
  // history_width(). Every row is validated before any is modified.
  absl::Status ProcessBatch(absl::Span<const watermark::AccountKeys* const> accounts,
                            absl::Span<const int32_t> histories, size_t width,
                            absl::Span<float> logits, absl::Span<Response* const> responses,
                            absl::Span<Step> results) const;

 private:
  ServingChain(const watermark::Watermarker* wm, const canary::CanaryProcessor* canary,
               const LedgerStage* ledger)
      : watermarker_(wm), canary_(canary), ledger_(ledger) {}
  absl::Status CheckStep(const watermark::AccountKeys* account, absl::Span<const int32_t> history,
                         std::string_view where) const;
  Step Sparse(const watermark::AccountKeys* account, absl::Span<const int32_t> history,
              absl::Span<watermark::Candidate> candidates, Response* response) const;
  Step Dense(const watermark::AccountKeys* account, absl::Span<const int32_t> history,
             absl::Span<float> logits, float row_max, Response* response) const;

  const watermark::Watermarker* watermarker_;
  const canary::CanaryProcessor* canary_;
  const LedgerStage* ledger_;
};

}  // namespace tracemark::engine

#endif  // TRACEMARK_ENGINE_SERVING_CHAIN_H_
