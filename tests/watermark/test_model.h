// A small synthetic "language model" for watermark tests: each step's logits are a keyed function
// of the previous token, with spread enough to give a few bits of entropy per token.
#ifndef TRACEMARK_TESTS_WATERMARK_TEST_MODEL_H_
#define TRACEMARK_TESTS_WATERMARK_TEST_MODEL_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "tracemark/watermark/prf.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::watermark::testing {

class TestRng {
 public:
  explicit TestRng(uint64_t seed) : s_(seed) {}
  uint64_t Next() { return Mix(s_ += 0x9E3779B97F4A7C15ull, 0x51ed); }
  double Uniform() { return UnitOpen(Next()); }

 private:
  uint64_t s_;
};

inline std::vector<float> ModelLogits(int32_t prev, int32_t vocab, double spread = 1.0) {
  std::vector<float> l(static_cast<size_t>(vocab));
  for (int32_t v = 0; v < vocab; ++v) {
    // Mean-zero, roughly exponential-tailed scores.
    const double u =
        UnitOpen(Mix(0x1234567ull + static_cast<uint64_t>(prev), static_cast<uint32_t>(v)));
    l[static_cast<size_t>(v)] = static_cast<float>(-spread * std::log(-std::log(u)));
  }
  return l;
}

inline int32_t SampleRow(const std::vector<float>& logits, double u) {
  double m = -INFINITY;
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double z = 0;
  for (float x : logits) z += std::exp(x - m);
  double acc = 0;
  int32_t last = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double p = std::exp(logits[i] - m) / z;
    if (p <= 0) continue;
    last = static_cast<int32_t>(i);
    acc += p;
    if (u * 1.0 < acc) return last;
  }
  return last;
}

// Generates `n` tokens after a fixed 4-token prompt; `wm` may be null (plain sampling).
inline std::vector<int32_t> Generate(const Watermarker* wm, const AccountKeys* acct, int n,
                                     uint64_t seed, int32_t vocab) {
  TestRng rng(seed);
  std::vector<int32_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(static_cast<int32_t>(rng.Next() % vocab));
  SequenceState state;
  thread_local std::vector<std::vector<float>> cache;  // logits depend on the previous id only
  if (cache.size() != static_cast<size_t>(vocab)) cache.assign(static_cast<size_t>(vocab), {});
  for (int i = 0; i < n; ++i) {
    std::vector<float>& cached = cache[static_cast<size_t>(ids.back())];
    if (cached.empty()) cached = ModelLogits(ids.back(), vocab);
    std::vector<float> logits = cached;
    int32_t token;
    if (wm != nullptr) {
      auto r = wm->ProcessDense(acct, ids, absl::MakeSpan(logits), &state);
      token = r->token_chosen ? r->token : SampleRow(logits, rng.Uniform());
    } else {
      token = SampleRow(logits, rng.Uniform());
    }
    ids.push_back(token);
  }
  return ids;
}

}  // namespace tracemark::watermark::testing

#endif  // TRACEMARK_TESTS_WATERMARK_TEST_MODEL_H_
