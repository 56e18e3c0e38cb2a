#include "tracemark/reference/reference_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/refmodel/sampling.h"

namespace tracemark::reference {

namespace fs = std::filesystem;

namespace {

// The k most likely ids of a log-probability row, most likely first (ties: smaller id first).
TokenLogprobs TopLogprobs(const std::vector<float>& lp, int k) {
  TokenLogprobs t;
  auto better = [](const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  for (size_t i = 0; i < lp.size(); ++i) {
    const std::pair<int32_t, float> c{static_cast<int32_t>(i), lp[i]};
    if (static_cast<int>(t.top.size()) < k) {
      t.top.push_back(c);
      std::push_heap(t.top.begin(), t.top.end(), better);  // worst on top
    } else if (k > 0 && better(c, t.top.front())) {
      std::pop_heap(t.top.begin(), t.top.end(), better);
      t.top.back() = c;
      std::push_heap(t.top.begin(), t.top.end(), better);
    }
  }
  std::sort_heap(t.top.begin(), t.top.end(), better);
  return t;
}

// Temperature 0 is greedy, as OpenAI-style APIs read it: the most likely candidate at
// temperature 1.
void ReadGreedy(GenerateOptions* options) {
  if (options->temperature == 0.0) {
    options->temperature = 1.0;
    options->top_k = 1;
  }
}

// InvalidArgument for an option out of range, vocabularies that differ, or canary phrasings
// without the watermark (checked in this order: the first problem is the one reported).
absl::Status CheckOptions(const GenerateOptions& options, int32_t vocab, int32_t tokenizer_vocab,
                          const watermark::Watermarker* watermarker) {
  if (options.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  if (!(options.temperature > 0.0) || !std::isfinite(options.temperature)) {
    return absl::InvalidArgumentError("temperature must be >= 0 (0: greedy)");
  }
  if (options.top_k < 0) return absl::InvalidArgumentError("top_k must be >= 0");
  if (!(options.top_p > 0.0 && options.top_p <= 1.0)) {
    return absl::InvalidArgumentError("top_p must be in (0, 1]");
  }
  if (tokenizer_vocab != vocab) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer vocabulary (", tokenizer_vocab,
                                                   ") differs from the model's (", vocab, ")"));
  }
  if (watermarker != nullptr && watermarker->config().vocab_size != vocab) {
    return absl::InvalidArgumentError(absl::StrCat("watermark configured for vocabulary ",
                                                   watermarker->config().vocab_size, ", model has ",
                                                   vocab));
  }
  if (options.top_logprobs < -1 || options.top_logprobs > 20) {
    return absl::InvalidArgumentError("top_logprobs must be in -1..20");
  }
  if (options.canary != nullptr && options.canary->vocab_size() != vocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        "canary built for vocabulary ", options.canary->vocab_size(), ", model has ", vocab));
  }
  return absl::OkStatus();
}

// A step's candidates from the model's log-probabilities (scaled in place by 1/temperature, then
// changed by the engine's logit processor if any): top-k and top-p truncated, best first.
void StepCandidates(const GenerateOptions& options, float inv_t, absl::Span<const int32_t> history,
                    std::vector<float>* logprobs, std::vector<watermark::Candidate>* cands) {
  for (float& l : *logprobs) l *= inv_t;
  if (options.logit_adjust) options.logit_adjust(history, absl::MakeSpan(*logprobs));
  const std::vector<int32_t> top = refmodel::TopCandidates(*logprobs, options.top_k, options.top_p);
  cands->clear();
  for (int32_t id : top) cands->push_back({id, (*logprobs)[static_cast<size_t>(id)]});
}

// The serving chain's step over the candidates (whose logits it may change): the token the scheme
// chose, or -1 where the engine samples. Counts the step's layer, choice and canary moves in out.
absl::StatusOr<int32_t> ChainStep(const engine::ServingChain& chain,
                                  const watermark::AccountKeys* account,
                                  absl::Span<const int32_t> history,
                                  std::vector<watermark::Candidate>* cands,
                                  engine::Response* response, Generation* out) {
  TRACEMARK_ASSIGN_OR_RETURN(
      engine::Step r, chain.ProcessSparse(account, history, absl::MakeSpan(*cands), response));
  out->canary_moves += static_cast<uint64_t>(r.canary_moves);
  out->layer_counts[static_cast<int>(r.layer)]++;
  if (!r.token_chosen) return -1;
  ++out->chosen;
  return r.token;
}

