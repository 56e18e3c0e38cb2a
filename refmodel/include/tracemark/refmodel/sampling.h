// Candidate selection and sampling for a decode loop, reproducible bit for bit.
//
// These helpers turn one step's scores over the vocabulary into the next token: TopCandidates()
// applies top-k / top-p truncation and returns ids best first; SampleFromLogits() draws an index
// from softmax(logits) by inverse CDF given an explicit uniform; SplitMix64 supplies those
// uniforms from a seed with an explicit integer-to-double conversion, so a run is reproducible
// on every platform (no <random> distributions anywhere).
//
// Temperature is the caller's business: pass logits / T (T > 0) to get softmax(logits / T).
//
// Example:
//
//   SplitMix64 rng(/*seed=*/42);
//   model.LogProbs(history, absl::MakeSpan(logprobs));
//   std::vector<int32_t> ids = TopCandidates(logprobs, /*top_k=*/64, /*top_p=*/0.95);
//   std::vector<float> logits;
//   for (int32_t id : ids) logits.push_back(logprobs[id] / temperature);
//   TRACEMARK_ASSIGN_OR_RETURN(int32_t i, SampleFromLogits(logits, rng.NextDouble()));
//   history.push_back(ids[i]);
//
// Thread-safety: the free functions are thread-safe. A SplitMix64 object is not; use one per
// thread (they are cheap).
#ifndef TRACEMARK_REFMODEL_SAMPLING_H_
#define TRACEMARK_REFMODEL_SAMPLING_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tracemark::refmodel {

// Returns the candidate ids, sorted by descending logprobs[id] with ties broken by the smaller
// id: at most `top_k` of them (0 = no limit), then cut to the shortest prefix whose probability
// mass reaches `top_p` (1.0 = no cut). The mass of the candidates is softmax(logprobs) renormalised
// over the top-k candidates (over all ids when top_k == 0), so `logprobs` may be unnormalised
// logits. A prefix "reaches" top_p when its mass is >= top_p - 1e-6 (float inputs carry ~1e-7
// relative error). Entries that are -inf or NaN have zero probability and are never returned,
// so the result is empty only if every entry is. Out-of-range arguments are clamped: top_k < 0
// is 0, top_p >= 1 or NaN is no cut, top_p <= 0 keeps only the best id.
//
// Cost: O(V log k) when top_k > 0 (a bounded heap, no full sort); with top_k == 0 and top_p < 1
// the selection grows geometrically from 64 until the mass is reached; with top_k == 0 and
// top_p >= 1 it is a full O(V log V) sort.
std::vector<int32_t> TopCandidates(absl::Span<const float> logprobs, int top_k, double top_p);

// Returns the index i drawn with probability softmax(logits)_i by inverse CDF at `uniform`:
// the smallest i whose cumulative weight exceeds uniform * (total weight), the weights being
// exp(logits[i] - max(logits)) summed in double, in index order. Entries equal to -inf have
// zero probability and are never returned.
//
// Returns InvalidArgument if logits is empty, contains NaN or +inf, is entirely -inf, or if
// uniform is not in [0, 1). The result depends on the platform's exp() only when `uniform`
// falls within ~1e-16 of a boundary between two indices.
absl::StatusOr<int32_t> SampleFromLogits(absl::Span<const float> logits, double uniform);

// SplitMix64 (Steele, Lea & Flood 2014, as in Vigna's reference code): a tiny, fast generator
// whose output sequence is fixed for a given seed on every platform. Not cryptographic: use the
// watermark's keyed PRF for anything a verifier must not be able to predict.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  // The next 64-bit output.
  uint64_t NextU64() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // A double in [0, 1): the top 53 bits of NextU64() times 2^-53 (exact, no rounding).
  double NextDouble() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace tracemark::refmodel

#endif  // TRACEMARK_REFMODEL_SAMPLING_H_
