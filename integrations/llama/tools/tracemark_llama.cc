// tracemark-llama: watermarked generation through llama.cpp, with the tracemark sampler in the
// sampler chain (top-k, top-p, temperature, tracemark, dist). Writes one JSON line per response:
// {"prompt", "completion", "account", "prompt_token_ids", "token_ids", "watermarked", "stats"},
// the prompt/completion form `tracemark scan` reads (prompt windows are then not scored).
//
//   tracemark-llama --model tiny.gguf --key master.key --account 42
//       --prompt "Fellow citizens" --max-tokens 200 --responses 3 > out.jsonl
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "llama.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/data_dir.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/llama/watermark_sampler.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/watermarker.h"

namespace {

struct Flags {
  std::string model;
  std::string key_file, key_env;
  std::string scheme = "kgw", watermark_spec;
  uint32_t epoch = 0;
  std::optional<uint64_t> account;
  std::string canary;            // tokenizer spec: canary phrasings on
  std::string ledger;            // the serving ledger's directory: one record per response
  std::string ledger_tokenizer;  // the spec recorded (default: gguf:MODEL FILE NAME)
  bool no_watermark = false;
  std::vector<std::string> prompts;
  std::string prompts_file;
  int max_tokens = 200;
  int responses = 1;
  int top_k = 0;
  float top_p = 1.0f, temperature = 1.0f;
  uint32_t seed = 1;
  int threads = 0;
  std::string logits_out;
  bool verbose = false;
};

// llama.cpp's log goes to stderr only with --verbose (it is chatty at load time).
void QuietLog(ggml_log_level level, const char* text, void* verbose) {
  if (*static_cast<bool*>(verbose) || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct ModelFree {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
struct ContextFree {
  void operator()(llama_context* c) const { llama_free(c); }
};
struct SamplerFree {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};

absl::StatusOr<std::vector<llama_token>> Tokenize(const llama_vocab* vocab,
                                                  const std::string& text) {
  const int32_t n = -llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), nullptr,
                                    0, /*add_special=*/true, /*parse_special=*/false);
  std::vector<llama_token> ids(static_cast<size_t>(std::max(n, 0)));
  if (n <= 0 || llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(), n,
                               true, false) != n) {
    return absl::InvalidArgumentError(absl::StrCat("cannot tokenise the prompt: \"", text, "\""));
  }
  return ids;
}

std::string Piece(const llama_vocab* vocab, llama_token id) {
  char buf[256];
  const int32_t n = llama_token_to_piece(vocab, id, buf, sizeof(buf), 0, false);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

absl::StatusOr<std::shared_ptr<const tracemark::watermark::Watermarker>> LoadWatermarker(
    const Flags& f, int32_t vocab_size) {
  using namespace tracemark::watermark;
  if (!f.key_file.empty() && !f.key_env.empty()) {
    return absl::InvalidArgumentError("give --key or --key-env, not both");
  }
  if (f.key_file.empty() && f.key_env.empty()) {
    return absl::InvalidArgumentError(
        "a master key is required: --key FILE or --key-env VAR (or --no-watermark)");
  }
  TRACEMARK_ASSIGN_OR_RETURN(Key master, f.key_env.empty()
                                             ? ReadMasterKeyFile(f.key_file)
                                             : ReadMasterKeyFromEnv(f.key_env.c_str()));
  TRACEMARK_ASSIGN_OR_RETURN(Key epoch_key, DeriveEpochKey(master, f.epoch));
  TRACEMARK_ASSIGN_OR_RETURN(
      Config config, tracemark::detect::WatermarkConfig(f.scheme, f.watermark_spec, vocab_size));
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Watermarker> wm,
                             Watermarker::Create(epoch_key, config));
  return std::shared_ptr<const Watermarker>(std::move(wm));
}

// Canary phrasings over the built-in lexicon for the model's tokenizer (`spec`, as the CLI's
// --tokenizer takes it: tiktoken:r50k_base for the tiny test model).
absl::StatusOr<std::shared_ptr<const tracemark::canary::CanaryProcessor>> LoadCanary(
    const std::string& spec) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tracemark::tokenizer::Tokenizer> tok,
                             tracemark::tokenizer::LoadTokenizer(spec, tracemark::base::DataDir()));
  TRACEMARK_ASSIGN_OR_RETURN(
      std::unique_ptr<tracemark::canary::CanaryProcessor> proc,
      tracemark::canary::CanaryProcessor::Create(&tracemark::canary::Lexicon::BuiltIn(), *tok));
  return std::shared_ptr<const tracemark::canary::CanaryProcessor>(std::move(proc));
}

