// Detection study with the reference model (docs/detection.md):
//  power:  tokens needed for p < 1e-6 (median, 90th percentile) per scheme, for the provider layer,
//          the account layer (the true account's fingerprint test) and the decoded-and-confirmed
//          attribution among 25,000 accounts; and the perplexity of watermarked vs plain text;
//  null:   p-values on text independent of the key under test - plain generations (clean text),
//          watermarked text under a wrong key, and watermarked text tested for a wrong account -
//          with a Kolmogorov-Smirnov test of uniformity over >= 10,000 texts each.
//
//   build/studies/detection_study --study power --generations 200 --tokens 1500 --out power.json
//   build/studies/detection_study --study null --texts 10000 --tokens 150 --out null.json
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "study_common.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/stats/tails.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/prf.h"
#include "tracemark/watermark/watermarker.h"

namespace tmk = tracemark;
using tmk::watermark::Config;
using tmk::watermark::Detector;
using tmk::watermark::Key;
using tmk::watermark::Watermarker;

namespace {

using tmk::study::Hash;
using tmk::study::KeyFrom;
using tmk::study::KsJson;
using tmk::study::ParallelFor;
using tmk::study::Quantile;

struct Flags {
  std::string study = "power";
  std::string data_dir = TRACEMARK_DATA_DIR;
  int generations = 200;
  int texts = 10000;
  int tokens = 400;
  int threads = 2;
  uint64_t accounts = 25000;
  std::string out;
};

struct SchemeCase {
  std::string name, spec;
};
const std::vector<SchemeCase> kSchemes = {{"kgw-lefthash", "scheme=kgw"},
                                          {"kgw-selfhash", "scheme=kgw,hash=selfhash"},
                                          {"gumbel", "scheme=gumbel"},
                                          {"synthid", "scheme=synthid"}};

// The reference model, its corpus, the base configuration and the generation options every text
// of the study is sampled with.
struct Setup {
  tmk::study::StudyData data;
  Config base;
  tmk::reference::GenerateOptions opt;

