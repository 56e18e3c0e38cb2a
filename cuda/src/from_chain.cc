// CudaBatchWatermarker::Create from a serving chain: the kernel takes the chain's bias layers and
// refuses canary phrasings, which need each row's history on the host.
#include "absl/status/status.h"
#include "tracemark/cuda/batch_watermarker.h"
#include "tracemark/engine/serving_chain.h"

namespace tracemark::cuda {

absl::StatusOr<std::unique_ptr<CudaBatchWatermarker>> CudaBatchWatermarker::Create(
    const engine::ServingChain& chain, int max_accounts) {
  if (chain.canary() != nullptr) {
    return absl::FailedPreconditionError(
        "the CUDA kernel applies the watermark's bias layers only: canary phrasings need each "
        "row's history on the host (engine::ServingChain::ProcessBatch, or a chain without "
        "canaries)");
  }
  if (chain.watermarker() == nullptr) {
    return absl::InvalidArgumentError("the chain has no watermark layers for the CUDA kernel");
  }
  return Create(*chain.watermarker(), max_accounts);
}

}  // namespace tracemark::cuda
