// Encodes a corpus with one of tracemark's tokenizers for scripts/tokenizer_exactness.sh, which
// compares the ids with a reference implementation's and the speeds.
//
//   build/tokenizer/tokenizer_exactness --tokenizer hf:qwen3 --corpus corpus.jsonl --out ids.bin
//
// The corpus holds one JSON string (a document) per line. The output holds, per document, its
// token count then its ids, all little-endian uint32. One JSON line of figures goes to stdout:
// documents, bytes, tokens, encode seconds (the Encode calls only, one thread, best of --repeat
// runs) and MB/s (10^6 bytes per second).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tracemark/tokenizer/load.h"

#ifndef TRACEMARK_DATA_DIR
#define TRACEMARK_DATA_DIR "data"
#endif

namespace {

int Fail(const std::string& message) {
  std::cerr << "tokenizer_exactness: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string spec;
  std::string corpus_path;
  std::string out_path;
  std::string data_dir = TRACEMARK_DATA_DIR;
  int repeat = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--tokenizer") {
      spec = argv[i + 1];
    } else if (flag == "--corpus") {
      corpus_path = argv[i + 1];
    } else if (flag == "--out") {
      out_path = argv[i + 1];
    } else if (flag == "--data-dir") {
      data_dir = argv[i + 1];
    } else if (flag == "--repeat") {
      repeat = std::max(1, std::atoi(argv[i + 1]));
    } else {
      return Fail("unknown flag " + std::string(flag));
    }
  }
  if (spec.empty() || corpus_path.empty()) {
    return Fail("usage: --tokenizer SPEC --corpus FILE.jsonl [--out IDS.bin] [--repeat N]");
  }
  auto tokenizer = tracemark::tokenizer::LoadTokenizer(spec, data_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status().ToString());

  std::vector<std::string> documents;
  size_t bytes = 0;
  {
    std::ifstream in(corpus_path);
    if (!in) return Fail("cannot open " + corpus_path);
    std::string line;
    size_t line_number = 0;
    while (std::getline(in, line)) {
      ++line_number;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_string()) {
        return Fail(corpus_path + ":" + std::to_string(line_number) + ": expected a JSON string");
      }
      documents.push_back(j.get<std::string>());
      bytes += documents.back().size();
    }
  }

  std::vector<std::vector<int32_t>> ids(documents.size());
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t d = 0; d < documents.size(); ++d) {
      auto encoded = (*tokenizer)->Encode(documents[d]);
      if (!encoded.ok()) {
        return Fail("document " + std::to_string(d) + ": " + encoded.status().ToString());
      }
      ids[d] = std::move(encoded).value();
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }

  size_t tokens = 0;
  for (const auto& doc : ids) tokens += doc.size();
  if (!out_path.empty()) {
    std::ofstream out(out_path, std::ios::binary);
    auto put = [&](uint32_t v) {
      const unsigned char b[4] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8),
                                  static_cast<unsigned char>(v >> 16),
                                  static_cast<unsigned char>(v >> 24)};
      out.write(reinterpret_cast<const char*>(b), 4);
    };
    for (const auto& doc : ids) {
      put(static_cast<uint32_t>(doc.size()));
      for (int32_t id : doc) put(static_cast<uint32_t>(id));
    }
    if (!out) return Fail("cannot write " + out_path);
  }
  nlohmann::json figures = {
      {"tokenizer", spec}, {"documents", documents.size()},
      {"bytes", bytes},    {"tokens", tokens},
      {"seconds", best},   {"mb_per_s", static_cast<double>(bytes) / 1e6 / best}};
  std::cout << figures.dump() << std::endl;
  return 0;
}
