#include "tracemark/dataset/document.h"

#include <limits>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::dataset {
namespace {

using json = nlohmann::json;

absl::Status Bad(absl::string_view why) { return absl::InvalidArgumentError(why); }

bool IsModelRole(std::string role) {
  role = absl::AsciiStrToLower(role);
  static const auto* kModel = new absl::flat_hash_set<std::string>{
      "assistant", "gpt", "model", "chatgpt", "bot", "bing", "bard", "claude", "gpt-4"};
  return kModel->contains(role);
}

// A message's text: a string, or a list of parts whose text parts are joined.
absl::StatusOr<std::string> ContentText(const json& content, absl::string_view where) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  if (content.is_array()) {
    std::string out;
    for (const json& part : content) {
      if (part.is_string()) {
        out += part.get<std::string>();
      } else if (part.is_object() && part.contains("text") && part["text"].is_string()) {
        out += part["text"].get<std::string>();
      }  // images, audio and tool calls carry no scored text
    }
    return out;
  }
  return Bad(absl::StrCat(where, ": content is neither a string nor a list of parts"));
}

absl::StatusOr<std::string> StringField(const json& record, const char* key) {
  if (!record.contains(key) || record[key].is_null()) return std::string();
  if (!record[key].is_string()) return Bad(absl::StrCat("\"", key, "\" is not a string"));
  return record[key].get<std::string>();
}

// Turns in order; model turns become segments whose context is the nearest preceding other turn.
absl::Status FromTurns(const json& turns, const char* list_key, const char* role_key,
                       const char* text_key, Document* doc) {
  if (!turns.is_array()) return Bad(absl::StrCat("\"", list_key, "\" is not a list"));
  std::string context;
  for (size_t i = 0; i < turns.size(); ++i) {
    const json& t = turns[i];
    const std::string where = absl::StrCat(list_key, "[", i, "]");
    if (!t.is_object()) return Bad(absl::StrCat(where, " is not an object"));
    if (!t.contains(role_key) || !t[role_key].is_string()) {
      return Bad(absl::StrCat(where, " has no \"", role_key, "\" string"));
    }
    if (!t.contains(text_key)) return Bad(absl::StrCat(where, " has no \"", text_key, "\""));
    TRACEMARK_ASSIGN_OR_RETURN(std::string text, ContentText(t[text_key], where));
    if (IsModelRole(t[role_key].get<std::string>())) {
      if (!text.empty()) doc->segments.push_back(Segment{context, text});
    } else {
      context = std::move(text);
    }
  }
  return absl::OkStatus();
}

// The bytes of one logprobs entry: its "bytes" list when given, else its "token" string.
bool EntryBytes(const json& e, std::string* out) {
  if (!e.is_object()) return false;
  if (e.contains("bytes") && e["bytes"].is_array()) {
    out->clear();
    for (const json& b : e["bytes"]) {
      if (!b.is_number_integer() || b.get<int64_t>() < 0 || b.get<int64_t>() > 255) return false;
      out->push_back(static_cast<char>(b.get<int>()));
    }
    return true;
  }
  if (!e.contains("token") || !e["token"].is_string()) return false;
  *out = e["token"].get<std::string>();
  return true;
}