absl::Status WriteLogits(const std::string& path, const float* logits, int32_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(logits), static_cast<std::streamsize>(n) * 4);
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// The prompts of --prompt and of --prompts FILE (its non-empty lines, after them), and the flag
// checks that need no model.
absl::Status ReadPrompts(Flags& f) {
  if (!f.prompts_file.empty()) {
    std::ifstream in(f.prompts_file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", f.prompts_file));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) f.prompts.push_back(line);
    }
  }
  if (f.prompts.empty()) return absl::InvalidArgumentError("give --prompt or --prompts FILE");
  if (f.no_watermark && f.account.has_value()) {
    return absl::InvalidArgumentError("--account needs the watermark (drop --no-watermark)");
  }
  return absl::OkStatus();
}

// What a run generates with, in the order it is made (and freed in reverse): the model, the
// watermark and canaries, the context, and the sampler chain, which owns the tracemark sampler
// `mark` (null without the watermark).
struct Llama {
  std::unique_ptr<llama_model, ModelFree> model;
  const llama_vocab* vocab = nullptr;
  int32_t n_vocab = 0;
  std::shared_ptr<const tracemark::watermark::Watermarker> wm;
  std::shared_ptr<const tracemark::canary::CanaryProcessor> canary;
  std::unique_ptr<llama_context, ContextFree> ctx;
  uint32_t n_ctx = 0;
  std::unique_ptr<tracemark::ledger::Writer> ledger;  // with --ledger; outlives the sampler
  tracemark::engine::LedgerStage ledger_stage;
  std::unique_ptr<llama_sampler, SamplerFree> chain;
  llama_sampler* mark = nullptr;
};

// The model, on the CPU (n_gpu_layers 0), and its vocabulary.
absl::Status LoadModel(const Flags& f, Llama* l) {
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  l->model.reset(llama_model_load_from_file(f.model.c_str(), mp));
  if (l->model == nullptr) return absl::NotFoundError(absl::StrCat("cannot load model ", f.model));
  l->vocab = llama_model_get_vocab(l->model.get());
  l->n_vocab = llama_vocab_n_tokens(l->vocab);
  return absl::OkStatus();
}

// The watermarker (unless --no-watermark) and the canary processor (with --canary).
absl::Status LoadMarking(const Flags& f, Llama* l) {
  if (!f.no_watermark) {
    TRACEMARK_ASSIGN_OR_RETURN(l->wm, LoadWatermarker(f, l->n_vocab));
  }
  if (!f.canary.empty()) {
    if (l->wm == nullptr || !f.account.has_value()) {
      return absl::InvalidArgumentError("--canary needs the watermark and an --account");
    }
    TRACEMARK_ASSIGN_OR_RETURN(l->canary, LoadCanary(f.canary));
  }
  if (!f.ledger.empty()) {
    if (l->wm == nullptr) {
      return absl::InvalidArgumentError(
          "--ledger records watermarked answers: drop --no-watermark");
    }
    TRACEMARK_ASSIGN_OR_RETURN(l->ledger, tracemark::ledger::Writer::Open(f.ledger));
    const std::string spec = !f.ledger_tokenizer.empty()
                                 ? f.ledger_tokenizer
                                 : "gguf:" + std::filesystem::path(f.model).filename().string();
    l->ledger_stage = {l->ledger.get(), f.epoch, spec};
  }
  return absl::OkStatus();
}

// A context as long as the model's training context, decoding a whole prompt in one batch.
absl::Status NewContext(const Flags& f, Llama* l) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(llama_model_n_ctx_train(l->model.get()));
  cp.n_batch = cp.n_ctx;
  cp.no_perf = true;
  if (f.threads > 0) cp.n_threads = cp.n_threads_batch = f.threads;
  l->ctx.reset(llama_init_from_model(l->model.get(), cp));
  if (l->ctx == nullptr) return absl::InternalError("cannot create a llama.cpp context");
  l->n_ctx = cp.n_ctx;
  return absl::OkStatus();
}