// The engine's draw: a candidate sampled from the candidates' logits with the uniform u.
absl::StatusOr<int32_t> SampleCandidate(const std::vector<watermark::Candidate>& cands, double u,
                                        std::vector<float>* cand_logits) {
  cand_logits->clear();
  for (const auto& c : cands) cand_logits->push_back(c.logit);
  TRACEMARK_ASSIGN_OR_RETURN(int32_t index, refmodel::SampleFromLogits(*cand_logits, u));
  return cands[static_cast<size_t>(index)].id;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CorpusFiles(const std::string& data_dir) {
  const fs::path dir = fs::path(data_dir) / "npm" / "sotu" / "data";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("corpus directory ", dir.string(),
                     " not found (name the data directory with --data-dir or TRACEMARK_DATA_DIR; "
                     "in a checkout, scripts/setup.sh fills ./data)"));
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path().string());
  }
  if (files.empty()) return absl::NotFoundError(absl::StrCat("no .txt files in ", dir.string()));
  std::sort(files.begin(), files.end());
  return files;
}

std::string DefaultModelPath(const std::string& data_dir) {
  return (fs::path(data_dir) / "refmodel-cl100k-o4.bin").string();
}

absl::StatusOr<refmodel::KneserNeyModel> TrainOnTextFiles(
    const std::vector<std::string>& files, const tokenizer::Tokenizer& tok, int order,
    const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::vector<int32_t>> docs;
  docs.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    TRACEMARK_ASSIGN_OR_RETURN(const std::string text, base::ReadFile(files[i], "corpus file"));
    absl::StatusOr<std::vector<int32_t>> ids = tok.Encode(text);
    if (!ids.ok()) {
      return absl::Status(ids.status().code(),
                          absl::StrCat(files[i], ": ", ids.status().message()));
    }
    docs.push_back(*std::move(ids));
    if (progress) progress(i + 1, files.size());
  }
  return refmodel::KneserNeyModel::Train(docs, tok.vocab_size(), order);
}

absl::StatusOr<Generation> ReferenceGenerator::Generate(const std::string& prompt,
                                                        const watermark::Watermarker* watermarker,
                                                        const watermark::AccountKeys* account,
                                                        const GenerateOptions& options) const {
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> prompt_ids, tok_->Encode(prompt));
  return GenerateIds(std::move(prompt_ids), watermarker, account, options);
}

absl::StatusOr<Generation> ReferenceGenerator::GenerateIds(
    std::vector<int32_t> prompt_ids, const watermark::Watermarker* watermarker,
    const watermark::AccountKeys* account, const GenerateOptions& given) const {
  GenerateOptions options = given;
  ReadGreedy(&options);
  const int32_t vocab = model_->vocab_size();
  TRACEMARK_RETURN_IF_ERROR(CheckOptions(options, vocab, tok_->vocab_size(), watermarker));
  std::optional<engine::ServingChain> chain;  // canary phrasings alone when no watermarker
  if (watermarker != nullptr || options.canary != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(
        chain, engine::ServingChain::Create(watermarker, options.canary, options.ledger));
  } else if (options.ledger != nullptr) {
    return absl::InvalidArgumentError("a ledger records watermarked or canary answers only");
  }
  Generation out;
  out.prompt_ids = prompt_ids;
  std::vector<int32_t> history = std::move(prompt_ids);
  std::vector<float> logprobs(static_cast<size_t>(vocab)), raw;
  std::vector<watermark::Candidate> cands;
  std::vector<float> cand_logits;
  engine::Response response;
  refmodel::SplitMix64 rng(options.seed);
  const float inv_t = static_cast<float>(1.0 / options.temperature);
  for (int step = 0; step < options.max_tokens; ++step) {
    model_->LogProbs(history, absl::MakeSpan(logprobs));
    if (options.top_logprobs >= 0) {
      raw = logprobs;  // kept for the sampled token's log-probability
      out.logprobs.push_back(TopLogprobs(raw, options.top_logprobs));
    }
    StepCandidates(options, inv_t, history, &logprobs, &cands);
    int32_t token = -1;
    const double u = rng.NextDouble();  // drawn every step so runs stay aligned
    if (chain) {
      TRACEMARK_ASSIGN_OR_RETURN(token,
                                 ChainStep(*chain, account, history, &cands, &response, &out));
    }
    if (token < 0) {
      TRACEMARK_ASSIGN_OR_RETURN(token, SampleCandidate(cands, u, &cand_logits));
    }
    history.push_back(token);
    out.ids.push_back(token);
    if (options.top_logprobs >= 0) {
      out.logprobs.back().token = token;
      out.logprobs.back().logprob = raw[static_cast<size_t>(token)];
    }
  }
  TRACEMARK_ASSIGN_OR_RETURN(out.text, tok_->Decode(out.ids));
  if (chain)
    TRACEMARK_RETURN_IF_ERROR(chain->EndResponse(account, out.prompt_ids, out.ids, &response));
  return out;
}

}  // namespace tracemark::reference
