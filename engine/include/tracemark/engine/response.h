// The state of one response in the serving chain: the contexts the watermark has already keyed
// (so that distortion-free schemes never repeat a keyed choice) and the canary member in progress
// (a multi-token member whose continuation is being forced). One per response; Reset() before the
// next response reuses it. Not thread-safe: one response, one thread at a time.
#ifndef TRACEMARK_ENGINE_RESPONSE_H_
#define TRACEMARK_ENGINE_RESPONSE_H_

#include "tracemark/canary/processor.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::engine {

class Response {
 public:
  void Reset() {
    sequence_.Reset();
    canary_.Reset();
  }

 private:
  friend class ServingChain;
  watermark::SequenceState sequence_;
  canary::CanaryState canary_;
};

}  // namespace tracemark::engine

#endif  // TRACEMARK_ENGINE_RESPONSE_H_
