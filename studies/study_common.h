// Helpers shared by the study binaries in studies/: deterministic keys and seeds, a parallel loop,
// quantiles and exact intervals, randomised p-values, the command-line flags, and the reference
// model's data.
#ifndef TRACEMARK_STUDIES_STUDY_COMMON_H_
#define TRACEMARK_STUDIES_STUDY_COMMON_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/read_file.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/refmodel/kneser_ney.h"
#include "tracemark/stats/tails.h"
#include "tracemark/stats/uniformity.h"
#include "tracemark/tokenizer/tiktoken.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/prf.h"

namespace tracemark::study {

using watermark::Key;

inline Key KeyFrom(uint64_t seed) {
  std::vector<uint8_t> b(32);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(watermark::Mix(seed, i));
  return *Key::FromBytes(b);
}

// Seconds since `start` (a steady_clock time point), for the studies' timed steps.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline uint64_t Hash(uint64_t a, uint64_t b) {
  return watermark::Mix(a * 0x9E3779B97F4A7C15ull + 1, b);
}

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

inline double Quantile(std::vector<double> v, double q) {
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

// Exact (Clopper-Pearson) two-sided 95 % interval for k successes in n trials.
inline std::pair<double, double> ClopperPearson(uint64_t k, uint64_t n) {
  auto upper_tail = [&](double p) {  // P(X >= k) for X ~ Binomial(n, p)
    return stats::BinomialUpperTail(k, n, p).value();
  };
  auto solve = [](auto f, double target) {  // f increasing in p
    double lo = 0, hi = 1;
    for (int i = 0; i < 200; ++i) {
      const double mid = (lo + hi) / 2;
      (f(mid) < target ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
  };
  const double lower = k == 0 ? 0.0 : solve(upper_tail, 0.025);
  // Upper: P(X <= k) = 0.025, i.e. 1 - P(X >= k + 1) = 0.025.
  const double upper =
      k == n
          ? 1.0
          : solve([&](double p) { return stats::BinomialUpperTail(k + 1, n, p).value(); }, 0.975);
  return {lower, upper};
}

// Randomised p-value of a discrete binomial test (exactly uniform under the null).
inline double RandomisedBinomialP(uint64_t k, uint64_t n, double p, double u) {
  const double ge = stats::BinomialUpperTail(k, n, p).value();
  const double gt = stats::BinomialUpperTail(k + 1, n, p).value();
  return gt + u * (ge - gt);
}

// The provider test's p-value made exactly uniform under the null for the KS test: Gumbel's is
// continuous already; KGW's green count and SynthID's g-values (one per layer) are binomial, and
// get RandomisedBinomialP with the uniform draw `u`.
inline double UniformProviderP(const watermark::Config& config, const watermark::ProviderResult& r,
                               double u) {
  if (config.scheme == watermark::Scheme::kGumbel) return r.p_value.value();
  const bool kgw = config.scheme == watermark::Scheme::kKgw;
  const uint64_t trials = kgw ? r.tuples : r.tuples * static_cast<uint64_t>(config.synthid.layers);
  return RandomisedBinomialP(static_cast<uint64_t>(r.score), trials, kgw ? config.kgw.gamma : 0.5,
                             u);
}

inline nlohmann::json KsJson(const std::vector<double>& p) {
  const stats::KsResult r = stats::KolmogorovSmirnovUniform(p);
  return {{"n", r.n},
          {"ks_statistic", r.statistic},
          {"ks_p_value", r.p_value},
          {"d_plus", r.statistic_plus},
          {"frac_le_0.05", stats::FractionAtOrBelow(p, 0.05)},
          {"frac_le_0.01", stats::FractionAtOrBelow(p, 0.01)},
          {"frac_le_0.001", stats::FractionAtOrBelow(p, 0.001)},
          {"min", *std::min_element(p.begin(), p.end())}};
}

// Command-line flags of a study: "--name value" pairs, each bound to a variable (its value when
// added is the default). Parse returns false, with a message on stderr, for an unknown flag, a
// flag without a value or a malformed number; and for --help (or -h), after listing the flags and
// their defaults on stdout. failure_status() is then the exit status: 0 after --help, else 2.
class StudyFlags {
 public:
  StudyFlags& Add(const std::string& name, std::string* v) {
    set_[name] = [v](const std::string& s) { *v = s; };
    defaults_[name] = "\"" + *v + "\"";
    return *this;
  }
  template <typename T>
  StudyFlags& Add(const std::string& name, T* v) {
    set_[name] = [v](const std::string& s) {
      if constexpr (std::is_floating_point_v<T>) {
        *v = static_cast<T>(std::stod(s));
      } else {
        *v = static_cast<T>(std::stoull(s));
      }
    };
    std::ostringstream d;
    d << *v;
    defaults_[name] = d.str();
    return *this;
  }
  bool Parse(int argc, char** argv) {
    for (int i = 1; i < argc; i += 2) {
      if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
        std::cout << "usage: " << argv[0] << " [--flag VALUE]...  (docs/ describes each study)\n";
        for (const auto& [name, value] : defaults_)
          std::cout << "  " << name << " " << value << "\n";
        help_ = true;
        return false;
      }
      auto it = set_.find(argv[i]);
      if (it == set_.end() || i + 1 >= argc) {
        std::cerr << (it == set_.end() ? "unknown flag " : "no value for ") << argv[i] << "\n";
        return false;
      }
      try {
        it->second(argv[i + 1]);
      } catch (const std::exception&) {
        std::cerr << "bad value for " << argv[i] << ": " << argv[i + 1] << "\n";
        return false;
      }
    }
    return true;
  }
  int failure_status() const { return help_ ? 0 : 2; }

 private:
  std::map<std::string, std::function<void(const std::string&)>> set_;
  std::map<std::string, std::string> defaults_;
  bool help_ = false;
};

// The tokenizer, the trained reference model and the corpus as token ids (prompts are drawn from
// it).
struct StudyData {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<refmodel::KneserNeyModel> model;
  Corpus corpus;
};

// `model_path` empty: the model scripts/demo.sh trains under the data dir.
inline absl::StatusOr<StudyData> LoadStudyData(const std::string& data_dir,
                                               const std::string& model_path = "") {
  StudyData d;
  auto tok = tokenizer::LoadTiktokenFromDataDir(data_dir, "cl100k_base");
  if (!tok.ok()) return tok.status();
  d.tok = *std::move(tok);
  auto model = refmodel::KneserNeyModel::Load(
      model_path.empty() ? reference::DefaultModelPath(data_dir) : model_path);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        std::string(model.status().message()) + " (run scripts/demo.sh first)");
  }
  d.model = std::make_unique<refmodel::KneserNeyModel>(*std::move(model));
  const auto files = reference::CorpusFiles(data_dir);
  if (!files.ok()) return files.status();
  for (const std::string& file : *files) {
    auto text = base::ReadFile(file, "corpus file");
    if (!text.ok()) return text.status();
    auto ids = d.tok->Encode(*text);
    if (!ids.ok()) return ids.status();
    d.corpus.ids.insert(d.corpus.ids.end(), ids->begin(), ids->end());
  }
  return d;
}

}  // namespace tracemark::study

#endif  // TRACEMARK_STUDIES_STUDY_COMMON_H_
