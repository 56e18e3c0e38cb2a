#include "tracemark/watermark/logits.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace tracemark::watermark {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status BadId(int32_t id, int32_t vocab, std::string_view where) {
  return absl::InvalidArgumentError(
      absl::StrCat(View(where), "token id ", id, " outside the vocabulary [0, ", vocab, ")"));
}

absl::Status BadLogit(int32_t id, float logit, std::string_view where) {
  return absl::InvalidArgumentError(
      absl::StrCat(View(where), "logit of token ", id, " is ", std::isnan(logit) ? "NaN" : "+inf"));
}

absl::Status AllMasked(std::string_view where) {
  return absl::InvalidArgumentError(absl::StrCat(View(where), "every logit is -inf"));
}

}  // namespace

absl::Status CheckCandidates(absl::Span<const Candidate> candidates, int32_t vocab,
                             std::string_view where) {
  if (candidates.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(View(where), "empty candidate list"));
  }
  bool bad = false, any_finite = false;
  for (const Candidate& c : candidates) {
    bad |= !(c.logit < kInf) || c.id < 0 || c.id >= vocab;
    any_finite |= c.logit > -kInf;
  }
  if (bad) {
    for (const Candidate& c : candidates) {
      if (c.id < 0 || c.id >= vocab) return BadId(c.id, vocab, where);
      if (!(c.logit < kInf)) return BadLogit(c.id, c.logit, where);
    }
  }
  if (!any_finite) return AllMasked(where);
  return absl::OkStatus();
}

absl::Status CheckIds(absl::Span<const int32_t> ids, int32_t vocab, std::string_view where) {
  bool bad = false;
  for (int32_t id : ids) bad |= id < 0 || id >= vocab;
  if (!bad) return absl::OkStatus();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) return BadId(id, vocab, where);
  }
  return absl::OkStatus();
}

absl::StatusOr<float> CheckRow(absl::Span<const float> row, int32_t vocab, std::string_view where) {
  if (row.size() != static_cast<size_t>(vocab)) {
    return absl::InvalidArgumentError(absl::StrCat(View(where), "logits row has ", row.size(),
                                                   " entries, the vocabulary ", vocab));
  }
  if (row.empty()) return absl::InvalidArgumentError(absl::StrCat(View(where), "empty row"));
  // A plain loop is not vectorised (NaN semantics of max); SSE2 is in every x86-64.
  size_t i = 0;
  float best = -kInf;
  bool bad = false;
#ifdef __SSE2__
  const __m128 inf = _mm_set1_ps(kInf);
  __m128 max4 = _mm_set1_ps(-kInf);
  __m128 bad4 = _mm_setzero_ps();
  for (; i + 4 <= row.size(); i += 4) {
    const __m128 x = _mm_loadu_ps(row.data() + i);
    bad4 = _mm_or_ps(bad4, _mm_or_ps(_mm_cmpunord_ps(x, x), _mm_cmpeq_ps(x, inf)));
    max4 = _mm_max_ps(max4, x);
  }
  bad = _mm_movemask_ps(bad4) != 0;
  float lanes[4];
  _mm_storeu_ps(lanes, max4);
  for (float l : lanes) best = std::max(best, l);
#endif
  for (; i < row.size(); ++i) {
    bad |= !(row[i] < kInf);
    best = std::max(best, row[i]);
  }
  if (bad) {
    for (size_t j = 0; j < row.size(); ++j) {
      if (!(row[j] < kInf)) return BadLogit(static_cast<int32_t>(j), row[j], where);
    }
  }
  if (!(best > -kInf)) return AllMasked(where);
  return best;
}

}  // namespace tracemark::watermark
