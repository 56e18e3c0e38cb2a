// Encode/decode throughput of the tokenizers on English prose (the State of the Union corpus in
// data/npm/sotu/data, about 10 MB, as one string), one thread: tiktoken encodings and Hugging
// Face tokenizer.json files with a pre-tokenizer. Llama 2 and SentencePiece models treat a whole
// text as one word, so they are measured per document by scripts/tokenizer_exactness.sh
// (against the reference implementations, on varied text) instead.
//
//   build/bench/tokenizer_bench --benchmark_filter=Encode
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tracemark/tokenizer/load.h"

namespace tracemark::tokenizer {
namespace {

#ifndef TRACEMARK_DATA_DIR
#define TRACEMARK_DATA_DIR "data"
#endif

// All .txt files of the corpus in name order, concatenated; empty if absent.
const std::string& Corpus() {
  static const auto* corpus = [] {
    auto* text = new std::string();
    const std::filesystem::path dir = std::filesystem::path(TRACEMARK_DATA_DIR) / "npm/sotu/data";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return text;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".txt") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream contents;
      contents << in.rdbuf();
      *text += contents.str();
    }
    return text;
  }();
  return *corpus;
}

const Tokenizer* GetTokenizer(const std::string& encoding) {
  static auto* cache = new std::vector<std::pair<std::string, std::unique_ptr<Tokenizer>>>();
  for (const auto& [name, tok] : *cache) {
    if (name == encoding) return tok.get();
  }
  auto loaded = LoadTokenizer(encoding, TRACEMARK_DATA_DIR);
  if (!loaded.ok()) return nullptr;
  cache->emplace_back(encoding, std::move(loaded).value());
  return cache->back().second.get();
}

void BM_Encode(benchmark::State& state, const std::string& encoding) {
  const Tokenizer* tok = GetTokenizer(encoding);
  const std::string& text = Corpus();
  if (tok == nullptr || text.empty()) {
    state.SkipWithError("tokenizer data missing: run scripts/setup.sh");
    return;
  }
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok->Encode(text);
    benchmark::DoNotOptimize(ids);
    tokens = ids.ok() ? ids->size() : 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_Decode(benchmark::State& state, const std::string& encoding) {
  const Tokenizer* tok = GetTokenizer(encoding);
  const std::string& text = Corpus();
  if (tok == nullptr || text.empty()) {
    state.SkipWithError("tokenizer data missing: run scripts/setup.sh");
    return;
  }
  const std::vector<int32_t> ids = *tok->Encode(text);
  for (auto _ : state) {
    auto decoded = tok->Decode(ids);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK_CAPTURE(BM_Encode, r50k_base, std::string("r50k_base"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, cl100k_base, std::string("cl100k_base"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, o200k_base, std::string("o200k_base"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, hf_qwen3, std::string("hf:qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, hf_llama3, std::string("hf:llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, cl100k_base, std::string("cl100k_base"))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tracemark::tokenizer

BENCHMARK_MAIN();
