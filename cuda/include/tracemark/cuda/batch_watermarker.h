// The batched CUDA kernel: watermark B rows of next-token logits on the GPU in one launch.
//
// For engines that keep logits on the device (vLLM, TensorRT-LLM, SGLang): B rows x V float32
// logits, B contexts (the last h ids of each row) and B account slots, all in device memory; one
// kernel launch on the caller's stream, no allocation, no host synchronisation, so a launch can be
// captured in a CUDA graph. Keys and account codewords are uploaded once (Create, SetAccount).
//
//   auto gpu = CudaBatchWatermarker::Create(*wm, /*max_accounts=*/4096);   // once
//   (*gpu)->SetAccount(slot, *wm->ForAccount(42));                         // per request admitted
//   ... each decode step, all pointers on the device:
//   (*gpu)->Launch(logits, contexts, slots, results, batch, stream);
//
// Scope: the bias layers of the serving chain (engine/serving_chain.h) — the KGW provider scheme
// (LeftHash and min-SelfHash) and the account layers (payload and fingerprint). Gumbel and SynthID
// pick the token by a keyed row-wide choice and are not in this kernel (Create: Unimplemented); use
// Watermarker::ProcessBatch for them.
//
// Results equal Watermarker::ProcessBatch bit for bit on valid rows: the position decisions and
// the per-token test are the same source (watermark/src/kernel_params.h, compiled for host and
// device), the bias is the same single float addition (the kernel is built with -fmad=false).
// Differences from ProcessBatch, which validates on the host before touching anything: a row with
// a NaN or +inf logit is not refused (that would cost a second pass over the row and a host
// round trip) but flagged in its result (`invalid`); it is biased like any other row.
// ProcessBatchHostReference() runs exactly the kernel's computation on the CPU.
#ifndef TRACEMARK_CUDA_BATCH_WATERMARKER_H_
#define TRACEMARK_CUDA_BATCH_WATERMARKER_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::engine {
class ServingChain;  // engine/serving_chain.h
}  // namespace tracemark::engine

typedef struct CUstream_st* cudaStream_t;  // as the CUDA runtime declares it

namespace tracemark::cuda {

// One row's result, written by the kernel into device memory.
struct DeviceStepResult {
  int32_t layer = 0;    // watermark::Layer: kNone for a short context or an anonymous account row
  int32_t invalid = 0;  // 1 when the row held a NaN or +inf logit
};

// True when a CUDA device is usable from this process.
bool DeviceAvailable();

class CudaBatchWatermarker {
 public:
  // Copies `wm`'s position keys and thresholds to the device and reserves `max_accounts` account
  // slots. Unimplemented for Gumbel and SynthID; FailedPrecondition without a CUDA device;
  // InvalidArgument for max_accounts < 1.
  static absl::StatusOr<std::unique_ptr<CudaBatchWatermarker>> Create(
      const watermark::Watermarker& wm, int max_accounts);
  // The same for a serving chain's watermark layers. FailedPrecondition when the chain applies
  // canary phrasings: the kernel has no row histories (use the chain's ProcessBatch on the host).
  static absl::StatusOr<std::unique_ptr<CudaBatchWatermarker>> Create(
      const engine::ServingChain& chain, int max_accounts);
  ~CudaBatchWatermarker();  // wipes the device copies of the keys and codewords, frees them
  CudaBatchWatermarker(const CudaBatchWatermarker&) = delete;
  CudaBatchWatermarker& operator=(const CudaBatchWatermarker&) = delete;

  // Uploads `account`'s payload symbols and fingerprint into slot `slot` (a synchronous copy: at
  // request admission, not per step). InvalidArgument for a slot out of range or keys derived
  // under another epoch key or configuration.
  absl::Status SetAccount(int slot, const watermark::AccountKeys& account);

  // Enqueues the kernel on `stream`. Device pointers: `logits` rows x V (row-major, V the
  // configuration's vocabulary size), `contexts` rows x h (a negative id marks a context too short:
  // the row is left alone), `slots` rows account slots (-1: anonymous, provider layer only),
  // `results` rows. InvalidArgument for rows < 1 or null pointers; launch errors as Internal.
  absl::Status Launch(float* logits, const int32_t* contexts, const int32_t* slots,
                      DeviceStepResult* results, int rows, cudaStream_t stream) const;

  int max_accounts() const { return max_accounts_; }

 private:
  CudaBatchWatermarker() = default;
  void* params_ = nullptr;       // device: internal::KernelParams
  uint8_t* accounts_ = nullptr;  // device: max_accounts x (payload slots + fingerprint slots)
  uint64_t layout_id_ = 0;
  int max_accounts_ = 0;
  int32_t vocab_ = 0, width_ = 0;
  uint32_t payload_slots_ = 0, fingerprint_slots_ = 0;
};

// The kernel's computation on the host, from the same source: what the device must produce, bit
// for bit (the tests compare both, and this against Watermarker::ProcessBatch). Row b has context
// contexts[b*h..], account accounts[b] (null: anonymous); logits are changed in place.
absl::Status ProcessBatchHostReference(const watermark::Watermarker& wm,
                                       absl::Span<const watermark::AccountKeys* const> accounts,
                                       absl::Span<const int32_t> contexts, absl::Span<float> logits,
                                       absl::Span<DeviceStepResult> results);

}  // namespace tracemark::cuda

#endif  // TRACEMARK_CUDA_BATCH_WATERMARKER_H_
