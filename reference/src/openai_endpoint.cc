#include "tracemark/reference/openai_endpoint.h"

#include <ctime>
#include <fstream>

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
  if (!options_.api_key_accounts.empty()) {
    const std::string* auth = request.Header("authorization");
    if (auth == nullptr || !absl::StartsWithIgnoreCase(*auth, "bearer ")) {
      return ApiError(401, "invalid_request_error", "missing API key (Authorization: Bearer ...)",
                      "invalid_api_key");
    }
    const absl::string_view presented =
        absl::StripAsciiWhitespace(absl::string_view(*auth).substr(7));
    const auto it = options_.api_key_accounts.find(
        watermark::Sha256Hex(std::string_view(presented.data(), presented.size())));
    if (it == options_.api_key_accounts.end()) {
      return ApiError(401, "invalid_request_error", "unknown API key", "invalid_api_key");
    }
    account = it->second;
  }
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return ApiError(400, "invalid_request_error", "the body is not a JSON object");
  }
  auto bad = [](const std::string& m) { return ApiError(400, "invalid_request_error", m); };
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) return bad("model must be a string");
    if (body["model"].get<std::string>() != options_.model_name) {
      return ApiError(
          404, "invalid_request_error",
          absl::StrCat("model '", body["model"].get<std::string>(),
                       "' does not exist; this endpoint serves '", options_.model_name, "'"),
          "model_not_found");
    }
  }
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return bad("messages must be a non-empty array");
  }
  std::string prompt;
  for (const json& m : body["messages"]) {
    std::string text;
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !ContentText(m["content"], &text)) {
      return bad("each message needs a string role and a text content");
    }
    if (!prompt.empty() && !text.empty()) prompt += "\n\n";
    prompt += text;
  }
  // Booleans: absent or null means false; any other type is a bad request.
  auto flag = [&body](const char* key, bool* out) {
    *out = false;
    if (!body.contains(key) || body[key].is_null()) return true;
    if (!body[key].is_boolean()) return false;
    *out = body[key].get<bool>();
    return true;
  };
  bool stream = false, logprobs = false;
  if (!flag("stream", &stream) || !flag("logprobs", &logprobs)) {
    return bad("stream and logprobs must be booleans");
  }
  if (stream) return bad("stream is not supported by this endpoint");
  GenerateOptions o;
  o.top_k = options_.top_k;
  o.max_tokens = options_.default_max_tokens;
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    if (!body.contains(field) || body[field].is_null()) continue;
    if (!body[field].is_number_integer() || body[field].get<int64_t>() < 1 ||
        body[field].get<int64_t>() > options_.max_tokens_limit) {
      return bad(absl::StrCat(field, " must be an integer in 1..", options_.max_tokens_limit));
    }
    o.max_tokens = body[field].get<int>();
  }
  if (body.contains("temperature") && !body["temperature"].is_null()) {
    if (!body["temperature"].is_number() || body["temperature"].get<double>() < 0 ||
        body["temperature"].get<double>() > 2) {
      return bad("temperature must be a number in [0, 2]");
    }
    o.temperature = body["temperature"].get<double>();  // 0: greedy (GenerateOptions)
  }
  if (body.contains("top_p") && !body["top_p"].is_null()) {
    if (!body["top_p"].is_number() || !(body["top_p"].get<double>() > 0) ||
        body["top_p"].get<double>() > 1) {
      return bad("top_p must be a number in (0, 1]");
    }
    o.top_p = body["top_p"].get<double>();
  }
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1) {
    return bad("n must be 1 here");
  }
  o.seed = Mix(request_number ^ (static_cast<uint64_t>(std::time(nullptr)) << 20));
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) return bad("seed must be an integer");
    o.seed = Mix(static_cast<uint64_t>(body["seed"].get<int64_t>()));
  }
  int top = 0;
  if (body.contains("top_logprobs") && !body["top_logprobs"].is_null()) {
    if (!body["top_logprobs"].is_number_integer() || body["top_logprobs"].get<int>() < 0 ||
        body["top_logprobs"].get<int>() > 20) {
      return bad("top_logprobs must be an integer in 0..20");
    }
    if (!logprobs) return bad("top_logprobs needs logprobs: true");
    top = body["top_logprobs"].get<int>();
  }
  if (logprobs) o.top_logprobs = top;

  std::optional<watermark::AccountKeys> keys;
  if (options_.watermarker != nullptr && account.has_value()) {
    auto k = options_.watermarker->ForAccount(*account);
    if (!k.ok()) return ApiError(500, "server_error", "account keys unavailable");
    keys = std::move(*k);
    o.canary = options_.canary;  // keyed by the account; anonymous requests get none
  }
  auto g = generator_->Generate(prompt, options_.watermarker, keys ? &*keys : nullptr, o);
  if (!g.ok()) {
    return ApiError(g.status().code() == absl::StatusCode::kInvalidArgument ? 400 : 500,
                    "invalid_request_error", std::string(g.status().message()));
  }
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", g->text}}},
                 {"finish_reason", "length"}};
  if (logprobs) {
    json content = json::array();
    for (const TokenLogprobs& t : g->logprobs) {
      auto entry = [&](int32_t id, float lp) {
        const std::string bytes = tokenizer_->TokenBytes(id).value_or("");
        return json{{"token", bytes}, {"logprob", lp}, {"bytes", Bytes(bytes)}};
      };
      json e = entry(t.token, t.logprob);
      e["top_logprobs"] = json::array();
      for (const auto& [id, lp] : t.top) e["top_logprobs"].push_back(entry(id, lp));
      content.push_back(std::move(e));
    }
    choice["logprobs"] = {{"content", std::move(content)}};
  } else {
    choice["logprobs"] = nullptr;
  }
  completions_.fetch_add(1);
  const auto prompt_tokens = static_cast<int64_t>(g->prompt_ids.size());
  const auto completion_tokens = static_cast<int64_t>(g->ids.size());
  return JsonResponse(200, {{"id", absl::StrCat("chatcmpl-", request_number)},
                            {"object", "chat.completion"},
                            {"created", static_cast<int64_t>(std::time(nullptr))},
                            {"model", options_.model_name},
                            {"choices", json::array({choice})},
                            {"usage",
                             {{"prompt_tokens", prompt_tokens},
                              {"completion_tokens", completion_tokens},
                              {"total_tokens", prompt_tokens + completion_tokens}}}});
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
