// Scan study with the reference model (docs/scan.md): per-sample attribution among N accounts, the
// false attributions on text the key never touched, and the scanner's throughput.
//
//  attribution: documents of T tokens (T = 50, 100, 200, 400) served to random accounts among N,
//               decoded to text and scanned as a dataset would be: the fraction flagged (provider
//               p <= alpha) and attributed to the right account, and any attributed to a wrong one;
//  null:        clean documents (plain generations) and watermarked documents under another key:
//               documents flagged and attributed at each threshold, with Clopper-Pearson bounds;
//  throughput:  a JSONL dataset written to --out-dir (once; reused), scanned from disk with
//  --threads threads for
//               N = 1 and N = 25,000 accounts: MB/s of file, MB/s of scored text, tokens/s.
//
//  retokenise:  generated ids against the canonical tokenisation of their text (what a verifier
//               sees): how many tokens change and how much provider signal is lost.
//
//   build/studies/scan_study --study attribution --docs 1000
//   build/studies/scan_study --study retokenise --docs 500 --tokens 300
//   build/studies/scan_study --study null --docs 100000 --clean-docs 20000 --tokens 100
//   build/studies/scan_study --study throughput --docs 20000 --tokens 300
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "study_common.h"
#include "tracemark/detect/scanner.h"
#include "tracemark/stats/tails.h"
#include "tracemark/tokenizer/utf8.h"
#include "tracemark/watermark/watermarker.h"

namespace tmk = tracemark;
using tmk::study::ClopperPearson;
using tmk::study::Hash;
using tmk::study::KeyFrom;
using tmk::study::ParallelFor;
using tmk::watermark::Config;
using tmk::watermark::Key;