  tmk::reference::ReferenceGenerator Generator() const {
    return tmk::reference::ReferenceGenerator(data.model.get(), data.tok.get());
  }
};

// Tokens (prefix length) at which a p-value from `pvalue(prefix_len)` first drops below 1e-6,
// checked every `step` tokens up to 200, then every 5 * step; -1 if never.
template <typename F>
int TokensNeeded(int total, int step, F pvalue_log10) {
  for (int n = step; n <= total; n += (n < 200 ? step : 5 * step)) {
    if (pvalue_log10(n) < -6.0) return n;
  }
  return -1;
}

// ---- power ----

// Generation i of the power study: the same seed and prompt with or without a watermark.
tmk::reference::Generation PowerGeneration(const Setup& s, int i, const Watermarker* w,
                                           const tmk::watermark::AccountKeys* acct) {
  tmk::reference::GenerateOptions o = s.opt;
  o.seed = Hash(i, 1);
  return *s.Generator().GenerateIds(s.data.corpus.Prompt(Hash(i, 2), 8), w, acct, o);
}

// The perplexity of each generation of the power study under `w` (null: plain), generation i for
// account Hash(i, 3) % accounts.
std::vector<double> Perplexities(const Flags& f, const Setup& s, const Watermarker* w) {
  std::vector<double> ppl(f.generations);
  ParallelFor(f.generations, f.threads, [&](int i) {
    std::optional<tmk::watermark::AccountKeys> acct;
    if (w != nullptr) acct = *w->ForAccount(Hash(i, 3) % f.accounts);
    const tmk::reference::Generation g = PowerGeneration(s, i, w, acct ? &*acct : nullptr);
    ppl[i] = s.data.model->Perplexity(g.AllIds(), g.prompt_ids.size());
  });
  return ppl;
}

// Tokens each test of one watermarked generation needs (-1: not within --tokens).
struct TokensToDetect {
  int provider = -1, account = -1, attribution = -1;
};

// The decoded-and-confirmed attribution's log10 p for the true account on `s`; 0 when a wrong
// account is confirmed at 1e-6 (a wrong attribution never counts as success).
double AttributionLog10(const Detector& det, const tmk::watermark::TextStatistics& s,
                        uint64_t account, uint64_t accounts) {
  tmk::watermark::PayloadOptions popt;
  popt.account_limit = accounts;
  const auto pay = det.DecodePayload(s, popt).value();
  double best = 0;
  for (uint64_t c : pay.candidates) {
    const auto r = det.TestAccount(s, *det.ForAccount(c)).value();
    const double l = tmk::stats::Bonferroni(r.p_value, pay.candidates.size()).log10();
    if (c == account)
      best = std::min(best, l);
    else if (l < -6.0)
      return 0.0;
  }
  return best;
}

TokensToDetect MeasureTokens(const Flags& f, const Detector& det, const std::vector<int32_t>& all,
                             size_t from, const tmk::watermark::AccountKeys& acct,
                             uint64_t account) {
  auto prefix_stats = [&](int n) {
    tmk::watermark::TextStatistics s;
    (void)det.Score(absl::MakeConstSpan(all.data(), from + n), from, &s);
    return s;
  };
  TokensToDetect t;
  t.provider = TokensNeeded(f.tokens, 5, [&](int n) {
    return det.TestProvider(prefix_stats(n)).value().p_value.log10();
  });
  t.account = TokensNeeded(f.tokens, 5, [&](int n) {
    return det.TestAccount(prefix_stats(n), acct).value().p_value.log10();
  });
  t.attribution = TokensNeeded(f.tokens, 10, [&](int n) {
    return AttributionLog10(det, prefix_stats(n), account, f.accounts);
  });
  return t;
}

// One table row and its JSON: the median and 90th percentile of the tokens needed (unreached
// generations count as "more than --tokens") and the fraction reached.
void PrintPowerRow(const Flags& f, const std::string& scheme, const char* layer,
                   const std::vector<int>& need, nlohmann::json* js) {
  std::vector<double> reached;
  for (int n : need)
    if (n > 0) reached.push_back(n);
  const double frac = static_cast<double>(reached.size()) / static_cast<double>(need.size());
  std::vector<double> all;
  for (int n : need) all.push_back(n > 0 ? n : 1e9);
  const double med = Quantile(all, 0.5), p90 = Quantile(all, 0.9);
  auto fmt = [&](double v) {
    return v > 1e8 ? absl::StrFormat("> %d", f.tokens) : absl::StrFormat("%.0f", v);
  };
  std::printf("| %s | %s | %s | %s | %.1f%% |\n", scheme.c_str(), layer, fmt(med).c_str(),
              fmt(p90).c_str(), 100 * frac);
  (*js)[layer] = {{"median", med > 1e8 ? nlohmann::json(nullptr) : nlohmann::json(med)},
                  {"p90", p90 > 1e8 ? nlohmann::json(nullptr) : nlohmann::json(p90)},
                  {"reached_fraction", frac}};
}

// One scheme: tokens needed by each test, and the perplexity with both layers and with the
// provider layer alone (account_share = 0: the provider scheme's own cost, apart from the
// account layer's).
nlohmann::json PowerOfScheme(const Flags& f, const Setup& s, const SchemeCase& sc) {
  const Config config = *tmk::watermark::ParseConfig(sc.spec, s.base);
  const Key epoch = KeyFrom(1);
  auto wm = *Watermarker::Create(epoch, config);
  auto det = *Detector::Create(epoch, config);
  std::vector<int> need_provider(f.generations), need_account(f.generations),
      need_attr(f.generations);
  std::vector<double> ppl(f.generations);
  ParallelFor(f.generations, f.threads, [&](int i) {
    const uint64_t account = Hash(i, 3) % f.accounts;
    const auto acct = *wm->ForAccount(account);
    const tmk::reference::Generation g = PowerGeneration(s, i, wm.get(), &acct);
    const std::vector<int32_t> all = g.AllIds();
    const size_t from = g.prompt_ids.size();
    ppl[i] = s.data.model->Perplexity(all, from);
    const TokensToDetect t = MeasureTokens(f, *det, all, from, acct, account);
    need_provider[i] = t.provider;
    need_account[i] = t.account;
    need_attr[i] = t.attribution;
  });
  nlohmann::json js;
  PrintPowerRow(f, sc.name, "provider", need_provider, &js);
  PrintPowerRow(f, sc.name, "account (true account's fingerprint test)", need_account, &js);
  PrintPowerRow(f, sc.name, "attribution among accounts (decode + confirm)", need_attr, &js);
  const Config provider_only = *tmk::watermark::ParseConfig("account_share=0", config);
  auto wm_provider = *Watermarker::Create(epoch, provider_only);
  const std::vector<double> ppl_provider = Perplexities(f, s, wm_provider.get());
  js["perplexity_median"] = Quantile(ppl, 0.5);
  js["perplexity_provider_only_median"] = Quantile(ppl_provider, 0.5);
  std::printf("%s perplexity (median): %.2f; provider layer alone: %.2f\n", sc.name.c_str(),
              Quantile(ppl, 0.5), Quantile(ppl_provider, 0.5));
  return js;
}

void Power(const Flags& f, const Setup& s, nlohmann::json* out) {
  (*out)["generations"] = f.generations;
  const std::vector<double> ppl_plain = Perplexities(f, s, nullptr);
  std::printf("| scheme | layer | median tokens to p<1e-6 | p90 | reached within %d |\n", f.tokens);
  std::printf("|---|---|---|---|---|\n");
  std::printf("plain perplexity (median over %d): %.2f\n", f.generations, Quantile(ppl_plain, 0.5));
  (*out)["perplexity_plain_median"] = Quantile(ppl_plain, 0.5);
  for (const SchemeCase& sc : kSchemes) (*out)["schemes"][sc.name] = PowerOfScheme(f, s, sc);
}

// ---- null ----

// Clean text: plain generations of the reference model (ids, and where each prompt ends).
struct PlainTexts {
  std::vector<std::vector<int32_t>> ids;
  std::vector<size_t> from;
};

PlainTexts GeneratePlain(const Flags& f, const Setup& s) {
  PlainTexts plain{std::vector<std::vector<int32_t>>(f.texts), std::vector<size_t>(f.texts)};
  std::fprintf(stderr, "generating %d plain texts...\n", f.texts);
  const tmk::reference::ReferenceGenerator gen = s.Generator();
  ParallelFor(f.texts, f.threads, [&](int i) {
    tmk::reference::GenerateOptions o = s.opt;
    o.seed = Hash(i, 11);
    auto g = gen.GenerateIds(s.data.corpus.Prompt(Hash(i, 12), 8), nullptr, nullptr, o);
    plain.ids[i] = g->AllIds();
    plain.from[i] = g->prompt_ids.size();
  });
  return plain;
}

// The p-values of one scheme's null study, one per text for each null (names as in the JSON).
struct NullPValues {
  explicit NullPValues(int n)
      : clean_provider(n),
        clean_account(n),
        clean_account_empirical(n),
        wrong_key_provider(n),
        wrong_key_account(n),
        wrong_account(n),
        wrong_account_empirical(n) {}
  std::vector<double> clean_provider, clean_account, clean_account_empirical, wrong_key_provider,
      wrong_key_account, wrong_account, wrong_account_empirical;
};

// The key under test, its watermarker, and control accounts (ids outside the range of tested
// accounts): the empirical null of the fingerprint score, next to the Chernoff bound.
class NullScheme {
 public:
  static constexpr int kControls = 1000;