// The chain: distribution shaping, then tracemark, then the draw.
absl::Status BuildChain(const Flags& f, Llama* l) {
  l->chain.reset(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  llama_sampler* chain = l->chain.get();
  if (f.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(f.top_k));
  if (f.top_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(f.top_p, 1));
  if (f.temperature != 1.0f) {
    llama_sampler_chain_add(chain, llama_sampler_init_temp(f.temperature));
  }
  if (l->wm != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(l->mark,
                               tracemark::llama::NewWatermarkSampler(
                                   {.watermarker = l->wm,
                                    .canary = l->canary,
                                    .account = f.account,
                                    .vocab = l->vocab,
                                    .ledger = l->ledger != nullptr ? &l->ledger_stage : nullptr}));
    llama_sampler_chain_add(chain, l->mark);  // the chain owns it
  }
  llama_sampler_chain_add(chain, llama_sampler_init_dist(f.seed));
  return absl::OkStatus();
}

struct Completion {
  std::vector<llama_token> ids;  // without the end-of-generation token
  std::string text;
};

// One response to the prompt: up to --max-tokens steps, until an end-of-generation token. With
// `write_logits`, the first step's raw logits go to --logits-out.
absl::StatusOr<Completion> Respond(const Flags& f, const Llama& l,
                                   const std::vector<llama_token>& prompt_ids, bool write_logits) {
  llama_memory_clear(llama_get_memory(l.ctx.get()), true);
  // Not llama_sampler_reset(chain): that would reseed dist and repeat the last response.
  // SetPrompt starts the tracemark sampler's response (context and seen contexts).
  if (l.mark != nullptr) {
    TRACEMARK_RETURN_IF_ERROR(tracemark::llama::SetPrompt(l.mark, prompt_ids));
  }
  std::vector<llama_token> prompt = prompt_ids;  // llama_batch_get_one takes a mutable pointer
  llama_batch batch = llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size()));
  Completion c;
  llama_token next = 0;
  for (int step = 0; step < f.max_tokens; ++step) {
    if (llama_decode(l.ctx.get(), batch) != 0) {
      return absl::InternalError(absl::StrCat("llama_decode failed at step ", step));
    }
    if (step == 0 && write_logits) {
      TRACEMARK_RETURN_IF_ERROR(
          WriteLogits(f.logits_out, llama_get_logits_ith(l.ctx.get(), -1), l.n_vocab));
    }
    next = llama_sampler_sample(l.chain.get(), l.ctx.get(), -1);
    if (llama_vocab_is_eog(l.vocab, next)) break;
    c.ids.push_back(next);
    c.text += Piece(l.vocab, next);
    batch = llama_batch_get_one(&next, 1);
  }
  return c;
}

// A response's JSON line, with the tracemark sampler's running stats; the sampler's first error,
// if any, instead.
absl::StatusOr<nlohmann::json> ResponseJson(const Flags& f, const Llama& l,
                                            const std::string& prompt,
                                            const std::vector<llama_token>& prompt_ids,
                                            const Completion& c) {
  nlohmann::json j;
  j["prompt"] = prompt;
  j["completion"] = c.text;
  j["prompt_token_ids"] = prompt_ids;
  j["token_ids"] = c.ids;
  j["watermarked"] = l.mark != nullptr;
  if (f.account.has_value()) j["account"] = *f.account;
  if (l.mark != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(tracemark::llama::WatermarkSamplerStats s,
                               tracemark::llama::Stats(l.mark));
    j["stats"] = {{"steps", s.steps},
                  {"provider", s.provider},
                  {"account", s.account},
                  {"unmarked", s.unmarked},
                  {"failed", s.failed}};
    if (l.canary != nullptr) j["stats"]["canary"] = s.canary;
    if (!s.first_error.ok()) return s.first_error;
  }
  return j;
}

