// Helpers shared by the study binaries (detection_study, scan_study): deterministic keys and
// seeds, a parallel loop, quantiles, and the reference model's data.
#ifndef TRACEMARK_BENCH_STUDY_COMMON_H_
#define TRACEMARK_BENCH_STUDY_COMMON_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/refmodel/kneser_ney.h"
#include "tracemark/tokenizer/tiktoken.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/prf.h"

namespace tracemark::study {

using watermark::Key;

Key KeyFrom(uint64_t seed) {
  std::vector<uint8_t> b(32);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(watermark::Mix(seed, i));
  return *Key::FromBytes(b);
}

uint64_t Hash(uint64_t a, uint64_t b) { return watermark::Mix(a * 0x9E3779B97F4A7C15ull + 1, b); }

template <typename F>
void ParallelFor(int n, int threads, F f) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) f(i);
    });
  }
  for (auto& th : pool) th.join();
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1);
  return v[i];
}

struct Corpus {
  std::vector<int32_t> ids;
  std::vector<int32_t> Prompt(uint64_t seed, int len) const {
    const size_t start = Hash(seed, 77) % (ids.size() - len);
    return std::vector<int32_t>(ids.begin() + start, ids.begin() + start + len);
  }
};

// The tokenizer, the trained reference model and the corpus as token ids (prompts are drawn from
// it).
struct StudyData {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<refmodel::KneserNeyModel> model;
  Corpus corpus;
};

inline absl::StatusOr<StudyData> LoadStudyData(const std::string& data_dir) {
  StudyData d;
  auto tok = tokenizer::LoadTiktokenFromDataDir(data_dir, "cl100k_base");
  if (!tok.ok()) return tok.status();
  d.tok = *std::move(tok);
  auto model = refmodel::KneserNeyModel::Load(reference::DefaultModelPath(data_dir));
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        std::string(model.status().message()) + " (run scripts/demo.sh first)");
  }
  d.model = std::make_unique<refmodel::KneserNeyModel>(*std::move(model));
  const auto files = reference::CorpusFiles(data_dir);
  if (!files.ok()) return files.status();
  for (const std::string& file : *files) {
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto ids = d.tok->Encode(text);
    if (!ids.ok()) return ids.status();
    d.corpus.ids.insert(d.corpus.ids.end(), ids->begin(), ids->end());
  }
  return d;
}

}  // namespace tracemark::study

#endif  // TRACEMARK_BENCH_STUDY_COMMON_H_
