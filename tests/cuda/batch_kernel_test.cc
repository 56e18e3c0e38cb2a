// The batched CUDA kernel: its host reference (the same source as the kernel) against
// Watermarker::ProcessBatch, bit for bit, on every machine; the kernel on the device against the
// host reference when a CUDA device is present (skipped otherwise, and said so).
#include <cuda_runtime.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/cuda/batch_watermarker.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::cuda {
namespace {

using watermark::AccountKeys;
using watermark::Config;
using watermark::Watermarker;

std::unique_ptr<Watermarker> Make(const std::string& spec, int32_t vocab) {
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(11 * i + 5);
  Config base;
  base.vocab_size = vocab;
  auto config = watermark::ParseConfig(spec, base);
  EXPECT_TRUE(config.ok()) << config.status();
  auto wm = Watermarker::Create(*watermark::Key::FromBytes(bytes), *config);
  EXPECT_TRUE(wm.ok()) << wm.status();
  return *std::move(wm);
}

struct Batch {
  std::vector<AccountKeys> keys;
  std::vector<const AccountKeys*> accounts;
  std::vector<int32_t> contexts;
  std::vector<float> logits;
};

// `rows` rows: accounts (every third anonymous), random contexts (one row short), random logits
// with a few -inf (masked tokens) and a -0.0.
Batch MakeBatch(const Watermarker& wm, int rows, uint32_t seed) {
  const int32_t v = wm.config().vocab_size, h = wm.config().context_width;
  std::mt19937 rng(seed);
  Batch b;
  b.keys.reserve(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    if (r % 3 == 2) {
      b.accounts.push_back(nullptr);
    } else {
      b.keys.push_back(*wm.ForAccount(static_cast<uint64_t>(1000 + r)));
      b.accounts.push_back(&b.keys.back());
    }
    for (int i = 0; i < h; ++i) {
      b.contexts.push_back(std::uniform_int_distribution<int32_t>(0, v - 1)(rng));
    }
  }
  if (rows > 3) b.contexts[3 * static_cast<size_t>(h)] = -1;  // row 3: context too short
  std::normal_distribution<float> n(0.0f, 3.0f);
  b.logits.resize(static_cast<size_t>(rows) * v);
  for (float& l : b.logits) l = n(rng);
  for (size_t i = 7; i < b.logits.size(); i += 997)
    b.logits[i] = -std::numeric_limits<float>::infinity();
  b.logits[1] = -0.0f;
  return b;
}

void ExpectBitsEqual(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  size_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  EXPECT_EQ(diff, 0u);
}

TEST(CudaHostReferenceTest, EqualsProcessBatchBitForBit) {
  for (const char* spec :
       {"scheme=kgw", "scheme=kgw,hash=selfhash,h=4", "scheme=kgw,account_share=0",
        "scheme=kgw,gamma=0.5,delta=1.7,account_share=0.8"}) {
    for (int32_t vocab : {1000, 151936}) {
      auto wm = Make(spec, vocab);
      const int rows = vocab > 100000 ? 5 : 40;
      Batch b = MakeBatch(*wm, rows, 7);
      std::vector<float> cpu = b.logits, ref = b.logits;
      std::vector<watermark::StepResult> cpu_results(static_cast<size_t>(rows));
      ASSERT_TRUE(wm->ProcessBatch(b.accounts, b.contexts, absl::MakeSpan(cpu), {},
                                   absl::MakeSpan(cpu_results))
                      .ok());
      std::vector<DeviceStepResult> ref_results(static_cast<size_t>(rows));
      ASSERT_TRUE(ProcessBatchHostReference(*wm, b.accounts, b.contexts, absl::MakeSpan(ref),
                                            absl::MakeSpan(ref_results))
                      .ok());
      ExpectBitsEqual(cpu, ref);
      int changed_rows = 0;
      for (int r = 0; r < rows; ++r) {
        EXPECT_EQ(ref_results[r].layer, static_cast<int32_t>(cpu_results[r].layer)) << spec << r;
        EXPECT_EQ(ref_results[r].invalid, 0);
        changed_rows += cpu_results[r].layer != watermark::Layer::kNone;
      }
      EXPECT_GT(changed_rows, rows / 3) << spec;  // the comparison covers biased rows
    }
  }
}

TEST(CudaHostReferenceTest, FlagsInvalidRowsAndRefusesWhatTheKernelCannotDo) {
  auto wm = Make("scheme=kgw", 1000);
  Batch b = MakeBatch(*wm, 4, 3);
  b.logits[1000 + 5] = std::numeric_limits<float>::quiet_NaN();  // row 1
  std::vector<DeviceStepResult> results(4);
  ASSERT_TRUE(ProcessBatchHostReference(*wm, b.accounts, b.contexts, absl::MakeSpan(b.logits),
                                        absl::MakeSpan(results))
                  .ok());
  EXPECT_EQ(results[0].invalid, 0);
  EXPECT_EQ(results[1].invalid, 1);
  for (const char* scheme : {"scheme=gumbel", "scheme=synthid"}) {
    auto other = Make(scheme, 1000);
    EXPECT_EQ(ProcessBatchHostReference(*other, b.accounts, b.contexts, absl::MakeSpan(b.logits),
                                        absl::MakeSpan(results))
                  .code(),
              absl::StatusCode::kUnimplemented);
    EXPECT_EQ(CudaBatchWatermarker::Create(*other, 4).status().code(),
              absl::StatusCode::kUnimplemented);
  }
  // Keys of another configuration are refused.
  auto wm2 = Make("scheme=kgw,gamma=0.5", 1000);
  auto foreign = *wm2->ForAccount(1);
  b.accounts[0] = &foreign;
  EXPECT_EQ(ProcessBatchHostReference(*wm, b.accounts, b.contexts, absl::MakeSpan(b.logits),
                                      absl::MakeSpan(results))
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CudaBatchWatermarkerTest, WithoutADeviceCreateSaysSo) {
  if (DeviceAvailable()) GTEST_SKIP() << "a CUDA device is present";
  auto wm = Make("scheme=kgw", 1000);
  EXPECT_EQ(CudaBatchWatermarker::Create(*wm, 4).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CudaBatchWatermarkerTest, TakesAChainsBiasLayersAndRefusesItsCanaries) {
  auto tok = tokenizer::LoadTokenizer("tiktoken:r50k_base", TRACEMARK_DATA_DIR);
  TRACEMARK_REQUIRE_DATA(tok.ok(), "the r50k_base tokenizer data");
  auto wm = Make("scheme=kgw", (*tok)->vocab_size());
  auto canary = *canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), **tok);
  const auto with = *engine::ServingChain::Create(wm.get(), canary.get());
  const auto refused = CudaBatchWatermarker::Create(with, 4);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("canary"), absl::string_view::npos);
  const auto without = *engine::ServingChain::Create(wm.get());
  const auto taken = CudaBatchWatermarker::Create(without, 4);
  if (DeviceAvailable()) {
    EXPECT_TRUE(taken.ok()) << taken.status();
  } else {
    EXPECT_EQ(taken.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(taken.status().message().find("canary"), absl::string_view::npos);
  }
}

template <typename T>
T* DeviceCopy(const std::vector<T>& host) {
  T* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return d;
}

TEST(CudaBatchWatermarkerTest, DeviceEqualsHostReferenceBitForBit) {
  if (!DeviceAvailable()) GTEST_SKIP() << "no CUDA device: the kernel was built but not run";
  for (int rows : {1, 64, 256}) {
    auto wm = Make("scheme=kgw", 151936);
    Batch b = MakeBatch(*wm, rows, static_cast<uint32_t>(rows));
    b.logits[static_cast<size_t>(rows - 1) * 151936 + 9] = std::numeric_limits<float>::quiet_NaN();
    auto gpu = CudaBatchWatermarker::Create(*wm, rows);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    std::vector<int32_t> slots(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
      slots[r] = b.accounts[r] == nullptr ? -1 : r;
      if (b.accounts[r] != nullptr) {
        ASSERT_TRUE((*gpu)->SetAccount(r, *b.accounts[r]).ok());
      }
    }
    std::vector<float> ref = b.logits;
    std::vector<DeviceStepResult> ref_results(static_cast<size_t>(rows));
    ASSERT_TRUE(ProcessBatchHostReference(*wm, b.accounts, b.contexts, absl::MakeSpan(ref),
                                          absl::MakeSpan(ref_results))
                    .ok());
    float* d_logits = DeviceCopy(b.logits);
    int32_t* d_ctx = DeviceCopy(b.contexts);
    int32_t* d_slots = DeviceCopy(slots);
    DeviceStepResult* d_results = nullptr;
    ASSERT_EQ(cudaMalloc(&d_results, rows * sizeof(DeviceStepResult)), cudaSuccess);
    ASSERT_TRUE((*gpu)->Launch(d_logits, d_ctx, d_slots, d_results, rows, nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> got(b.logits.size());
    std::vector<DeviceStepResult> got_results(static_cast<size_t>(rows));
    ASSERT_EQ(cudaMemcpy(got.data(), d_logits, got.size() * 4, cudaMemcpyDeviceToHost),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpy(got_results.data(), d_results, rows * sizeof(DeviceStepResult),
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
    ExpectBitsEqual(got, ref);
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(got_results[r].layer, ref_results[r].layer) << r;
      EXPECT_EQ(got_results[r].invalid, ref_results[r].invalid) << r;
    }
    // The same launch captured in a CUDA graph and replayed on a fresh copy: same bytes.
    ASSERT_EQ(cudaMemcpy(d_logits, b.logits.data(), got.size() * 4, cudaMemcpyHostToDevice),
              cudaSuccess);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    ASSERT_TRUE((*gpu)->Launch(d_logits, d_ctx, d_slots, d_results, rows, stream).ok());
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<float> replayed(b.logits.size());
    ASSERT_EQ(cudaMemcpy(replayed.data(), d_logits, got.size() * 4, cudaMemcpyDeviceToHost),
              cudaSuccess);
    ExpectBitsEqual(replayed, ref);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    cudaFree(d_logits);
    cudaFree(d_ctx);
    cudaFree(d_slots);
    cudaFree(d_results);
  }
}

}  // namespace
}  // namespace tracemark::cuda
