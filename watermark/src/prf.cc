#include "tracemark/watermark/prf.h"

#include <cmath>

namespace tracemark::watermark {

uint64_t ProbabilityThreshold(double fraction) {
  if (!(fraction > 0.0)) return 0;
  if (fraction >= 1.0) return ~0ull;
  // A multiple of 2^11, so that threshold / 2^64 is exactly a double (ThresholdProbability).
  const double t = std::round(std::ldexp(fraction, 53));
  if (t >= 9007199254740992.0) return ~0ull;
  return static_cast<uint64_t>(t) << 11;
}

double ThresholdProbability(uint64_t threshold) {
  // Exact for thresholds from ProbabilityThreshold (multiples of 2^11).
  if (threshold == ~0ull) return 1.0;
  return std::ldexp(static_cast<double>(threshold), -64);
}

}  // namespace tracemark::watermark
