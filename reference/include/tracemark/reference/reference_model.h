// The built-in reference model: a real BPE tokenizer and an interpolated Kneser-Ney n-gram model
// trained on a real English corpus, wrapped in the decode loop a serving engine runs, so that the
// watermark is exercised in a real sampling loop on a machine with no downloadable weights.
//
//   auto tok = tokenizer::LoadTiktokenFromDataDir("data", "cl100k_base");
//   auto model = TrainOnTextFiles(files, **tok, /*order=*/4, progress);
//   ReferenceGenerator gen(&*model, tok->get());
//   GenerateOptions opt;  opt.max_tokens = 200;  opt.seed = 1;
//   auto out = gen.Generate("The state of the Union", watermarker, &account_keys, opt);
//
// ReferenceGenerator is thread-safe for concurrent Generate() calls (the model and tokenizer are
// immutable; each call has its own state).
#ifndef TRACEMARK_REFERENCE_REFERENCE_MODEL_H_
#define TRACEMARK_REFERENCE_REFERENCE_MODEL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/canary/processor.h"
#include "tracemark/engine/ledger_stage.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/refmodel/kneser_ney.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::reference {

// The corpus files under `data_dir` that set-up fetched (State of the Union addresses), sorted.
// NotFound, naming scripts/setup.sh, when they are absent.
absl::StatusOr<std::vector<std::string>> CorpusFiles(const std::string& data_dir);

// Default file name of the trained model under `data_dir`.
std::string DefaultModelPath(const std::string& data_dir);

// Tokenises each file as one document and trains a model of `order`. `progress`, if set, is called
// after each file with (files done, files total).
absl::StatusOr<refmodel::KneserNeyModel> TrainOnTextFiles(
    const std::vector<std::string>& files, const tokenizer::Tokenizer& tok, int order,
    const std::function<void(size_t, size_t)>& progress = nullptr);

struct GenerateOptions {
  int max_tokens = 200;
  double temperature = 1.0;  // logits are log-probabilities / temperature; 0: greedy (top_k 1)
  int top_k = 64;            // 0: no limit
  double top_p = 1.0;        // nucleus mass; 1: no truncation
  uint64_t seed = 1;         // engine RNG (sampling where the watermark does not choose)
  // Canary phrasings (docs/canary.md), keyed by the account: the serving chain applies them before
  // the watermark (engine/serving_chain.h), or alone when there is no watermarker. An anonymous
  // request (no account) gets none. Not owned.
  const canary::CanaryProcessor* canary = nullptr;
  // The serving ledger (engine/ledger_stage.h): one record per generation, written by the serving
  // chain when the generation ends; a failed write fails the generation. Needs a watermarker or
  // canary phrasings (a chain). Not owned.
  const engine::LedgerStage* ledger = nullptr;
  // Per-token log-probabilities in Generation::logprobs: -1 for none, else the sampled token's
  // and this many most likely alternatives' (at most 20). They are the model's own distribution,
  // before temperature, truncation and any logit processor (what vLLM reports by default).
  int top_logprobs = -1;
  // An engine's own logit processor, if any: called at each step with the history and the
  // temperature-scaled log-probabilities (which it may change) before truncation and the serving
  // chain. Must be thread-safe when generations run concurrently.
  std::function<void(absl::Span<const int32_t> history, absl::Span<float> logits)> logit_adjust;
};

struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

struct Generation {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> ids;  // generated ids only
  std::string text;          // decoded generated ids
  // Positions per layer (index: watermark::Layer) and positions where the scheme chose the token.
  uint64_t layer_counts[4] = {0, 0, 0, 0};
  uint64_t chosen = 0;
  // Steps at which a canary set's mass was given to the keyed member.
  uint64_t canary_moves = 0;
  std::vector<TokenLogprobs> logprobs;  // one per generated id when options.top_logprobs >= 0

  // Prompt ids followed by the generated ids (what a detector scores from prompt_ids.size()).
  std::vector<int32_t> AllIds() const {
    std::vector<int32_t> all = prompt_ids;
    all.insert(all.end(), ids.begin(), ids.end());
    return all;
  }
};

class ReferenceGenerator {
 public:
  // Neither pointer is owned; both must outlive the generator. The tokenizer's vocabulary must
  // match the model's.
  ReferenceGenerator(const refmodel::KneserNeyModel* model, const tokenizer::Tokenizer* tok)
      : model_(model), tok_(tok) {}

  // Samples up to max_tokens after `prompt`, each step's top-k/top-p candidates through the
  // serving chain of `watermarker` and options.canary (engine/serving_chain.h), as an engine
  // would. `watermarker` may be null (plain sampling); `account` may be null (provider layer
  // only). InvalidArgument on bad options or a vocabulary mismatch between the model and the
  // watermark configuration or the canary.
  absl::StatusOr<Generation> Generate(const std::string& prompt,
                                      const watermark::Watermarker* watermarker,
                                      const watermark::AccountKeys* account,
                                      const GenerateOptions& options) const;

  // Same loop from prompt ids (no tokenisation of the prompt).
  absl::StatusOr<Generation> GenerateIds(std::vector<int32_t> prompt_ids,
                                         const watermark::Watermarker* watermarker,
                                         const watermark::AccountKeys* account,
                                         const GenerateOptions& options) const;

 private:
  const refmodel::KneserNeyModel* model_;
  const tokenizer::Tokenizer* tok_;
};

}  // namespace tracemark::reference

#endif  // TRACEMARK_REFERENCE_REFERENCE_MODEL_H_
