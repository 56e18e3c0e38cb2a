#include "tracemark/ledger/import.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/status_macros.h"

namespace tracemark::ledger {
namespace {

using json = nlohmann::json;

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

absl::StatusOr<uint64_t> Unsigned(const json& v, std::string_view field, uint64_t max) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    return Bad(absl::StrCat("\"", absl::string_view(field.data(), field.size()),
                            "\" is not a non-negative integer"));
  }
  const uint64_t n = v.get<uint64_t>();
  if (n > max) {
    return Bad(
        absl::StrCat("\"", absl::string_view(field.data(), field.size()), "\" is over ", max));
  }
  return n;
}

absl::StatusOr<int64_t> TimeMicros(const json& v) {
  if (v.is_number()) {
    const double secs = v.get<double>();
    if (!(secs >= 0 && secs < 1e13)) return Bad("\"time\" is not seconds since 1970");
    return static_cast<int64_t>(secs * 1e6);
  }
  if (!v.is_string()) return Bad("\"time\" is neither RFC 3339 text nor seconds");
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, v.get<std::string>(), &t, &err)) {
    return Bad(absl::StrCat("\"time\" is not RFC 3339: ", err));
  }
  const int64_t us = absl::ToUnixMicros(t);
  if (us < 0) return Bad("\"time\" is before 1970");
  return us;
}

// The ids of one side: "<text_field>" tokenized, or "<ids_field>" checked; exactly one of them
// (`optional`: neither gives none).
absl::StatusOr<std::vector<int32_t>> Side(const json& line, const char* text_field,
                                          const char* ids_field, bool optional,
                                          const tokenizer::Tokenizer& tok) {
  const bool text = line.contains(text_field), ids = line.contains(ids_field);
  if (text && ids) return Bad(absl::StrCat("both \"", text_field, "\" and \"", ids_field, "\""));
  if (!text && !ids) {
    if (optional) return std::vector<int32_t>();
    return Bad(absl::StrCat("no \"", text_field, "\" (text) or \"", ids_field, "\" (ids)"));
  }
  if (text) {
    const json& v = line[text_field];
    if (!v.is_string()) return Bad(absl::StrCat("\"", text_field, "\" is not a string"));
    return tok.Encode(v.get<std::string>());
  }
  const json& v = line[ids_field];
  if (!v.is_array()) return Bad(absl::StrCat("\"", ids_field, "\" is not an array of ids"));
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (const json& id : v) {
    TRACEMARK_ASSIGN_OR_RETURN(
        const uint64_t n, Unsigned(id, ids_field, static_cast<uint64_t>(tok.vocab_size() - 1)));
    out.push_back(static_cast<int32_t>(n));
  }
  return out;
}

absl::Status CheckFields(const json& line) {
  static constexpr const char* kKnown[] = {"account",    "epoch",      "time",        "prompt",
                                           "completion", "prompt_ids", "response_ids"};
  for (const auto& [key, value] : line.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return Bad(absl::StrCat("unknown field \"", key, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Record> ParseImportLine(std::string_view text, const ImportDefaults& defaults,
                                       const tokenizer::Tokenizer& tokenizer) {
  const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.is_discarded() || !line.is_object()) {
    return Bad("not a JSON object (or a string in it is not valid UTF-8)");
  }
  TRACEMARK_RETURN_IF_ERROR(CheckFields(line));
  Record r;
  if (line.contains("account") && !line["account"].is_null()) {
    TRACEMARK_ASSIGN_OR_RETURN(r.account, Unsigned(line["account"], "account", kMaxAccount));
  }
  r.epoch = defaults.epoch;
  if (line.contains("epoch")) {
    TRACEMARK_ASSIGN_OR_RETURN(
        const uint64_t e, Unsigned(line["epoch"], "epoch", std::numeric_limits<uint32_t>::max()));
    r.epoch = static_cast<uint32_t>(e);
  }
  if (r.epoch == defaults.epoch) r.epoch_key_id = defaults.epoch_key_id;
  r.time_us = defaults.time_us;
  if (line.contains("time")) {
    TRACEMARK_ASSIGN_OR_RETURN(r.time_us, TimeMicros(line["time"]));
  }
  r.tokenizer = defaults.tokenizer;
  TRACEMARK_ASSIGN_OR_RETURN(r.prompt_ids, Side(line, "prompt", "prompt_ids", true, tokenizer));
  TRACEMARK_ASSIGN_OR_RETURN(r.response_ids,
                             Side(line, "completion", "response_ids", false, tokenizer));
  return r;
}

}  // namespace tracemark::ledger
