// The elicitation suite: versioned prompts that make a model produce many lexicon members, sent to
// a suspect model (chat models get `prompt`, base models `prefix`) to collect canary evidence.
//
// JSON Lines, one prompt a line: {"id": "v1-0001", "prompt": "...", "prefix": "...",
// "targets": [set ids]}. The built-in suite (canary/data/suite-v1.jsonl) goes with the built-in
// lexicon; docs/canary-lexicon.md says how both were built.
//
//   absl::StatusOr<std::vector<SuitePrompt>> suite = ParseSuite(BuiltInSuiteText());
//
// Thread-safe (pure functions).
#ifndef TRACEMARK_CANARY_SUITE_H_
#define TRACEMARK_CANARY_SUITE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracemark::canary {

struct SuitePrompt {
  std::string id;
  std::string prompt;  // instruction for chat models
  std::string prefix;  // raw text for continuation models
  std::vector<uint32_t> targets;
};

// The built-in suite's JSONL bytes and its version ("suite-v1").
std::string_view BuiltInSuiteText();
std::string_view BuiltInSuiteVersion();

// InvalidArgument naming the line on malformed JSON, a missing field or a duplicate id.
absl::StatusOr<std::vector<SuitePrompt>> ParseSuite(std::string_view jsonl);

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_SUITE_H_