  explicit NullScheme(const Config& config) : config_(config) {
    const Key right_epoch = KeyFrom(1000);
    wm_ = *Watermarker::Create(right_epoch, config);
    det_ = *Detector::Create(right_epoch, config);
    for (int k = 0; k < kControls; ++k) controls_.push_back(*det_->ForAccount(1'000'000 + k));
  }

  // Every null of text i (one plain text, one watermarked for a random account).
  void MeasureText(const Flags& f, const Setup& s, const PlainTexts& plain, int i,
                   NullPValues* p) const;

 private:
  // Rank p-value of `tested` among the controls' scores on `st`, ties broken at random.
  double EmpiricalP(const tmk::watermark::TextStatistics& st,
                    const tmk::watermark::AccountKeys& tested, double u) const {
    const double score = det_->TestAccount(st, tested).value().score;
    int greater = 0, equal = 0;
    const std::vector<tmk::watermark::AccountResult> results =
        det_->TestAccounts(st, controls_).value();
    for (const auto& r : results) {
      greater += r.score > score;
      equal += r.score == score;
    }
    return (greater + u * (equal + 1)) / (kControls + 1);
  }

  const Config config_;
  std::unique_ptr<Watermarker> wm_;
  std::unique_ptr<Detector> det_;
  std::vector<tmk::watermark::AccountKeys> controls_;
};

void NullScheme::MeasureText(const Flags& f, const Setup& s, const PlainTexts& plain, int i,
                             NullPValues* p) const {
  // A fresh random key per text for the clean and wrong-key tests.
  auto other_det = *Detector::Create(KeyFrom(Hash(i, 13)), config_);
  const double u = tmk::watermark::UnitOpen(Hash(i, 14));
  auto provider_p = [&](const Detector& d, const tmk::watermark::TextStatistics& st) {
    return tmk::study::UniformProviderP(config_, d.TestProvider(st).value(), u);
  };
  tmk::watermark::TextStatistics s_clean, s_clean_right;
  (void)other_det->Score(plain.ids[i], plain.from[i], &s_clean);
  (void)det_->Score(plain.ids[i], plain.from[i], &s_clean_right);
  p->clean_account_empirical[i] =
      EmpiricalP(s_clean_right, *det_->ForAccount(Hash(i, 20) % f.accounts), u);
  p->clean_provider[i] = provider_p(*other_det, s_clean);
  p->clean_account[i] =
      other_det->TestAccount(s_clean, *other_det->ForAccount(Hash(i, 15) % f.accounts))
          .value()
          .p_value.value();
  // Watermarked text for one account, tested under a wrong key and for a wrong account.
  const uint64_t account = Hash(i, 16) % f.accounts;
  auto acct = *wm_->ForAccount(account);
  tmk::reference::GenerateOptions o = s.opt;
  o.seed = Hash(i, 17);
  auto g = s.Generator().GenerateIds(s.data.corpus.Prompt(Hash(i, 18), 8), wm_.get(), &acct, o);
  const std::vector<int32_t> all = g->AllIds();
  tmk::watermark::TextStatistics s_wrong, s_right;
  (void)other_det->Score(all, g->prompt_ids.size(), &s_wrong);
  p->wrong_key_provider[i] = provider_p(*other_det, s_wrong);
  p->wrong_key_account[i] =
      other_det->TestAccount(s_wrong, *other_det->ForAccount(account)).value().p_value.value();
  (void)det_->Score(all, g->prompt_ids.size(), &s_right);
  const tmk::watermark::AccountKeys innocent =
      *det_->ForAccount((account + 1 + Hash(i, 19) % (f.accounts - 1)) % f.accounts);
  p->wrong_account[i] = det_->TestAccount(s_right, innocent).value().p_value.value();
  p->wrong_account_empirical[i] = EmpiricalP(s_right, innocent, u);
}

// The KS summary of each null, printed as one table.
nlohmann::json NullTable(const Flags& f, const std::string& scheme, const NullPValues& p) {
  nlohmann::json js;
  js["clean_text_account_empirical"] = KsJson(p.clean_account_empirical);
  js["wrong_account_empirical"] = KsJson(p.wrong_account_empirical);
  js["clean_text_provider"] = KsJson(p.clean_provider);
  js["clean_text_account"] = KsJson(p.clean_account);
  js["wrong_key_provider"] = KsJson(p.wrong_key_provider);
  js["wrong_key_account"] = KsJson(p.wrong_key_account);
  js["wrong_account"] = KsJson(p.wrong_account);
  std::printf("\n%s (%d texts of %d tokens; provider p-values randomised where discrete)\n",
              scheme.c_str(), f.texts, f.tokens);
  std::printf(
      "| null | KS D | KS p | D+ | P(p<=0.01) | P(p<=0.001) | min p "
      "|\n|---|---|---|---|---|---|---|\n");
  for (const char* k :
       {"clean_text_provider", "clean_text_account", "clean_text_account_empirical",
        "wrong_key_provider", "wrong_key_account", "wrong_account", "wrong_account_empirical"}) {
    const auto& r = js[k];
    std::printf("| %s | %.4f | %.3g | %.4f | %.4f | %.4f | %.2g |\n", k,
                r["ks_statistic"].get<double>(), r["ks_p_value"].get<double>(),
                r["d_plus"].get<double>(), r["frac_le_0.01"].get<double>(),
                r["frac_le_0.001"].get<double>(), r["min"].get<double>());
  }
  std::fflush(stdout);
  return js;
}

void Null(const Flags& f, const Setup& s, nlohmann::json* out) {
  (*out)["texts"] = f.texts;
  const PlainTexts plain = GeneratePlain(f, s);
  for (const SchemeCase& sc : kSchemes) {
    const Config config = *tmk::watermark::ParseConfig(sc.spec, s.base);
    std::fprintf(stderr, "%s: generating %d watermarked texts...\n", sc.name.c_str(), f.texts);
    const NullScheme scheme(config);
    NullPValues p(f.texts);
    ParallelFor(f.texts, f.threads, [&](int i) { scheme.MeasureText(f, s, plain, i, &p); });
    (*out)["schemes"][sc.name] = NullTable(f, sc.name, p);
  }
}

int Run(const Flags& f) {
  auto data = tmk::study::LoadStudyData(f.data_dir);
  if (!data.ok()) return std::cerr << data.status() << "\n", 1;
  Setup s{*std::move(data), Config{}, {}};
  s.base.vocab_size = s.data.tok->vocab_size();
  s.opt.max_tokens = f.tokens;  // top_k 64, temperature 1, top_p 1 (the CLI's defaults)
  nlohmann::json out;
  out["study"] = f.study;
  out["model"] = {{"order", s.data.model->order()}, {"vocab", s.data.model->vocab_size()}};
  out["tokens_per_text"] = f.tokens;
  if (f.study == "power") {
    Power(f, s, &out);
  } else if (f.study == "null") {
    Null(f, s, &out);
  } else {
    std::cerr << "unknown --study " << f.study << " (power or null)\n";
    return 2;
  }
  if (!f.out.empty()) std::ofstream(f.out) << out.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  flags.Add("--study", &f.study)
      .Add("--data-dir", &f.data_dir)
      .Add("--generations", &f.generations)
      .Add("--texts", &f.texts)
      .Add("--tokens", &f.tokens)
      .Add("--threads", &f.threads)
      .Add("--out", &f.out);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  return Run(f);
}
