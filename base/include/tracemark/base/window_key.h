// The 64-bit key of a context window — the h token ids before a position — shared by everything
// that matches windows across texts: the scan's seen windows and shared tuples, window probes and
// the serving ledger's window index. The same on every run and machine.
//
//   uint64_t k = base::WindowKey(ids, i, h);   // the window ids[i - h .. i)
//
// A mix, not a keyed hash: collisions among millions of windows are ~1e-7 of a pair, which can
// only add a position to a test (its colour is still the key's function of the position's own
// context), never bias its null.
#ifndef TRACEMARK_BASE_WINDOW_KEY_H_
#define TRACEMARK_BASE_WINDOW_KEY_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace tracemark::base {

// The key of ids[i - h .. i); requires h <= i <= ids.size().
inline uint64_t WindowKey(absl::Span<const int32_t> ids, size_t i, size_t h) {
  uint64_t k = 0x9E3779B97F4A7C15ull ^ h;
  for (size_t j = i - h; j < i; ++j) {
    k ^= static_cast<uint64_t>(static_cast<uint32_t>(ids[j]));
    k *= 0xBF58476D1CE4E5B9ull;
    k ^= k >> 31;
  }
  return k;
}

}  // namespace tracemark::base

#endif  // TRACEMARK_BASE_WINDOW_KEY_H_