namespace {

struct Flags {
  std::string study = "attribution";
  std::string data_dir = TRACEMARK_DATA_DIR;
  std::string out_dir = "out/scan-study";
  std::string out;
  int docs = 1000;
  int clean_docs = -1;  // null study: plain generations (default: --docs)
  int tokens = 150;
  int threads = 2;
  uint64_t accounts = 25000;
  size_t max_candidates = 1;  // payload candidates confirmed per document
};

const std::vector<double> kThresholds = {1e-3, 1e-4, 1e-6};

struct Setup {
  tmk::study::StudyData data;
  Config config;
};

// One generated document: the prompt as context, the answer as text.
tmk::dataset::Document MakeDocument(const Setup& s, int i, uint64_t seed_tag, int tokens,
                                    const tmk::watermark::Watermarker* wm, uint64_t account) {
  const tmk::reference::ReferenceGenerator gen(s.data.model.get(), s.data.tok.get());
  tmk::reference::GenerateOptions o;
  o.max_tokens = tokens;
  o.seed = Hash(static_cast<uint64_t>(i), seed_tag);
  std::optional<tmk::watermark::AccountKeys> acct;
  if (wm != nullptr) acct = *wm->ForAccount(account);
  auto g = *gen.GenerateIds(s.data.corpus.Prompt(Hash(static_cast<uint64_t>(i), seed_tag + 1), 8),
                            wm, acct ? &*acct : nullptr, o);
  tmk::dataset::Document d;
  d.index = static_cast<uint64_t>(i);
  d.id = d.source = absl::StrFormat("doc%d", i);
  d.segments.push_back({*s.data.tok->Decode(g.prompt_ids), *s.data.tok->Decode(g.ids)});
  return d;
}

int Attribution(const Flags& f, const Setup& s, nlohmann::json* out) {
  const Key master = KeyFrom(7);
  auto wm =
      *tmk::watermark::Watermarker::Create(*tmk::watermark::DeriveEpochKey(master, 0), s.config);
  auto v = *tmk::detect::Verifier::Create(master, s.config, {0});
  tmk::detect::ScanOptions opt;
  opt.account_limit = f.accounts;
  opt.attribution_alpha = kThresholds.front();
  opt.max_candidates = f.max_candidates;
  tmk::detect::Scanner scanner(*v, *s.data.tok, opt);
  std::printf(
      "| tokens | flagged p<=1e-6 | right account p<=1e-3 | p<=1e-4 | p<=1e-6 | wrong account "
      "p<=1e-3 | p<=1e-6 |\n|---|---|---|---|---|---|---|\n");
  for (int tokens : {50, 100, 200, 400}) {
    std::vector<uint64_t> truth(f.docs);
    std::vector<tmk::detect::DocumentResult> results(f.docs);
    ParallelFor(f.docs, f.threads, [&](int i) {
      truth[i] = Hash(static_cast<uint64_t>(i), 31 + tokens) % f.accounts;
      tmk::detect::ScanResult r;
      (void)scanner.ScanDocument(MakeDocument(s, i, 1000 + tokens, tokens, wm.get(), truth[i]), &r);
      results[i] = r.documents.at(0);
    });
    int flagged = 0, right[3] = {0, 0, 0}, wrong[3] = {0, 0, 0};
    for (int i = 0; i < f.docs; ++i) {
      const auto& d = results[i];
      flagged += d.provider_p_value.value() <= 1e-6;
      for (size_t t = 0; t < kThresholds.size(); ++t) {
        if (!d.account.has_value() || d.account_p_value.value() > kThresholds[t]) continue;
        (*d.account == truth[i] ? right : wrong)[t]++;
      }
    }
    const double n = f.docs;
    std::printf("| %d | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %d | %d |\n", tokens, 100 * flagged / n,
                100 * right[0] / n, 100 * right[1] / n, 100 * right[2] / n, wrong[0], wrong[2]);
    std::fflush(stdout);
    (*out)["attribution"].push_back({{"tokens", tokens},
                                     {"documents", f.docs},
                                     {"flagged_1e-6", flagged},
                                     {"right_1e-3", right[0]},
                                     {"right_1e-4", right[1]},
                                     {"right_1e-6", right[2]},
                                     {"wrong_1e-3", wrong[0]},
                                     {"wrong_1e-4", wrong[1]},
                                     {"wrong_1e-6", wrong[2]}});
  }
  return 0;
}

int Null(const Flags& f, const Setup& s, nlohmann::json* out) {
  const Key master = KeyFrom(7);
  auto v = *tmk::detect::Verifier::Create(master, s.config, {0});
  // Watermarked under an unrelated master key: "wrong key" text.
  auto other = *tmk::watermark::Watermarker::Create(*tmk::watermark::DeriveEpochKey(KeyFrom(8), 0),
                                                    s.config);
  tmk::detect::ScanOptions opt;
  opt.account_limit = f.accounts;
  opt.attribution_alpha = kThresholds.front();
  tmk::detect::Scanner scanner(*v, *s.data.tok, opt);
  std::printf(
      "| text | documents | threshold | flagged (provider) | 95%% CI | attributed | 95%% CI |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const bool wrong_key : {false, true}) {
    const int docs = wrong_key || f.clean_docs < 0 ? f.docs : f.clean_docs;
    std::vector<tmk::detect::DocumentResult> results(docs);
    std::atomic<int> done{0};
    ParallelFor(docs, f.threads, [&](int i) {
      const uint64_t account = Hash(static_cast<uint64_t>(i), 55) % f.accounts;
      tmk::detect::ScanResult r;
      (void)scanner.ScanDocument(MakeDocument(s, i, wrong_key ? 5000 : 6000, f.tokens,
                                              wrong_key ? other.get() : nullptr, account),
                                 &r);
      results[i] = r.documents.at(0);
      if (++done % 10000 == 0) std::fprintf(stderr, "%d documents\n", done.load());
    });
    const char* name = wrong_key ? "watermarked, wrong key" : "clean (plain generations)";
    for (double t : kThresholds) {
      uint64_t flagged = 0, attributed = 0;
      for (const auto& d : results) {
        flagged += d.provider_p_value.value() <= t;
        attributed += d.account.has_value() && d.account_p_value.value() <= t;
      }
      const auto cf = ClopperPearson(flagged, docs), ca = ClopperPearson(attributed, docs);
      std::printf("| %s | %d | %g | %llu | [%.2g, %.2g] | %llu | [%.2g, %.2g] |\n", name, docs, t,
                  static_cast<unsigned long long>(flagged), cf.first, cf.second,
                  static_cast<unsigned long long>(attributed), ca.first, ca.second);
      (*out)["null"].push_back({{"text", name},
                                {"documents", docs},
                                {"threshold", t},
                                {"flagged", flagged},
                                {"flagged_ci", {cf.first, cf.second}},
                                {"attributed", attributed},
                                {"attributed_ci", {ca.first, ca.second}}});
    }
    std::fflush(stdout);
  }
  return 0;
}

int Throughput(const Flags& f, const Setup& s, nlohmann::json* out) {
  const Key master = KeyFrom(7);
  auto wm =
      *tmk::watermark::Watermarker::Create(*tmk::watermark::DeriveEpochKey(master, 0), s.config);
  std::filesystem::create_directories(f.out_dir);
  const std::string path = f.out_dir + "/dataset.jsonl";
  // The dataset is written once and reused by later runs with the same --docs.
  int existing = 0;
  {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) ++existing;
  }
  if (existing != f.docs) {
    std::vector<std::string> lines(f.docs);
    std::fprintf(stderr, "writing %d documents of %d tokens to %s...\n", f.docs, f.tokens,
                 path.c_str());
    ParallelFor(f.docs, f.threads, [&](int i) {
      const auto d = MakeDocument(s, i, 9000, f.tokens, wm.get(),
                                  Hash(static_cast<uint64_t>(i), 91) % f.accounts);
      lines[i] = nlohmann::json{{"id", d.id},
                                {"messages",
                                 {{{"role", "user"}, {"content", d.segments[0].context}},
                                  {{"role", "assistant"}, {"content", d.segments[0].text}}}}}
                     .dump();
    });
    std::ofstream o(path);
    for (const std::string& l : lines) o << l << "\n";
  }
  auto v = *tmk::detect::Verifier::Create(master, s.config, {0});
  std::printf(
      "| accounts N | threads | documents | file MB/s | scored text MB/s | tokens/s | "
      "attributed |\n|---|---|---|---|---|---|---|\n");
  for (uint64_t n : {uint64_t{1}, f.accounts}) {
    tmk::detect::ScanOptions opt;
    opt.account_limit = n;
    opt.threads = f.threads;
    opt.max_candidates = f.max_candidates;
    tmk::detect::Scanner scanner(*v, *s.data.tok, opt);
    auto reader = *tmk::dataset::DocumentReader::Open({path});
    const auto start = std::chrono::steady_clock::now();
    auto r = scanner.Scan(*reader);
    auto sum = scanner.Summarize(*r);
    const double sec = tmk::study::SecondsSince(start);
    const double file_mb = static_cast<double>(reader->total_bytes()) / 1e6;
    std::printf("| %llu | %d | %zu | %.2f | %.2f | %.0f | %llu |\n",
                static_cast<unsigned long long>(n), f.threads, r->documents.size(), file_mb / sec,
                static_cast<double>(r->bytes) / 1e6 / sec, static_cast<double>(r->tokens) / sec,
                static_cast<unsigned long long>(sum->documents_attributed));
    std::fflush(stdout);
    (*out)["throughput"].push_back({{"accounts", n},
                                    {"threads", f.threads},
                                    {"documents", r->documents.size()},
                                    {"seconds", sec},
                                    {"file_bytes", reader->total_bytes()},
                                    {"text_bytes", r->bytes},
                                    {"tokens", r->tokens},
                                    {"attributed", sum->documents_attributed}});
  }
  return 0;
}

