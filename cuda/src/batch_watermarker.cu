#include <cuda_runtime.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "row.h"
#include "tracemark/cuda/batch_watermarker.h"

namespace tracemark::cuda {
namespace {

using watermark::internal::KernelParams;
using watermark::internal::RowBias;

constexpr int kThreads = 256;
constexpr int kItemsPerThread = 4;  // logits per thread per block-row pass

// Grid: x covers a row's logits, y is the row. Thread 0 of each block plans the row (a few
// SipHash calls: cheaper than a second launch or a host round trip) into shared memory; block
// (0, row) also writes the row's layer. Every thread then streams its logits once: one read, one
// write when the row is biased. `invalid` was zeroed by the memset enqueued before the launch.
__global__ void BiasRowsKernel(const KernelParams* __restrict__ params,
                               const uint8_t* __restrict__ accounts, uint32_t account_stride,
                               float* __restrict__ logits, const int32_t* __restrict__ contexts,
                               const int32_t* __restrict__ slots, DeviceStepResult* results,
                               int32_t vocab) {
  const KernelParams& p = *params;
  const int row = static_cast<int>(blockIdx.y);
  __shared__ RowBias plan;
  if (threadIdx.x == 0) {
    const int32_t slot = slots[row];
    const uint8_t* symbols =
        slot < 0 ? nullptr : accounts + static_cast<size_t>(slot) * account_stride;
    plan = internal::PlanRow(p, contexts + static_cast<size_t>(row) * p.context_width, symbols);
    if (blockIdx.x == 0) results[row].layer = internal::ReportedLayer(plan);
  }
  __syncthreads();
  float* r = logits + static_cast<size_t>(row) * vocab;
  bool bad = false;
  const int stride = static_cast<int>(gridDim.x) * kThreads;
  for (int i = static_cast<int>(blockIdx.x) * kThreads + static_cast<int>(threadIdx.x); i < vocab;
       i += stride) {
    const float in = r[i];
    const float out = internal::ProcessLogit(p, plan, i, in, &bad);
    if (plan.apply) r[i] = out;
  }
  if (bad) atomicOr(&results[row].invalid, 1);
}

absl::Status CudaError(cudaError_t e, const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(e)));
}

}  // namespace

bool DeviceAvailable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

absl::StatusOr<std::unique_ptr<CudaBatchWatermarker>> CudaBatchWatermarker::Create(
    const watermark::Watermarker& wm, int max_accounts) {
  const watermark::Config& c = wm.config();
  if (c.scheme != watermark::Scheme::kKgw) {
    return absl::UnimplementedError(
        "the CUDA kernel covers the KGW provider scheme only (Gumbel and SynthID choose the token "
        "row-wide: use Watermarker::ProcessBatch)");
  }
  if (max_accounts < 1) return absl::InvalidArgumentError("max_accounts must be at least 1");
  if (!DeviceAvailable()) return absl::FailedPreconditionError("no CUDA device is available");
  const KernelParams& p = watermark::internal::KernelParamsOf(wm);
  std::unique_ptr<CudaBatchWatermarker> g(new CudaBatchWatermarker());
  g->layout_id_ = p.layout_id;
  g->max_accounts_ = max_accounts;
  g->vocab_ = c.vocab_size;
  g->width_ = c.context_width;
  g->payload_slots_ = p.payload_slots;
  g->fingerprint_slots_ = p.fingerprint_slots;
  if (cudaError_t e = cudaMalloc(&g->params_, sizeof(KernelParams)); e != cudaSuccess) {
    return CudaError(e, "cudaMalloc");
  }
  if (cudaError_t e = cudaMemcpy(g->params_, &p, sizeof(KernelParams), cudaMemcpyHostToDevice);
      e != cudaSuccess) {
    return CudaError(e, "cudaMemcpy");
  }
  const size_t table = static_cast<size_t>(max_accounts) * (p.payload_slots + p.fingerprint_slots);
  if (cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&g->accounts_), table);
      e != cudaSuccess) {
    return CudaError(e, "cudaMalloc");
  }
  if (cudaError_t e = cudaMemset(g->accounts_, 0, table); e != cudaSuccess) {
    return CudaError(e, "cudaMemset");
  }
  return g;
}

CudaBatchWatermarker::~CudaBatchWatermarker() {
  if (params_ != nullptr) {
    cudaMemset(params_, 0, sizeof(KernelParams));
    cudaFree(params_);
  }
  if (accounts_ != nullptr) {
    cudaMemset(accounts_, 0,
               static_cast<size_t>(max_accounts_) * (payload_slots_ + fingerprint_slots_));
    cudaFree(accounts_);
  }
}

absl::Status CudaBatchWatermarker::SetAccount(int slot, const watermark::AccountKeys& account) {
  if (slot < 0 || slot >= max_accounts_) {
    return absl::InvalidArgumentError(
        absl::StrCat("account slot ", slot, " outside [0, ", max_accounts_, ")"));
  }
  if (account.layout_id() != layout_id_) {
    return absl::InvalidArgumentError(
        "account keys were derived under a different epoch key or configuration");
  }
  std::vector<uint8_t> symbols = account.payload_symbols();
  symbols.insert(symbols.end(), account.fingerprint().begin(), account.fingerprint().end());
  const size_t stride = payload_slots_ + fingerprint_slots_;
  if (symbols.size() != stride) return absl::InternalError("account codeword sizes disagree");
  const cudaError_t e = cudaMemcpy(accounts_ + static_cast<size_t>(slot) * stride, symbols.data(),
                                   stride, cudaMemcpyHostToDevice);
  std::fill(symbols.begin(), symbols.end(), uint8_t{0});
  if (e != cudaSuccess) return CudaError(e, "cudaMemcpy");
  return absl::OkStatus();
}

absl::Status CudaBatchWatermarker::Launch(float* logits, const int32_t* contexts,
                                          const int32_t* slots, DeviceStepResult* results, int rows,
                                          cudaStream_t stream) const {
  if (rows < 1 || rows > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("rows must lie in [1, 65535], got ", rows));
  }
  if (logits == nullptr || contexts == nullptr || slots == nullptr || results == nullptr) {
    return absl::InvalidArgumentError("Launch: a device pointer is null");
  }
  if (cudaError_t e =
          cudaMemsetAsync(results, 0, static_cast<size_t>(rows) * sizeof(DeviceStepResult), stream);
      e != cudaSuccess) {
    return CudaError(e, "cudaMemsetAsync");
  }
  const int per_block = kThreads * kItemsPerThread;
  const dim3 grid(static_cast<unsigned>((vocab_ + per_block - 1) / per_block),
                  static_cast<unsigned>(rows));
  BiasRowsKernel<<<grid, kThreads, 0, stream>>>(static_cast<const KernelParams*>(params_),
                                                accounts_, payload_slots_ + fingerprint_slots_,
                                                logits, contexts, slots, results, vocab_);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return CudaError(e, "kernel launch");
  return absl::OkStatus();
}

}  // namespace tracemark::cuda
