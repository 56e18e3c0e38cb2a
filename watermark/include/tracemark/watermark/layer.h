// The layer a position belongs to. Which signal a position carries is decided by a keyed hash of
// its context alone, so the verifier knows it without knowing the account (docs/design.md).
#ifndef TRACEMARK_WATERMARK_LAYER_H_
#define TRACEMARK_WATERMARK_LAYER_H_

#include <cstdint>

namespace tracemark::watermark {

enum class Layer : uint8_t {
  kNone,                // context shorter than h, or a repeated context (distortion-free schemes)
  kProvider,            // the epoch's provider scheme
  kAccountPayload,      // the account id payload (single-source attribution)
  kAccountFingerprint,  // the account's fingerprint codeword (pooled-text attribution)
};

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_LAYER_H_