// (byte offset, id) of each token of `ids`: a generated token survives re-tokenisation if the
// canonical tokenisation has the same id at the same offset.
absl::flat_hash_set<std::pair<size_t, int32_t>> TokenStarts(const tmk::tokenizer::Tokenizer& tok,
                                                            const std::vector<int32_t>& ids) {
  absl::flat_hash_set<std::pair<size_t, int32_t>> set;
  size_t off = 0;
  for (int32_t id : ids) {
    set.insert({off, id});
    off += tok.TokenBytes(id)->size();
  }
  return set;
}

// One generated document against the canonical tokenisation of its text.
struct Retokenised {
  double log10p_ids = 0, log10p_text = 0;  // the provider test on each
  double changed = 0;                      // fraction of generated tokens not kept
  bool differs = false;                    // whether the ids differ at all
};

Retokenised RetokeniseDocument(const Flags& f, const Setup& s,
                               const tmk::watermark::Watermarker& wm,
                               const tmk::watermark::Detector& det, int i) {
  const tmk::tokenizer::Tokenizer& tok = *s.data.tok;
  const tmk::reference::ReferenceGenerator gen(s.data.model.get(), &tok);
  tmk::reference::GenerateOptions o;
  o.max_tokens = f.tokens;
  o.seed = Hash(static_cast<uint64_t>(i), 401);
  const auto acct = *wm.ForAccount(Hash(static_cast<uint64_t>(i), 402) % f.accounts);
  auto g =
      *gen.GenerateIds(s.data.corpus.Prompt(Hash(static_cast<uint64_t>(i), 403), 8), &wm, &acct, o);
  const std::string text = *tok.Decode(g.ids);
  std::vector<int32_t> re = tmk::tokenizer::IsValidUtf8(text)
                                ? *tok.Encode(text)
                                : *tok.Encode(tmk::tokenizer::ReplaceInvalidUtf8(text));
  const auto a = TokenStarts(tok, g.ids), b = TokenStarts(tok, re);
  size_t kept = 0;
  for (const auto& e : a) kept += b.contains(e);
  auto log10p = [&](const std::vector<int32_t>& body) {
    std::vector<int32_t> all = g.prompt_ids;
    all.insert(all.end(), body.begin(), body.end());
    tmk::watermark::TextStatistics st;
    (void)det.Score(all, g.prompt_ids.size(), &st);
    return det.TestProvider(st).value().p_value.log10();
  };
  Retokenised r;
  r.changed = 1.0 - static_cast<double>(kept) / static_cast<double>(std::max<size_t>(1, a.size()));
  r.differs = re != g.ids;
  r.log10p_ids = log10p(g.ids);
  r.log10p_text = log10p(re);
  return r;
}

