// White-box evidence from a suspect model's own per-token reports: what an API returns with
// "logprobs" (tracemark probe --logprobs N collects it), or what an open model gives directly.
//
// At each answer position the model's most likely next token, given the context it actually had,
// is a function of the model alone. Under the null (a model that never learnt from the provider's
// watermarked text) that token is green with probability gamma, independently over distinct
// (window, token) tuples, whatever was sampled; a student that learnt the green preferences
// prefers green tokens at the windows it saw. This is the radioactivity work's "open model"
// setting, and it needs far fewer queries than testing sampled text (docs/distillation.md).
//
// Scored: positions whose whole window (the h tokens before) lies inside the answer, and whose
// window does not occur in the prompt (a watermarked prompt must not make a clean model look
// radioactive); unique tuples only, as everywhere.
//
// Window probes are the exception, by design: the prompt is exactly one window of h ids (taken
// from the suspected training data), and the answer's first most likely token is a function of
// that window alone, so the (window, token) tuple keeps the null. This asks the suspect at the
// windows where it may have learnt, as the open-model test does, through an API.
//
//   TRACEMARK_ASSIGN_OR_RETURN(WhiteBoxScorer s, WhiteBoxScorer::Create(tokenizer));
//   TRACEMARK_ASSIGN_OR_RETURN(uint64_t n, s.Score(verifier, segment.choices, prompt_ids, &stats));
//
// Thread-safe after Create (Score is const).
#ifndef TRACEMARK_DETECT_WHITE_BOX_H_
#define TRACEMARK_DETECT_WHITE_BOX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/dataset/document.h"
#include "tracemark/detect/seen_windows.h"
#include "tracemark/detect/verifier.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/watermark/detector.h"

namespace tracemark::detect {

class WhiteBoxScorer {
 public:
  // Indexes the tokenizer's vocabulary by token bytes.
  static absl::StatusOr<WhiteBoxScorer> Create(const tokenizer::Tokenizer& tokenizer);

  // Adds the (window, most likely token) tuples of one answer to stats[i] for each epoch i of
  // `verifier` (resized if empty); returns the number of positions scored. FailedPrecondition
  // when a reported token is not one token of this vocabulary: the suspect's tokenizer differs
  // from the one the verifier was given, and its reports cannot be read as ids.
  // A window probe's tuple: `window` (h ids) and the first position's most likely token. Returns 1,
  // or 0 when the report has no alternatives or `only` is set and lacks the window.
  absl::StatusOr<uint64_t> ScoreWindow(const Verifier& verifier, absl::Span<const int32_t> window,
                                       const dataset::TokenChoice& first,
                                       std::vector<watermark::TextStatistics>* stats,
                                       const SeenWindows* only = nullptr) const;

  // With `only` set, positions whose window is not among its windows are skipped too.
  absl::StatusOr<uint64_t> Score(const Verifier& verifier,
                                 absl::Span<const dataset::TokenChoice> choices,
                                 absl::Span<const int32_t> prompt_ids,
                                 std::vector<watermark::TextStatistics>* stats,
                                 const SeenWindows* only = nullptr) const;

 private:
  explicit WhiteBoxScorer(absl::flat_hash_map<std::string, int32_t> ids) : ids_(std::move(ids)) {}
  // The id of a reported token's bytes; FailedPrecondition, naming `what`, when it has none.
  absl::StatusOr<int32_t> IdOf(const std::string& bytes, std::string_view what) const;
  absl::flat_hash_map<std::string, int32_t> ids_;  // token bytes -> id
};

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_WHITE_BOX_H_
