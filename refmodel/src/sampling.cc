#include "tracemark/refmodel/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace tracemark::refmodel {
namespace {

constexpr double kTopPSlack = 1e-6;

// NaN ranks with -inf, below everything else.
inline float Key(float x) { return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x; }
inline bool Usable(float x) { return Key(x) > -std::numeric_limits<float>::infinity(); }

// The best `m` usable ids, best first (descending score, then ascending id).
std::vector<int32_t> SelectTop(absl::Span<const float> scores, size_t m) {
  const auto better = [scores](int32_t a, int32_t b) {
    const float ka = Key(scores[a]);
    const float kb = Key(scores[b]);
    return ka > kb || (ka == kb && a < b);
  };
  const size_t n = scores.size();
  std::vector<int32_t> heap;
  if (m >= n / 2) {
    for (size_t i = 0; i < n; ++i) {
      if (Usable(scores[i])) heap.push_back(static_cast<int32_t>(i));
    }
    if (m < heap.size()) {
      std::partial_sort(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(m), heap.end(),
                        better);
      heap.resize(m);
    } else {
      std::sort(heap.begin(), heap.end(), better);
    }
    return heap;
  }
  // A heap of size m whose front is the worst kept id; most ids are rejected with one compare.
  if (m == 0) return heap;
  heap.reserve(m);
  size_t i = 0;
  for (; i < n && heap.size() < m; ++i) {
    if (!Usable(scores[i])) continue;
    heap.push_back(static_cast<int32_t>(i));
    std::push_heap(heap.begin(), heap.end(), better);
  }
  // Full heap: anything below the worst kept score (or NaN) is rejected by one float compare.
  float threshold = heap.size() == m ? Key(scores[heap.front()]) : 0.0f;
  for (; i < n; ++i) {
    if (!(scores[i] >= threshold)) continue;
    const int32_t id = static_cast<int32_t>(i);
    if (!better(id, heap.front())) continue;
    std::pop_heap(heap.begin(), heap.end(), better);
    heap.back() = id;
    std::push_heap(heap.begin(), heap.end(), better);
    threshold = Key(scores[heap.front()]);
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  return heap;
}

// ln sum exp(scores[ids]) over usable ids (ids sorted best first, so ids[0] is the max).
double LogSumExp(absl::Span<const float> scores, absl::Span<const int32_t> ids) {
  if (ids.empty()) return -std::numeric_limits<double>::infinity();
  const double top = scores[ids[0]];
  double sum = 0;
  for (int32_t id : ids) sum += std::exp(static_cast<double>(scores[id]) - top);
  return top + std::log(sum);
}

// Length of the shortest prefix of `ids` whose mass exp(score - lse) reaches top_p, or 0 if
// none does.
size_t PrefixReaching(absl::Span<const float> scores, absl::Span<const int32_t> ids, double lse,
                      double top_p) {
  double mass = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    mass += std::exp(static_cast<double>(scores[ids[i]]) - lse);
    if (mass >= top_p - kTopPSlack) return i + 1;
  }
  return 0;
}

}  // namespace

std::vector<int32_t> TopCandidates(absl::Span<const float> logprobs, int top_k, double top_p) {
  const size_t n = logprobs.size();
  const bool cut = top_p < 1.0;  // false for NaN
  if (top_p <= 0.0) top_p = 0.0;
  if (top_k > 0) {
    std::vector<int32_t> ids = SelectTop(logprobs, std::min<size_t>(top_k, n));
    if (cut && !ids.empty()) {
      const size_t keep = PrefixReaching(logprobs, ids, LogSumExp(logprobs, ids), top_p);
      if (keep > 0) ids.resize(keep);
    }
    return ids;
  }
  if (!cut) return SelectTop(logprobs, n);
  // Normaliser over every usable id, then grow the selection until the mass is reached.
  double top = -std::numeric_limits<double>::infinity();
  for (float x : logprobs) top = std::max(top, static_cast<double>(Key(x)));
  if (top == -std::numeric_limits<double>::infinity()) return {};
  double sum = 0;
  for (float x : logprobs) {
    if (Usable(x)) sum += std::exp(static_cast<double>(x) - top);
  }
  const double lse = top + std::log(sum);
  for (size_t m = 64;; m *= 8) {
    std::vector<int32_t> ids = SelectTop(logprobs, std::min(m, n));
    const size_t keep = PrefixReaching(logprobs, ids, lse, top_p);
    if (keep > 0) {
      ids.resize(keep);
      return ids;
    }
    if (ids.size() < std::min(m, n) || m >= n) return ids;  // every usable id is in
  }
}

absl::StatusOr<int32_t> SampleFromLogits(absl::Span<const float> logits, double uniform) {
  if (logits.empty()) return absl::InvalidArgumentError("SampleFromLogits: no logits");
  if (!(uniform >= 0.0 && uniform < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SampleFromLogits: uniform must be in [0, 1), got ", uniform));
  }
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float top = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SampleFromLogits: logit ", i, " is ", x, " (must be finite or -inf)"));
    }
    top = std::max(top, x);
  }
  if (top == kNegInf) return absl::InvalidArgumentError("SampleFromLogits: every logit is -inf");
  const double m = top;
  double total = 0;
  for (float x : logits) {
    if (x != kNegInf) total += std::exp(static_cast<double>(x) - m);
  }
  const double target = uniform * total;
  double cumulative = 0;
  int32_t last = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == kNegInf) continue;
    cumulative += std::exp(static_cast<double>(logits[i]) - m);
    last = static_cast<int32_t>(i);
    if (cumulative > target) return last;
  }
  return last;  // rounding left target at the very top: the last index with weight
}

}  // namespace tracemark::refmodel
