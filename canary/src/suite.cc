#include "tracemark/canary/suite.h"

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace tracemark::embedded {
std::string_view SuiteV1();
}  // namespace tracemark::embedded

namespace tracemark::canary {

std::string_view BuiltInSuiteText() { return embedded::SuiteV1(); }
std::string_view BuiltInSuiteVersion() { return "suite-v1"; }

absl::StatusOr<std::vector<SuitePrompt>> ParseSuite(std::string_view jsonl) {
  std::vector<SuitePrompt> out;
  absl::flat_hash_set<std::string> ids;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < jsonl.size()) {
    size_t end = jsonl.find('\n', pos);
    if (end == std::string_view::npos) end = jsonl.size();
    const std::string_view line = jsonl.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("suite line ", line_no, ": ", absl::string_view(why.data(), why.size())));
    };
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return bad("not a JSON object");
    SuitePrompt p;
    for (const char* field : {"id", "prompt", "prefix"}) {
      if (!j.contains(field) || !j[field].is_string()) {
        return bad(absl::StrCat("missing string field \"", field, "\""));
      }
    }
    p.id = j["id"].get<std::string>();
    p.prompt = j["prompt"].get<std::string>();
    p.prefix = j["prefix"].get<std::string>();
    if (j.contains("targets")) {
      if (!j["targets"].is_array()) return bad("\"targets\" must be an array of set ids");
      for (const auto& t : j["targets"]) {
        if (!t.is_number_unsigned()) return bad("\"targets\" must be an array of set ids");
        p.targets.push_back(t.get<uint32_t>());
      }
    }
    if (!ids.insert(p.id).second) return bad(absl::StrCat("duplicate id ", p.id));
    out.push_back(std::move(p));
  }
  if (out.empty()) return absl::InvalidArgumentError("the suite has no prompts");
  return out;
}

}  // namespace tracemark::canary
