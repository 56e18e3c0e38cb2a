// Importing a provider's own serving logs into the ledger: one JSON object per line,
//
//   {"account": 42, "prompt": "...", "completion": "...", "time": "2026-12-04T14:00:00Z"}
//
// with the prompt and the completion as text (tokenized here with the tokenizer the model served
// with) or as ids ("prompt_ids", "response_ids"); "time" as RFC 3339 or seconds since the Unix
// epoch (optional: the import's time); "epoch" optional (the import's default). An account of
// null, or no "account", is an anonymous request. Unknown fields are refused, so that a log of
// another shape is not read as empty responses.
//
//   ledger::ImportDefaults d{.epoch = 0, .epoch_key_id = id, .tokenizer = "cl100k_base"};
//   absl::StatusOr<ledger::Record> r = ledger::ParseImportLine(line, d, *tokenizer);
#ifndef TRACEMARK_LEDGER_IMPORT_H_
#define TRACEMARK_LEDGER_IMPORT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tracemark/ledger/record.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::ledger {

struct ImportDefaults {
  uint32_t epoch = 0;
  std::string epoch_key_id;  // the key id of `epoch` (records of other epochs get none)
  std::string tokenizer;     // the spec of `tokenizer` below, recorded in each record
  int64_t time_us = 0;       // for lines without "time"
};

// One log line's record. InvalidArgument saying what is wrong for a line that is not a JSON
// object of the shape above (a missing completion, both text and ids, a negative or
// out-of-vocabulary id, a bad time, an unknown field, invalid UTF-8 in a text).
absl::StatusOr<Record> ParseImportLine(std::string_view line, const ImportDefaults& defaults,
                                       const tokenizer::Tokenizer& tokenizer);

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_IMPORT_H_
