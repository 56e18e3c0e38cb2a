// An OpenAI-compatible chat-completions endpoint over the reference generator, for serving a model
// on loopback: the provider's watermarked model (one account per API key), or a suspect student
// model, probed as an investigator would probe a public API (verifier/probe.h).
//
//   OpenAiEndpoint endpoint(&generator, &tokenizer, options);
//   TRACEMARK_ASSIGN_OR_RETURN(auto server, net::HttpServer::Start(
//       {}, [&](const net::HttpRequest& r) { return endpoint.Handle(r); }));
//
// Routes: POST /v1/chat/completions, GET /v1/models, GET /health. A chat request's messages are
// joined (contents separated by blank lines) into the prompt the n-gram model continues; it has no
// chat template. Supported fields: model, messages, max_tokens (or max_completion_tokens),
// temperature (0: greedy), top_p, seed, n (1 only), logprobs, top_logprobs (0..20); "stream"
// is refused. Log-probabilities are the model's own (before temperature and the watermark), with
// each token's exact bytes. Errors are OpenAI-shaped JSON with the HTTP status: 400 for a bad
// request, 401 for a missing or unknown API key (when keys are configured), 404 for an unknown
// route or model, 405 for a wrong method.
//
// Thread-safe: Handle() may be called concurrently.
#ifndef TRACEMARK_REFERENCE_OPENAI_ENDPOINT_H_
#define TRACEMARK_REFERENCE_OPENAI_ENDPOINT_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "tracemark/canary/processor.h"
#include "tracemark/net/http_server.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::reference {

struct OpenAiEndpointOptions {
  std::string model_name = "tracemark-reference";
  int default_max_tokens = 256;
  int max_tokens_limit = 4096;
  int top_k = 64;  // the generator's candidate limit
  // Provider mode: when set, every answer is watermarked for the account its API key maps to (the
  // provider layer only for requests without a known key, when no keys are configured). Not owned.
  const watermark::Watermarker* watermarker = nullptr;
  // Canary phrasings for the account as well (needs the watermarker for the account keys).
  const canary::CanaryProcessor* canary = nullptr;
  // The serving ledger: a record for every answer (with the watermarker); an answer whose record
  // cannot be written is a 500, never served unrecorded. Not owned.
  const engine::LedgerStage* ledger = nullptr;
  // SHA-256 (hex) of each API key -> account id. Empty: no authentication.
  absl::flat_hash_map<std::string, uint64_t> api_key_accounts;
};

class OpenAiEndpoint {
 public:
  // Neither pointer is owned; both must outlive the endpoint.
  OpenAiEndpoint(const ReferenceGenerator* generator, const tokenizer::Tokenizer* tokenizer,
                 OpenAiEndpointOptions options);

  net::HttpResponse Handle(const net::HttpRequest& request) const;

  uint64_t completions() const { return completions_.load(); }  // answered so far

 private:
  net::HttpResponse ChatCompletions(const net::HttpRequest& request) const;
  const ReferenceGenerator* generator_;
  const tokenizer::Tokenizer* tokenizer_;
  OpenAiEndpointOptions options_;
  mutable std::atomic<uint64_t> completions_{0};
  mutable std::atomic<uint64_t> requests_{0};
};

// Reads an API-key file: one "KEY ACCOUNT" pair a line ('#' comments and blank lines skipped),
// into the map OpenAiEndpointOptions wants (keys hashed). InvalidArgument names the bad line
// (never the key); NotFound for a missing file.
absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> ReadApiKeyFile(const std::string& path);

}  // namespace tracemark::reference

#endif  // TRACEMARK_REFERENCE_OPENAI_ENDPOINT_H_
