// Internal: one row of the batch kernel, shared by the device kernel (batch_watermarker.cu) and
// its host reference (host_reference.cc), so that both run the same source.
#ifndef TRACEMARK_CUDA_SRC_ROW_H_
#define TRACEMARK_CUDA_SRC_ROW_H_

#include <cstdint>

#include "kernel_params.h"

namespace tracemark::cuda::internal {

using watermark::internal::KernelParams;
using watermark::internal::RowBias;

// The row's decision. `symbols` is the account's slot (payload symbols, then fingerprint) or null
// for anonymous traffic; a negative id in the context leaves the row alone.
TRACEMARK_HD RowBias PlanRow(const KernelParams& p, const int32_t* ctx, const uint8_t* symbols) {
  for (int32_t i = 0; i < p.context_width; ++i) {
    if (ctx[i] < 0) return RowBias{};
  }
  return watermark::internal::PlanBiasRow(p, ctx, symbols,
                                          symbols == nullptr ? nullptr : symbols + p.payload_slots);
}

// The layer a row reports: kNone when nothing was applied (as ProcessBatch reports it).
TRACEMARK_HD int32_t ReportedLayer(const RowBias& r) {
  return r.apply ? static_cast<int32_t>(r.pos.layer) : 0;
}

// One logit: NaN or +inf sets *bad; the bias is applied when the row's plan says so.
TRACEMARK_HD float ProcessLogit(const KernelParams& p, const RowBias& r, int32_t token, float logit,
                                bool* bad) {
  *bad |= !(logit < __builtin_huge_valf());
  return r.apply ? watermark::internal::BiasedLogit(p, r, token, logit) : logit;
}

}  // namespace tracemark::cuda::internal

#endif  // TRACEMARK_CUDA_SRC_ROW_H_
