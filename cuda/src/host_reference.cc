#include "absl/strings/str_cat.h"
#include "row.h"
#include "tracemark/cuda/batch_watermarker.h"

namespace tracemark::cuda {

absl::Status ProcessBatchHostReference(const watermark::Watermarker& wm,
                                       absl::Span<const watermark::AccountKeys* const> accounts,
                                       absl::Span<const int32_t> contexts, absl::Span<float> logits,
                                       absl::Span<DeviceStepResult> results) {
  const watermark::Config& c = wm.config();
  if (c.scheme != watermark::Scheme::kKgw) {
    return absl::UnimplementedError("the CUDA kernel covers the KGW provider scheme only");
  }
  const size_t b = accounts.size(), h = static_cast<size_t>(c.context_width);
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  if (contexts.size() != b * h || logits.size() != b * vocab || results.size() != b) {
    return absl::InvalidArgumentError(absl::StrCat("batch shapes disagree: ", b, " rows"));
  }
  const watermark::internal::KernelParams& p = watermark::internal::KernelParamsOf(wm);
  std::vector<uint8_t> symbols;
  for (size_t row = 0; row < b; ++row) {
    const watermark::AccountKeys* a = accounts[row];
    if (a != nullptr && a->layout_id() != p.layout_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row ", row, ": account keys were derived under a different epoch key or configuration"));
    }
    if (a != nullptr) {
      symbols = a->payload_symbols();
      symbols.insert(symbols.end(), a->fingerprint().begin(), a->fingerprint().end());
    }
    const internal::RowBias plan =
        internal::PlanRow(p, contexts.data() + row * h, a == nullptr ? nullptr : symbols.data());
    bool bad = false;
    float* r = logits.data() + row * vocab;
    for (size_t i = 0; i < vocab; ++i) {
      r[i] = internal::ProcessLogit(p, plan, static_cast<int32_t>(i), r[i], &bad);
    }
    results[row] = DeviceStepResult{internal::ReportedLayer(plan), bad ? 1 : 0};
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cuda