absl::Status Run(Flags& f) {
  TRACEMARK_RETURN_IF_ERROR(ReadPrompts(f));
  llama_log_set(QuietLog, &f.verbose);
  llama_backend_init();
  Llama l;
  TRACEMARK_RETURN_IF_ERROR(LoadModel(f, &l));
  TRACEMARK_RETURN_IF_ERROR(LoadMarking(f, &l));
  TRACEMARK_RETURN_IF_ERROR(NewContext(f, &l));
  TRACEMARK_RETURN_IF_ERROR(BuildChain(f, &l));
  for (size_t pi = 0; pi < f.prompts.size(); ++pi) {
    TRACEMARK_ASSIGN_OR_RETURN(std::vector<llama_token> prompt_ids,
                               Tokenize(l.vocab, f.prompts[pi]));
    if (prompt_ids.size() + static_cast<size_t>(f.max_tokens) > l.n_ctx) {
      return absl::InvalidArgumentError(absl::StrCat("prompt ", pi + 1, " (", prompt_ids.size(),
                                                     " ids) plus --max-tokens exceeds the model's ",
                                                     l.n_ctx, "-token context"));
    }
    for (int r = 0; r < f.responses; ++r) {
      const bool write_logits = r == 0 && pi == 0 && !f.logits_out.empty();
      TRACEMARK_ASSIGN_OR_RETURN(const Completion c, Respond(f, l, prompt_ids, write_logits));
      TRACEMARK_ASSIGN_OR_RETURN(const nlohmann::json j,
                                 ResponseJson(f, l, f.prompts[pi], prompt_ids, c));
      // The ledger's record is written before the response is.
      if (l.mark != nullptr)
        TRACEMARK_RETURN_IF_ERROR(tracemark::llama::EndResponse(l.mark, c.ids));
      std::cout << j.dump() << "\n";
    }
  }
  if (l.ledger != nullptr) TRACEMARK_RETURN_IF_ERROR(l.ledger->Close());
  std::cout.flush();
  if (!std::cout) return absl::DataLossError("cannot write to standard output");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"Watermarked generation through llama.cpp with the tracemark sampler"};
  app.add_option("--model", f.model, "GGUF model file")->required();
  app.add_option("--key", f.key_file, "Master secret file (32 bytes, mode 0600)");
  app.add_option("--key-env", f.key_env, "Environment variable holding the master secret (hex)");
  app.add_option("--scheme", f.scheme, "Provider scheme: kgw, gumbel or synthid")
      ->capture_default_str();
  app.add_option("--watermark", f.watermark_spec, "Further parameters, e.g. gamma=0.25,delta=2");
  app.add_option("--epoch", f.epoch, "Key epoch")->capture_default_str();
  app.add_option("--account", f.account, "Account served (absent: anonymous, provider layer)");
  app.add_option("--canary", f.canary,
                 "Canary phrasings before the watermark, with the model's tokenizer "
                 "(e.g. tiktoken:r50k_base); needs --account");
  app.add_option("--ledger", f.ledger,
                 "Serving ledger directory: one record per response (docs/ledger.md)");
  app.add_option("--ledger-tokenizer", f.ledger_tokenizer,
                 "Tokenizer spec recorded in the ledger (default: gguf:MODEL-FILE-NAME)");
  app.add_flag("--no-watermark", f.no_watermark, "Generate without the tracemark sampler");
  app.add_option("--prompt", f.prompts, "Prompt (repeatable)");
  app.add_option("--prompts", f.prompts_file, "File of prompts, one a line");
  app.add_option("--max-tokens", f.max_tokens, "Tokens per response")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--responses", f.responses, "Responses per prompt")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--top-k", f.top_k, "Top-k (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", f.top_p, "Top-p (1: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--temperature", f.temperature, "Temperature")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", f.seed, "Sampling seed (dist)")->capture_default_str();
  app.add_option("--threads", f.threads, "llama.cpp threads (0: its default)");
  app.add_option("--logits-out", f.logits_out,
                 "Write the first step's raw logits (float32) to this file");
  app.add_flag("--verbose", f.verbose, "Show llama.cpp's log");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  const absl::Status s = Run(f);
  llama_backend_free();
  if (!s.ok()) {
    std::cerr << "tracemark-llama: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
