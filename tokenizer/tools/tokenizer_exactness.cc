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
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tracemark/tokenizer/load.h"

#ifndef TRACEMARK_DATA_DIR
#define TRACEMARK_DATA_DIR "data"
#endif

namespace {

int Fail(const std::string& message) {
  std::cerr << "tokenizer_exactness: " << message << "\n";
  return 1;
}

struct Args {
  std::string spec;
  std::string corpus_path;
  std::string out_path;
  std::string data_dir = TRACEMARK_DATA_DIR;
  int repeat = 1;
};

// The flags, each followed by its value. InvalidArgument names an unknown flag, or gives the usage
// when --tokenizer or --corpus is missing.
absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--tokenizer") {
      args.spec = argv[i + 1];
    } else if (flag == "--corpus") {
      args.corpus_path = argv[i + 1];
    } else if (flag == "--out") {
      args.out_path = argv[i + 1];
    } else if (flag == "--data-dir") {
      args.data_dir = argv[i + 1];
    } else if (flag == "--repeat") {
      args.repeat = std::max(1, std::atoi(argv[i + 1]));
    } else {
      return absl::InvalidArgumentError("unknown flag " + std::string(flag));
    }
  }
  if (args.spec.empty() || args.corpus_path.empty()) {
    return absl::InvalidArgumentError(
        "usage: --tokenizer SPEC --corpus FILE.jsonl [--out IDS.bin] [--repeat N]");
  }
  return args;
}

struct Corpus {
  std::vector<std::string> documents;
  size_t bytes = 0;  // all documents' together
};

// The corpus file: one JSON string (a document) per line.
absl::StatusOr<Corpus> ReadCorpus(const std::string& path) {
  Corpus corpus;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_string()) {
      return absl::InvalidArgumentError(path + ":" + std::to_string(line_number) +
                                        ": expected a JSON string");
    }
    corpus.documents.push_back(j.get<std::string>());
    corpus.bytes += corpus.documents.back().size();
  }
  return corpus;
}

struct Encoding {
  std::vector<std::vector<int32_t>> ids;  // per document
  double seconds = 0;                     // the fastest run's Encode calls
};

// Encodes every document `repeat` times on this thread, timing only the Encode calls of each run.
absl::StatusOr<Encoding> EncodeAll(const tracemark::tokenizer::Tokenizer& tokenizer,
                                   const std::vector<std::string>& documents, int repeat) {
  Encoding e;
  e.ids.resize(documents.size());
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t d = 0; d < documents.size(); ++d) {
      auto encoded = tokenizer.Encode(documents[d]);
      if (!encoded.ok()) {
        return absl::InvalidArgumentError("document " + std::to_string(d) + ": " +
                                          encoded.status().ToString());
      }
      e.ids[d] = std::move(encoded).value();
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }
  e.seconds = best;
  return e;
}

// Per document, its token count then its ids, all little-endian uint32.
absl::Status WriteIds(const std::string& path, const std::vector<std::vector<int32_t>>& ids) {
  std::ofstream out(path, std::ios::binary);
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
  if (!out) return absl::DataLossError("cannot write " + path);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  const absl::StatusOr<Args> args = ParseArgs(argc, argv);
  if (!args.ok()) return Fail(std::string(args.status().message()));
  auto tokenizer = tracemark::tokenizer::LoadTokenizer(args->spec, args->data_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status().ToString());
  const absl::StatusOr<Corpus> corpus = ReadCorpus(args->corpus_path);
  if (!corpus.ok()) return Fail(std::string(corpus.status().message()));
  const absl::StatusOr<Encoding> encoding = EncodeAll(**tokenizer, corpus->documents, args->repeat);
  if (!encoding.ok()) return Fail(std::string(encoding.status().message()));

  size_t tokens = 0;
  for (const auto& doc : encoding->ids) tokens += doc.size();
  if (!args->out_path.empty()) {
    const absl::Status written = WriteIds(args->out_path, encoding->ids);
    if (!written.ok()) return Fail(std::string(written.message()));
  }
  const double best = encoding->seconds;
  const size_t bytes = corpus->bytes;
  nlohmann::json figures = {
      {"tokenizer", args->spec}, {"documents", corpus->documents.size()},
      {"bytes", bytes},          {"tokens", tokens},
      {"seconds", best},         {"mb_per_s", static_cast<double>(bytes) / 1e6 / best}};
  std::cout << figures.dump() << std::endl;
  return 0;
}
