// A decode step's logits, and their one validation, shared by every stage of the serving chain
// (engine/serving_chain.h) and by each stage called on its own (Watermarker, CanaryProcessor).
//
// Valid: a non-empty list or a row of exactly `vocab` logits; every id in [0, vocab); no NaN and
// no +inf (-inf marks a token the engine masked, and is allowed); at least one finite logit.
// InvalidArgument otherwise, naming the first culprit, its message prefixed by `where` (a batch
// passes "row 3: "). One branch-free pass (vectorised for rows); only a failure walks again.
#ifndef TRACEMARK_WATERMARK_LOGITS_H_
#define TRACEMARK_WATERMARK_LOGITS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tracemark::watermark {

// One entry of a sparse candidate list (after the engine's top-k/top-p).
struct Candidate {
  int32_t id;
  float logit;
};

absl::Status CheckCandidates(absl::Span<const Candidate> candidates, int32_t vocab,
                             std::string_view where = "");

// Returns the row's largest logit (what the canary's dense skip needs), so that no stage passes
// over the row a second time to find it.
absl::StatusOr<float> CheckRow(absl::Span<const float> row, int32_t vocab,
                               std::string_view where = "");

// Context ids (the ids before a position): each in [0, vocab).
absl::Status CheckIds(absl::Span<const int32_t> ids, int32_t vocab, std::string_view where = "");

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_LOGITS_H_