// Signal lost when the generated ids are not the canonical tokenisation of their text: the
// verifier only sees text and re-tokenises it, so it scores the canonical ids.
int Retokenise(const Flags& f, const Setup& s, nlohmann::json* out) {
  std::printf(
      "| scheme | documents | re-tokenised differently | generated tokens changed | "
      "median log10 p, generated ids | re-tokenised text | median ratio |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const char* spec : {"scheme=kgw", "scheme=gumbel", "scheme=synthid"}) {
    const Config config = *tmk::watermark::ParseConfig(spec, s.config);
    const Key epoch = KeyFrom(70);
    auto wm = *tmk::watermark::Watermarker::Create(epoch, config);
    auto det = *tmk::watermark::Detector::Create(epoch, config);
    std::vector<double> lp_ids(f.docs), lp_text(f.docs), changed(f.docs);
    std::vector<int> differs(f.docs);
    ParallelFor(f.docs, f.threads, [&](int i) {
      const Retokenised r = RetokeniseDocument(f, s, *wm, *det, i);
      lp_ids[i] = r.log10p_ids;
      lp_text[i] = r.log10p_text;
      changed[i] = r.changed;
      differs[i] = r.differs;
    });
    std::vector<double> ratio(f.docs);
    for (int i = 0; i < f.docs; ++i) ratio[i] = lp_ids[i] < 0 ? lp_text[i] / lp_ids[i] : 1.0;
    double diff = 0, ch = 0;
    for (int i = 0; i < f.docs; ++i) {
      diff += differs[i];
      ch += changed[i];
    }
    const double med_ids = tmk::study::Quantile(lp_ids, 0.5);
    const double med_text = tmk::study::Quantile(lp_text, 0.5);
    const double med_ratio = tmk::study::Quantile(ratio, 0.5);
    std::printf("| %s | %d | %.1f%% | %.2f%% | %.1f | %.1f | %.3f |\n", spec, f.docs,
                100 * diff / f.docs, 100 * ch / f.docs, med_ids, med_text, med_ratio);
    std::fflush(stdout);
    (*out)["retokenise"].push_back({{"scheme", spec},
                                    {"documents", f.docs},
                                    {"tokens", f.tokens},
                                    {"documents_differing", diff},
                                    {"tokens_changed_fraction", ch / f.docs},
                                    {"median_log10p_ids", med_ids},
                                    {"median_log10p_text", med_text},
                                    {"median_ratio", med_ratio}});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  flags.Add("--study", &f.study)
      .Add("--data-dir", &f.data_dir)
      .Add("--out-dir", &f.out_dir)
      .Add("--out", &f.out)
      .Add("--docs", &f.docs)
      .Add("--clean-docs", &f.clean_docs)
      .Add("--tokens", &f.tokens)
      .Add("--threads", &f.threads)
      .Add("--accounts", &f.accounts)
      .Add("--max-candidates", &f.max_candidates);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  auto data = tmk::study::LoadStudyData(f.data_dir);
  if (!data.ok()) return std::cerr << data.status() << "\n", 1;
  Setup s{*std::move(data), Config{}};
  s.config.vocab_size = s.data.tok->vocab_size();
  nlohmann::json out = {{"study", f.study}, {"parameters", s.config.Describe()}};
  int rc = 2;
  if (f.study == "attribution") {
    rc = Attribution(f, s, &out);
  } else if (f.study == "null") {
    rc = Null(f, s, &out);
  } else if (f.study == "throughput") {
    rc = Throughput(f, s, &out);
  } else if (f.study == "retokenise") {
    rc = Retokenise(f, s, &out);
  } else {
    std::cerr << "unknown --study " << f.study
              << " (attribution, null, throughput or retokenise)\n";
  }
  if (rc == 0 && !f.out.empty()) std::ofstream(f.out) << out.dump(2) << "\n";
  return rc;
}