// OpenAI chat logprobs: {"content": [{"token", "bytes", "logprob", "top_logprobs": [...]}]}.
absl::Status ParseLogprobs(const json& lp, std::vector<TokenChoice>* out) {
  if (!lp.is_object() || !lp.contains("content") || !lp["content"].is_array()) {
    return Bad("\"logprobs\" has no \"content\" list");
  }
  out->clear();
  for (size_t i = 0; i < lp["content"].size(); ++i) {
    const json& e = lp["content"][i];
    TokenChoice c;
    if (!EntryBytes(e, &c.sampled))
      return Bad(absl::StrCat("logprobs.content[", i, "] is malformed"));
    if (e.contains("top_logprobs") && e["top_logprobs"].is_array()) {
      double best = -std::numeric_limits<double>::infinity();
      for (const json& t : e["top_logprobs"]) {
        std::string bytes;
        if (!EntryBytes(t, &bytes) || !t.contains("logprob") || !t["logprob"].is_number()) {
          return Bad(absl::StrCat("logprobs.content[", i, "].top_logprobs is malformed"));
        }
        if (t["logprob"].get<double>() > best) {
          best = t["logprob"].get<double>();
          c.top = std::move(bytes);
        }
      }
    }
    out->push_back(std::move(c));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseRecord(const json& record, Document* doc) {
  if (!record.is_object()) return Bad("the record is not a JSON object");
  doc->segments.clear();
  if (record.contains("id")) {
    const json& id = record["id"];
    if (id.is_string()) {
      doc->id = id.get<std::string>();
    } else if (id.is_number_integer() || id.is_number_unsigned()) {
      doc->id = id.dump();
    }
  }
  if (record.contains("messages")) {
    TRACEMARK_RETURN_IF_ERROR(FromTurns(record["messages"], "messages", "role", "content", doc));
  } else if (record.contains("conversations")) {
    TRACEMARK_RETURN_IF_ERROR(
        FromTurns(record["conversations"], "conversations", "from", "value", doc));
  } else if (record.contains("instruction") && record.contains("output")) {
    TRACEMARK_ASSIGN_OR_RETURN(std::string instruction, StringField(record, "instruction"));
    TRACEMARK_ASSIGN_OR_RETURN(std::string input, StringField(record, "input"));
    TRACEMARK_ASSIGN_OR_RETURN(std::string output, StringField(record, "output"));
    if (!input.empty()) absl::StrAppend(&instruction, "\n\n", input);
    if (!output.empty()) doc->segments.push_back(Segment{instruction, output});
  } else if (record.contains("prompt") &&
             (record.contains("completion") || record.contains("response"))) {
    TRACEMARK_ASSIGN_OR_RETURN(std::string prompt, StringField(record, "prompt"));
    TRACEMARK_ASSIGN_OR_RETURN(
        std::string out,
        StringField(record, record.contains("completion") ? "completion" : "response"));
    if (!out.empty()) doc->segments.push_back(Segment{prompt, out});
  } else if (record.contains("text")) {
    TRACEMARK_ASSIGN_OR_RETURN(std::string text, StringField(record, "text"));
    if (!text.empty()) doc->segments.push_back(Segment{"", text});
  } else {
    return Bad(
        "unknown record shape (expected \"messages\", \"conversations\", "
        "\"instruction\"/\"output\", \"prompt\"/\"completion\" or \"text\")");
  }
  if (doc->segments.empty()) return Bad("no model-written text in the record");
  doc->logprobs_error.clear();
  if (record.contains("window") && !record["window"].is_null()) {
    const json& w = record["window"];
    std::vector<int32_t>& ids = doc->segments.back().window;
    bool ok = w.is_array() && !w.empty();
    for (size_t i = 0; ok && i < w.size(); ++i) {
      ok = w[i].is_number_integer() && w[i].get<int64_t>() >= 0 &&
           w[i].get<int64_t>() < (int64_t{1} << 31);
      if (ok) ids.push_back(static_cast<int32_t>(w[i].get<int64_t>()));
    }
    if (!ok) {
      ids.clear();
      doc->logprobs_error = "\"window\" is not a list of token ids";
    }
  }
  if (record.contains("logprobs") && !record["logprobs"].is_null()) {
    if (absl::Status s = ParseLogprobs(record["logprobs"], &doc->segments.back().choices);
        !s.ok()) {
      doc->segments.back().choices.clear();
      doc->segments.back().window.clear();
      doc->logprobs_error = std::string(s.message());
    }
  }
  return absl::OkStatus();
}

absl::Status ParseRecordText(absl::string_view line, Document* doc) {
  // Scraped datasets hold stray bytes inside strings; JSON parsers refuse them, so they are
  // repaired as a text file's are (outside strings no byte above 0x7F is valid JSON anyway).
  std::string repaired;
  doc->repaired_utf8 = !tokenizer::IsValidUtf8(std::string_view(line.data(), line.size()));
  if (doc->repaired_utf8) {
    repaired = tokenizer::ReplaceInvalidUtf8(std::string_view(line.data(), line.size()));
    line = repaired;
  }
  json record = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) {
    // Parse again with exceptions for the position of the error (the message is the library's).
    try {
      [[maybe_unused]] const json again = json::parse(line.begin(), line.end());
    } catch (const json::parse_error& e) {
      return Bad(absl::StrCat("invalid JSON at byte ", e.byte));
    }
    return Bad("invalid JSON");
  }
  return ParseRecord(record, doc);
}

}  // namespace tracemark::dataset
