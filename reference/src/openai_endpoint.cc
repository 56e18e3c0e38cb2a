#include "tracemark/reference/openai_endpoint.h"

#include <ctime>
#include <fstream>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tracemark/refmodel/sampling.h"
#include "tracemark/watermark/digest.h"

namespace tracemark::reference {
namespace {

using nlohmann::json;

net::HttpResponse JsonResponse(int status, const json& body) {
  net::HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

net::HttpResponse ApiError(int status, std::string_view type, const std::string& message,
                           std::string_view code = "") {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}};
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return JsonResponse(status, {{"error", e}});
}

// The text of a message's content: a string, or a list of {"type": "text", "text": ...} parts.
bool ContentText(const json& content, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return true;
  }
  if (!content.is_array()) return false;
  out->clear();
  for (const json& part : content) {
    if (!part.is_object() || !part.contains("text") || !part["text"].is_string()) return false;
    out->append(part["text"].get<std::string>());
  }
  return true;
}

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// A request's sampling seed from a counter or the caller's seed: SplitMix64's first output.
uint64_t Mix(uint64_t x) { return refmodel::SplitMix64(x).NextU64(); }

// A request field check's outcome: the error response to send, or nullopt to go on.
using ErrorReply = std::optional<net::HttpResponse>;

net::HttpResponse BadRequest(const std::string& message) {
  return ApiError(400, "invalid_request_error", message);
}

// The account of the request's bearer key, looked up by its SHA-256; none when no keys are
// configured (anonymous requests are then served). A missing or unknown key is a 401.
ErrorReply Authenticate(const net::HttpRequest& request,
                        const absl::flat_hash_map<std::string, uint64_t>& api_key_accounts,
                        std::optional<uint64_t>* account) {
  if (api_key_accounts.empty()) return std::nullopt;
  const std::string* auth = request.Header("authorization");
  if (auth == nullptr || !absl::StartsWithIgnoreCase(*auth, "bearer ")) {
    return ApiError(401, "invalid_request_error", "missing API key (Authorization: Bearer ...)",
                    "invalid_api_key");
  }
  const absl::string_view presented =
      absl::StripAsciiWhitespace(absl::string_view(*auth).substr(7));
  const auto it = api_key_accounts.find(
      watermark::Sha256Hex(std::string_view(presented.data(), presented.size())));
  if (it == api_key_accounts.end()) {
    return ApiError(401, "invalid_request_error", "unknown API key", "invalid_api_key");
  }
  *account = it->second;
  return std::nullopt;
}

// "model", when given, must name this endpoint's model (404 otherwise, as OpenAI answers).
ErrorReply CheckModel(const json& body, const std::string& model_name) {
  if (!body.contains("model") || body["model"].is_null()) return std::nullopt;
  if (!body["model"].is_string()) return BadRequest("model must be a string");
  if (body["model"].get<std::string>() == model_name) return std::nullopt;
  return ApiError(404, "invalid_request_error",
                  absl::StrCat("model '", body["model"].get<std::string>(),
                               "' does not exist; this endpoint serves '", model_name, "'"),
                  "model_not_found");
}

// The prompt: the messages' texts joined by blank lines (empty texts add no separator).
ErrorReply JoinMessages(const json& body, std::string* prompt) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return BadRequest("messages must be a non-empty array");
  }
  for (const json& m : body["messages"]) {
    std::string text;
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !ContentText(m["content"], &text)) {
      return BadRequest("each message needs a string role and a text content");
    }
    if (!prompt->empty() && !text.empty()) *prompt += "\n\n";
    *prompt += text;
  }
  return std::nullopt;
}

// A boolean field: absent or null means false; false for any other type (a bad request).
bool ReadFlag(const json& body, const char* key, bool* out) {
  *out = false;
  if (!body.contains(key) || body[key].is_null()) return true;
  if (!body[key].is_boolean()) return false;
  *out = body[key].get<bool>();
  return true;
}

