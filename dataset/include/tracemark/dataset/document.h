// A suspect document and the parsing of one dataset record into it.
//
// A document is what one account was served in one exchange: its model-written turns (scored),
// each with the text the model saw just before it (its context: the turn's prompt; its last tokens
// seed the first scored positions, and it is never scored itself).
//
// Record shapes (one JSON object; ParseRecord finds the shape by its keys):
//  - OpenAI messages: {"messages": [{"role": "user", "content": "..."}, {"role": "assistant",
//  ...}]}
//    (content may also be a list of {"type": "text", "text": "..."} parts);
//  - ShareGPT: {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", ...}]};
//  - Alpaca: {"instruction": "...", "input": "...", "output": "..."};
//  - prompt/completion: {"prompt": "...", "completion" | "response": "..."};
//  - plain: {"text": "..."} (all scored, no context).
// Turns by "assistant", "gpt", "model", "chatgpt", "bot" or "bing" are scored; "user", "human",
// "system", "tool" and the like are context. An "id" (string or number) becomes the document id.
// A top-level "logprobs" in the OpenAI chat shape ({"content": [{"token", "bytes", "logprob",
// "top_logprobs": [...]}]}, as `tracemark probe` writes it) belongs to the last model turn and
// feeds the white-box test (white_box.h); when it cannot be read, the text is still scored and
// Document::logprobs_error says why. A "window" list of token ids marks a window probe
// (`tracemark probe --windows-from`): the prompt was exactly that window.
#ifndef TRACEMARK_DATASET_DOCUMENT_H_
#define TRACEMARK_DATASET_DOCUMENT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace tracemark::dataset {

// One position of a model-written turn as the model's API reported it: the bytes of the token it
// sampled, and of its most likely token there (empty when the API gave no alternatives).
struct TokenChoice {
  std::string sampled;
  std::string top;
};

struct Segment {
  Segment() = default;
  Segment(std::string before, std::string written)
      : context(std::move(before)), text(std::move(written)) {}

  std::string context;  // what the model saw just before; never scored
  std::string text;     // what the model wrote; scored
  // True when this segment continues the previous one's text (a long file read in pieces): the
  // previous segment's last tokens are its context.
  bool continues = false;
  std::vector<TokenChoice> choices;  // the API's per-token report, when the record has one
  std::vector<int32_t> window;       // a window probe's window ids (the record's "window")
};

// Yields the rest of a document's segments lazily (long text files), so a document of any size
// is scored in bounded memory.
class SegmentSource {
 public:
  virtual ~SegmentSource() = default;
  // False at the end. Errors stop the document (it is reported as skipped, with what was read).
  virtual absl::StatusOr<bool> Next(Segment* segment) = 0;
};

struct Document {
  uint64_t index = 0;  // position in the scan's input order
  std::string id;      // the record's "id", else the source
  std::string source;  // "file:line" for a record, "file" for a text file
  std::vector<Segment> segments;
  std::unique_ptr<SegmentSource> more;  // further segments, read by whoever scores the document
  std::string logprobs_error;           // why the record's "logprobs" were not used (empty: fine)
  // The record's bytes held invalid UTF-8, replaced by U+FFFD before parsing (as a text file's
  // are before tokenising): the document is scored and its result says it was repaired.
  bool repaired_utf8 = false;
};

// What went wrong with an input that was not scored (or not whole).
struct Skipped {
  std::string source;
  std::string reason;
};

// Fills doc->segments (and doc->id if the record has one) from one record. InvalidArgument with
// the reason for an unknown shape, a wrong type, or a record with no model-written turn.
absl::Status ParseRecord(const nlohmann::json& record, Document* doc);

// The same from the record's JSON text (one JSONL line); a syntax error gives its byte offset.
// Invalid UTF-8 (which JSON cannot hold) is first replaced by U+FFFD and doc->repaired_utf8 set.
absl::Status ParseRecordText(absl::string_view line, Document* doc);

}  // namespace tracemark::dataset

#endif  // TRACEMARK_DATASET_DOCUMENT_H_
