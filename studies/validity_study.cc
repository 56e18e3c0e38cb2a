// Validity study on real, unwatermarked text (docs/validity.md): for every document of a clean
// corpus (scripts/validity_corpus.py), the provider p-value of each scheme under a key that never
// touched it, and the account attribution of the scanner; empirical false-positive rates at
// 1e-2, 1e-3 and 1e-4 with Clopper-Pearson intervals and a Kolmogorov-Smirnov test of uniformity.
// For KGW it also runs the z-test of the reference Python implementations (every scored token
// counted, repeats included, normal approximation) on the same documents, to show what exact tails
// over unique tuples buy. Writes the p-values to --out (JSON) for the QQ plot
// (scripts/validity_plot.py). The whole study is one command: scripts/validity_study.sh.
//
//   build/studies/validity_study --corpus out/validity/corpus --out out/validity/pvalues.json
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "study_common.h"
#include "tracemark/dataset/input.h"
#include "tracemark/detect/verifier.h"
#include "tracemark/stats/uniformity.h"
#include "tracemark/tokenizer/tiktoken.h"
#include "tracemark/watermark/detector.h"

namespace tmk = tracemark;
using tmk::study::ClopperPearson;
using tmk::study::Hash;
using tmk::study::KeyFrom;
using tmk::study::ParallelFor;
using tmk::watermark::Config;
using tmk::watermark::Detector;

namespace {

struct Doc {
  std::string domain;
  std::vector<int32_t> ids;
};

struct Test {
  Test(std::string test_name, size_t n) : name(std::move(test_name)), conservative(n), uniform(n) {}
  std::string name;
  std::vector<double> conservative;  // what tracemark reports (P(X >= x))
  std::vector<double> uniform;       // randomised within the atom, for the KS test
};

const std::vector<double> kThresholds = {1e-2, 1e-3, 1e-4};

void PrintRow(const Test& t, const std::vector<Doc>& docs, nlohmann::json* out) {
  const tmk::stats::KsResult ks = tmk::stats::KolmogorovSmirnovUniform(t.uniform);
  nlohmann::json j = {{"test", t.name},
                      {"documents", t.conservative.size()},
                      {"ks_statistic", ks.statistic},
                      {"ks_p_value", ks.p_value},
                      {"min_p", *std::min_element(t.conservative.begin(), t.conservative.end())}};
  std::string cells;
  for (double a : kThresholds) {
    uint64_t k = 0;
    for (double p : t.conservative) k += p <= a;
    const auto ci = ClopperPearson(k, t.conservative.size());
    const double rate = static_cast<double>(k) / static_cast<double>(t.conservative.size());
    cells += absl::StrFormat(" %.2g [%.2g, %.2g] |", rate, ci.first, ci.second);
    j["fpr"].push_back(
        {{"threshold", a}, {"count", k}, {"rate", rate}, {"ci95", {ci.first, ci.second}}});
  }
  // False positives at 1e-3 by domain.
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_domain;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto& c = by_domain[docs[i].domain];
    ++c.second;
    c.first += t.conservative[i] <= 1e-3;
  }
  std::string domains;
  for (const auto& [d, c] : by_domain) {
    domains += absl::StrFormat("%s %.2g, ", d,
                               static_cast<double>(c.first) / static_cast<double>(c.second));
    j["fpr_1e-3_by_domain"][d] = {{"count", c.first}, {"documents", c.second}};
  }
  std::printf("| %s |%s %.4f | %.3g | %.2g | %s |\n", t.name.c_str(), cells.c_str(), ks.statistic,
              ks.p_value, j["min_p"].get<double>(), domains.c_str());
  std::fflush(stdout);
  j["p_values"] = t.conservative;
  out->push_back(std::move(j));
}

// Every document of the corpus, its segments' texts tokenised and joined; its domain is the name
// of the file it came from. Prints the counts on stderr.
absl::StatusOr<std::vector<Doc>> ReadCorpus(const std::string& corpus,
                                            const tmk::tokenizer::Tokenizer& tok, int threads,
                                            uint64_t* total_tokens) {
  auto reader = tmk::dataset::DocumentReader::Open({corpus});
  if (!reader.ok()) return reader.status();
  std::vector<tmk::dataset::Document> raw;
  for (tmk::dataset::Document d;;) {
    auto more = (*reader)->Next(&d);
    if (!more.ok() || !*more) break;
    raw.push_back(std::move(d));
  }
  std::vector<Doc> docs(raw.size());
  std::atomic<uint64_t> tokens{0};
  ParallelFor(static_cast<int>(raw.size()), threads, [&](int i) {
    docs[i].domain =
        std::filesystem::path(raw[i].source.substr(0, raw[i].source.rfind(':'))).stem().string();
    for (const auto& seg : raw[i].segments) {
      auto ids = tok.Encode(seg.text);
      if (ids.ok()) docs[i].ids.insert(docs[i].ids.end(), ids->begin(), ids->end());
    }
    tokens += docs[i].ids.size();
  });
  std::fprintf(stderr, "%zu documents, %llu tokens (%zu skipped records)\n", docs.size(),
               static_cast<unsigned long long>(tokens.load()), (*reader)->skipped().size());
  *total_tokens = tokens.load();
  return docs;
}