// max_tokens (or its newer name max_completion_tokens, which wins when both are given).
ErrorReply ReadMaxTokens(const json& body, int max_tokens_limit, GenerateOptions* o) {
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    if (!body.contains(field) || body[field].is_null()) continue;
    if (!body[field].is_number_integer() || body[field].get<int64_t>() < 1 ||
        body[field].get<int64_t>() > max_tokens_limit) {
      return BadRequest(absl::StrCat(field, " must be an integer in 1..", max_tokens_limit));
    }
    o->max_tokens = body[field].get<int>();
  }
  return std::nullopt;
}

// temperature, top_p and n (1 only).
ErrorReply ReadSampling(const json& body, GenerateOptions* o) {
  if (body.contains("temperature") && !body["temperature"].is_null()) {
    if (!body["temperature"].is_number() || body["temperature"].get<double>() < 0 ||
        body["temperature"].get<double>() > 2) {
      return BadRequest("temperature must be a number in [0, 2]");
    }
    o->temperature = body["temperature"].get<double>();  // 0: greedy (GenerateOptions)
  }
  if (body.contains("top_p") && !body["top_p"].is_null()) {
    if (!body["top_p"].is_number() || !(body["top_p"].get<double>() > 0) ||
        body["top_p"].get<double>() > 1) {
      return BadRequest("top_p must be a number in (0, 1]");
    }
    o->top_p = body["top_p"].get<double>();
  }
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1) {
    return BadRequest("n must be 1 here");
  }
  return std::nullopt;
}

// The sampling seed: mixed from the caller's seed, else from the request counter and the clock.
ErrorReply ReadSeed(const json& body, uint64_t request_number, GenerateOptions* o) {
  o->seed = Mix(request_number ^ (static_cast<uint64_t>(std::time(nullptr)) << 20));
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) return BadRequest("seed must be an integer");
    o->seed = Mix(static_cast<uint64_t>(body["seed"].get<int64_t>()));
  }
  return std::nullopt;
}

// top_logprobs (0..20, with logprobs: true); o->top_logprobs stays -1 without logprobs.
ErrorReply ReadTopLogprobs(const json& body, bool logprobs, GenerateOptions* o) {
  int top = 0;
  if (body.contains("top_logprobs") && !body["top_logprobs"].is_null()) {
    if (!body["top_logprobs"].is_number_integer() || body["top_logprobs"].get<int>() < 0 ||
        body["top_logprobs"].get<int>() > 20) {
      return BadRequest("top_logprobs must be an integer in 0..20");
    }
    if (!logprobs) return BadRequest("top_logprobs needs logprobs: true");
    top = body["top_logprobs"].get<int>();
  }
  if (logprobs) o->top_logprobs = top;
  return std::nullopt;
}

// A chat request's prompt and generation options, checked field by field in a fixed order (the
// first bad field is the one reported).
ErrorReply ReadChatRequest(const json& body, const OpenAiEndpointOptions& options,
                           uint64_t request_number, std::string* prompt, GenerateOptions* o,
                           bool* logprobs) {
  if (auto error = CheckModel(body, options.model_name)) return error;
  if (auto error = JoinMessages(body, prompt)) return error;
  bool stream = false;
  if (!ReadFlag(body, "stream", &stream) || !ReadFlag(body, "logprobs", logprobs)) {
    return BadRequest("stream and logprobs must be booleans");
  }
  if (stream) return BadRequest("stream is not supported by this endpoint");
  o->top_k = options.top_k;
  o->max_tokens = options.default_max_tokens;
  if (auto error = ReadMaxTokens(body, options.max_tokens_limit, o)) return error;
  if (auto error = ReadSampling(body, o)) return error;
  if (auto error = ReadSeed(body, request_number, o)) return error;
  return ReadTopLogprobs(body, *logprobs, o);
}

// One token's log-probability entry: its exact bytes as text and as byte values.
json LogprobEntry(const tokenizer::Tokenizer& tokenizer, int32_t id, float lp) {
  const std::string bytes = tokenizer.TokenBytes(id).value_or("");
  return json{{"token", bytes}, {"logprob", lp}, {"bytes", Bytes(bytes)}};
}

