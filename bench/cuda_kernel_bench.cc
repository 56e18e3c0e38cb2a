// The batched CUDA kernel's bandwidth as a ratio to a plain device-to-device copy of the same
// bytes, in the same process on the same buffers (the goal: at least 0.8).
//
//   build/bench/cuda_kernel_bench [--iters 200]      # needs a CUDA device
//
// For B = 1, 64, 256 rows of V = 151,936 float32 logits (Qwen's vocabulary), every row served to
// an account with a full context (so every row is biased: one read and one write of each logit),
// it times, with CUDA events around `iters` back-to-back launches after warm-up:
//  - copy: cudaMemcpyAsync of the B x V x 4 bytes to a second buffer (reads and writes as many
//    bytes as the kernel does);
//  - kernel: CudaBatchWatermarker::Launch (its results memset included);
//  - graph: the same launch captured once in a CUDA graph and replayed.
// and prints per-launch microseconds, effective GB/s (2 x bytes / time) and copy_time/kernel_time.
#include <cuda_runtime.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tracemark/cuda/batch_watermarker.h"
#include "tracemark/watermark/keys.h"

namespace {

#define CHECK_CUDA(x)                                               \
  do {                                                              \
    cudaError_t e_ = (x);                                           \
    if (e_ != cudaSuccess) {                                        \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                 \
    }                                                               \
  } while (0)

template <typename F>
float TimeMs(cudaStream_t s, int iters, F&& f) {
  for (int i = 0; i < 10; ++i) f();
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  CHECK_CUDA(cudaEventRecord(a, s));
  for (int i = 0; i < iters; ++i) f();
  CHECK_CUDA(cudaEventRecord(b, s));
  CHECK_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / static_cast<float>(iters);
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0) iters = std::atoi(argv[i + 1]);
  }
  if (!tracemark::cuda::DeviceAvailable()) {
    std::fprintf(stderr, "cuda_kernel_bench: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  constexpr int32_t kVocab = 151936;
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 29 + 1);
  tracemark::watermark::Config base;
  base.vocab_size = kVocab;
  auto wm = *tracemark::watermark::Watermarker::Create(
      *tracemark::watermark::Key::FromBytes(bytes), *tracemark::watermark::ParseConfig("", base));
  std::printf("device %s, %d iterations per figure, V = %d\n", prop.name, iters, kVocab);
  std::printf("%5s %10s %10s %10s %9s %9s %12s %12s\n", "B", "copy us", "kernel us", "graph us",
              "copy GB/s", "kern GB/s", "copy/kernel", "copy/graph");
  for (int rows : {1, 64, 256}) {
    auto gpu = *tracemark::cuda::CudaBatchWatermarker::Create(*wm, rows);
    std::vector<int32_t> ctx(static_cast<size_t>(rows) * wm->config().context_width), slots(rows);
    std::mt19937 rng(rows);
    for (int32_t& c : ctx) c = std::uniform_int_distribution<int32_t>(0, kVocab - 1)(rng);
    for (int r = 0; r < rows; ++r) {
      slots[r] = r;
      if (!gpu->SetAccount(r, *wm->ForAccount(static_cast<uint64_t>(r))).ok()) return 1;
    }
    const size_t n = static_cast<size_t>(rows) * kVocab;
    std::vector<float> host(n);
    std::normal_distribution<float> d(0.0f, 2.0f);
    for (float& x : host) x = d(rng);
    float *logits, *copy;
    int32_t *d_ctx, *d_slots;
    tracemark::cuda::DeviceStepResult* d_res;
    CHECK_CUDA(cudaMalloc(&logits, n * 4));
    CHECK_CUDA(cudaMalloc(&copy, n * 4));
    CHECK_CUDA(cudaMalloc(&d_ctx, ctx.size() * 4));
    CHECK_CUDA(cudaMalloc(&d_slots, slots.size() * 4));
    CHECK_CUDA(cudaMalloc(&d_res, rows * sizeof(tracemark::cuda::DeviceStepResult)));
    CHECK_CUDA(cudaMemcpy(logits, host.data(), n * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(d_ctx, ctx.data(), ctx.size() * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(d_slots, slots.data(), slots.size() * 4, cudaMemcpyHostToDevice));
    cudaStream_t s;
    CHECK_CUDA(cudaStreamCreate(&s));
    const float copy_ms = TimeMs(s, iters, [&] {
      CHECK_CUDA(cudaMemcpyAsync(copy, logits, n * 4, cudaMemcpyDeviceToDevice, s));
    });
    const float kernel_ms = TimeMs(s, iters, [&] {
      if (!gpu->Launch(logits, d_ctx, d_slots, d_res, rows, s).ok()) std::exit(1);
    });
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    if (!gpu->Launch(logits, d_ctx, d_slots, d_res, rows, s).ok()) return 1;
    CHECK_CUDA(cudaStreamEndCapture(s, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    const float graph_ms = TimeMs(s, iters, [&] { CHECK_CUDA(cudaGraphLaunch(exec, s)); });
    const double moved = 2.0 * static_cast<double>(n) * 4;  // read + write
    std::printf("%5d %10.2f %10.2f %10.2f %9.0f %9.0f %12.3f %12.3f\n", rows, copy_ms * 1e3,
                kernel_ms * 1e3, graph_ms * 1e3, moved / copy_ms / 1e6, moved / kernel_ms / 1e6,
                copy_ms / kernel_ms, copy_ms / graph_ms);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(s);
    cudaFree(logits);
    cudaFree(copy);
    cudaFree(d_ctx);
    cudaFree(d_slots);
    cudaFree(d_res);
  }
  return 0;
}