// The provider test's p-value of `ids` under `d`: conservative, and randomised within the atom.
void ExactP(const Config& config, const Detector& d, const std::vector<int32_t>& ids, double u,
            double* conservative, double* uniform) {
  tmk::watermark::TextStatistics s;
  (void)d.Score(ids, 0, &s);
  const auto r = d.TestProvider(s).value();
  *conservative = r.p_value.value();
  *uniform = tmk::study::UniformProviderP(config, r, u);
}

// The z-test of the reference Python implementations: every provider position counted, repeats
// included; the one-sided normal tail of the z-score.
double ZTestP(const Config& config, const Detector& det, const std::vector<int32_t>& ids) {
  const size_t h = static_cast<size_t>(config.context_width);
  double green = 0, total = 0;
  for (size_t j = h; j < ids.size(); ++j) {
    tmk::watermark::TextStatistics one;
    (void)det.Score(absl::MakeConstSpan(ids.data() + j - h, h + 1), h, &one);
    const auto p = det.TestProvider(one).value();
    green += p.score;
    total += static_cast<double>(p.tuples);
  }
  const double g = config.kgw.gamma;
  const double zs = total > 0 ? (green - g * total) / std::sqrt(total * g * (1 - g)) : 0;
  return 0.5 * std::erfc(zs / std::sqrt(2.0));
}

// One scheme's rows: the exact test under one key and under a fresh key per document, and for
// KGW the z-test under the one key.
void TestScheme(const std::string& name, const Config& config, const std::vector<Doc>& docs,
                int threads, nlohmann::json* tests) {
  const size_t n = docs.size();
  auto det = *Detector::Create(KeyFrom(4242), config);
  const bool kgw = config.scheme == tmk::watermark::Scheme::kKgw;
  auto u = [](int i) { return tmk::watermark::UnitOpen(Hash(static_cast<uint64_t>(i), 3)); };
  Test exact(name + " exact (tracemark), one key", n);
  Test z(name + " z-test, all tokens (Python anchors), one key", n);
  // A fresh key per document: each p-value's null is over the key, so these are independent
  // draws of it, where one fixed key makes documents that share tuples share their colours.
  Test fresh(name + " exact, fresh key per document", n);
  ParallelFor(static_cast<int>(n), threads, [&](int i) {
    auto d = *Detector::Create(KeyFrom(Hash(static_cast<uint64_t>(i), 17)), config);
    ExactP(config, *d, docs[i].ids, u(i), &fresh.conservative[i], &fresh.uniform[i]);
  });
  ParallelFor(static_cast<int>(n), threads, [&](int i) {
    ExactP(config, *det, docs[i].ids, u(i), &exact.conservative[i], &exact.uniform[i]);
    if (kgw) z.conservative[i] = z.uniform[i] = ZTestP(config, *det, docs[i].ids);
  });
  PrintRow(exact, docs, tests);
  PrintRow(fresh, docs, tests);
  if (kgw) PrintRow(z, docs, tests);
}

// Account attribution by the scanner's rule (payload decode among `accounts`, confirmation).
void TestAttribution(const Config& config, const std::vector<Doc>& docs, uint64_t accounts,
                     int threads, nlohmann::json* tests) {
  auto v = *tmk::detect::Verifier::Create(KeyFrom(4243), config, {0});
  Test attr("account attribution (decode + confirm, N = " + std::to_string(accounts) + ")",
            docs.size());
  tmk::detect::DetectOptions opt;
  opt.account_limit = accounts;
  ParallelFor(static_cast<int>(docs.size()), threads, [&](int i) {
    auto d = v->DetectIds(docs[i].ids, 0, opt);
    attr.conservative[i] = attr.uniform[i] = d.ok() ? d->attributed_p_value.value() : 1.0;
  });
  PrintRow(attr, docs, tests);
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus = "out/validity/corpus", data_dir = TRACEMARK_DATA_DIR, out_path;
  int threads = 2;
  uint64_t accounts = 25000;
  tmk::study::StudyFlags flags;
  flags.Add("--corpus", &corpus)
      .Add("--data-dir", &data_dir)
      .Add("--out", &out_path)
      .Add("--threads", &threads)
      .Add("--accounts", &accounts);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  auto tok = tmk::tokenizer::LoadTiktokenFromDataDir(data_dir, "cl100k_base");
  if (!tok.ok()) return std::cerr << tok.status() << "\n", 1;
  uint64_t tokens = 0;
  auto docs = ReadCorpus(corpus, **tok, threads, &tokens);
  if (!docs.ok()) return std::cerr << docs.status() << "\n", 1;
  std::printf(
      "| test | FPR at 1e-2 [95%% CI] | at 1e-3 | at 1e-4 | KS D | KS p | min p | "
      "FPR at 1e-3 by domain |\n|---|---|---|---|---|---|---|---|\n");
  nlohmann::json out = {
      {"documents", docs->size()}, {"tokens", tokens}, {"tests", nlohmann::json::array()}};
  const std::vector<std::pair<std::string, std::string>> schemes = {
      {"kgw-lefthash", "scheme=kgw"},
      {"kgw-selfhash", "scheme=kgw,hash=selfhash"},
      {"gumbel", "scheme=gumbel"},
      {"synthid", "scheme=synthid"}};
  Config base;
  base.vocab_size = (*tok)->vocab_size();
  for (const auto& [name, spec] : schemes) {
    TestScheme(name, *tmk::watermark::ParseConfig(spec, base), *docs, threads, &out["tests"]);
  }
  TestAttribution(base, *docs, accounts, threads, &out["tests"]);
  if (!out_path.empty()) std::ofstream(out_path) << out.dump() << "\n";
  return 0;
}