// The answer's one choice: the text, and "logprobs": null, or each generated token's entry with
// its top alternatives'.
json ChoiceJson(const Generation& g, bool logprobs, const tokenizer::Tokenizer& tokenizer) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", g.text}}},
                 {"finish_reason", "length"}};
  if (!logprobs) {
    choice["logprobs"] = nullptr;
    return choice;
  }
  json content = json::array();
  for (const TokenLogprobs& t : g.logprobs) {
    json e = LogprobEntry(tokenizer, t.token, t.logprob);
    e["top_logprobs"] = json::array();
    for (const auto& [id, lp] : t.top) e["top_logprobs"].push_back(LogprobEntry(tokenizer, id, lp));
    content.push_back(std::move(e));
  }
  choice["logprobs"] = {{"content", std::move(content)}};
  return choice;
}

json CompletionJson(uint64_t request_number, const std::string& model_name, const json& choice,
                    const Generation& g) {
  const auto prompt_tokens = static_cast<int64_t>(g.prompt_ids.size());
  const auto completion_tokens = static_cast<int64_t>(g.ids.size());
  return {{"id", absl::StrCat("chatcmpl-", request_number)},
          {"object", "chat.completion"},
          {"created", static_cast<int64_t>(std::time(nullptr))},
          {"model", model_name},
          {"choices", json::array({choice})},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}}}};
}

}  // namespace

OpenAiEndpoint::OpenAiEndpoint(const ReferenceGenerator* generator,
                               const tokenizer::Tokenizer* tokenizer, OpenAiEndpointOptions options)
    : generator_(generator), tokenizer_(tokenizer), options_(std::move(options)) {}

net::HttpResponse OpenAiEndpoint::Handle(const net::HttpRequest& request) const {
  const std::string path = request.path();
  if (path == "/health") return JsonResponse(200, {{"status", "ok"}});
  if (path == "/v1/models") {
    if (request.method != "GET") return ApiError(405, "invalid_request_error", "use GET");
    return JsonResponse(200, {{"object", "list"},
                              {"data", json::array({{{"id", options_.model_name},
                                                     {"object", "model"},
                                                     {"owned_by", "tracemark"}}})}});
  }
  if (path == "/v1/chat/completions") {
    if (request.method != "POST") return ApiError(405, "invalid_request_error", "use POST");
    return ChatCompletions(request);
  }
  return ApiError(404, "invalid_request_error", absl::StrCat("no route ", path));
}

net::HttpResponse OpenAiEndpoint::ChatCompletions(const net::HttpRequest& request) const {
  const uint64_t request_number = requests_.fetch_add(1);
  std::optional<uint64_t> account;
  if (auto error = Authenticate(request, options_.api_key_accounts, &account)) return *error;
  const json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return BadRequest("the body is not a JSON object");
  }
  std::string prompt;
  GenerateOptions o;
  bool logprobs = false;
  if (auto error = ReadChatRequest(body, options_, request_number, &prompt, &o, &logprobs)) {
    return *error;
  }
  std::optional<watermark::AccountKeys> keys;
  if (options_.watermarker != nullptr && account.has_value()) {
    auto k = options_.watermarker->ForAccount(*account);
    if (!k.ok()) return ApiError(500, "server_error", "account keys unavailable");
    keys = std::move(*k);
    o.canary = options_.canary;  // keyed by the account; anonymous requests get none
  }
  if (options_.watermarker != nullptr) o.ledger = options_.ledger;
  auto g = generator_->Generate(prompt, options_.watermarker, keys ? &*keys : nullptr, o);
  if (!g.ok()) {
    return ApiError(g.status().code() == absl::StatusCode::kInvalidArgument ? 400 : 500,
                    "invalid_request_error", std::string(g.status().message()));
  }
  json choice = ChoiceJson(*g, logprobs, *tokenizer_);
  completions_.fetch_add(1);
  return JsonResponse(200, CompletionJson(request_number, options_.model_name, choice, *g));
}

absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> ReadApiKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read API-key file ", path));
  absl::flat_hash_map<std::string, uint64_t> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(l, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint64_t account = 0;
    if (f.size() != 2 || !absl::SimpleAtoi(f[1], &account)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": expected 'KEY ACCOUNT' (the key is not shown)"));
    }
    if (!out.emplace(watermark::Sha256Hex(std::string_view(f[0].data(), f[0].size())), account)
             .second) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", n, ": a key given twice"));
    }
  }
  return out;
}

}  // namespace tracemark::reference
