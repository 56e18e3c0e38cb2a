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
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "study_common.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/refmodel/sampling.h"
#include "tracemark/stats/tails.h"
#include "tracemark/stats/uniformity.h"
#include "tracemark/tokenizer/tiktoken.h"
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
using tmk::study::RandomisedBinomialP;

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

// Tokens (prefix length) at which a p-value from `pvalue(prefix_len)` first drops below 1e-6,
// checked every `step` tokens up to 200, then every 5 * step; -1 if never.
template <typename F>
int TokensNeeded(int total, int step, F pvalue_log10) {
  for (int n = step; n <= total; n += (n < 200 ? step : 5 * step)) {
    if (pvalue_log10(n) < -6.0) return n;
  }
  return -1;
}

int Run(const Flags& f) {
  auto data = tmk::study::LoadStudyData(f.data_dir);
  if (!data.ok()) return std::cerr << data.status() << "\n", 1;
  const auto& tok = data->tok;
  const auto& model = data->model;
  const tmk::study::Corpus& corpus = data->corpus;
  const tmk::reference::ReferenceGenerator gen(model.get(), tok.get());
  Config base;
  base.vocab_size = tok->vocab_size();
  nlohmann::json out;
  out["study"] = f.study;
  out["model"] = {{"order", model->order()}, {"vocab", model->vocab_size()}};
  out["tokens_per_text"] = f.tokens;
  tmk::reference::GenerateOptions opt;
  opt.max_tokens = f.tokens;  // top_k 64, temperature 1, top_p 1 (the CLI's defaults)

  if (f.study == "power") {
    out["generations"] = f.generations;
    // Plain generations for the perplexity baseline.
    std::vector<double> ppl_plain(f.generations);
    // Generation i of the study: the same seed and prompt with or without a watermark.
    auto generate = [&](int i, const Watermarker* w, const tmk::watermark::AccountKeys* acct) {
      tmk::reference::GenerateOptions o = opt;
      o.seed = Hash(i, 1);
      return *gen.GenerateIds(corpus.Prompt(Hash(i, 2), 8), w, acct, o);
    };
    ParallelFor(f.generations, f.threads, [&](int i) {
      const tmk::reference::Generation g = generate(i, nullptr, nullptr);
      ppl_plain[i] = model->Perplexity(g.AllIds(), g.prompt_ids.size());
    });
    std::printf("| scheme | layer | median tokens to p<1e-6 | p90 | reached within %d |\n",
                f.tokens);
    std::printf("|---|---|---|---|---|\n");
    std::printf("plain perplexity (median over %d): %.2f\n", f.generations,
                Quantile(ppl_plain, 0.5));
    out["perplexity_plain_median"] = Quantile(ppl_plain, 0.5);
    for (const SchemeCase& sc : kSchemes) {
      const Config config = *tmk::watermark::ParseConfig(sc.spec, base);
      const Key epoch = KeyFrom(1);
      auto wm = *Watermarker::Create(epoch, config);
      auto det = *Detector::Create(epoch, config);
      std::vector<int> need_provider(f.generations), need_account(f.generations),
          need_attr(f.generations);
      std::vector<double> ppl(f.generations);
      ParallelFor(f.generations, f.threads, [&](int i) {
        const uint64_t account = Hash(i, 3) % f.accounts;
        const auto acct = *wm->ForAccount(account);
        const tmk::reference::Generation g = generate(i, wm.get(), &acct);
        const std::vector<int32_t> all = g.AllIds();
        const size_t from = g.prompt_ids.size();
        ppl[i] = model->Perplexity(all, from);
        auto prefix_stats = [&](int n) {
          tmk::watermark::TextStatistics s;
          (void)det->Score(absl::MakeConstSpan(all.data(), from + n), from, &s);
          return s;
        };
        need_provider[i] = TokensNeeded(f.tokens, 5, [&](int n) {
          return det->TestProvider(prefix_stats(n)).value().p_value.log10();
        });
        need_account[i] = TokensNeeded(f.tokens, 5, [&](int n) {
          return det->TestAccount(prefix_stats(n), acct).value().p_value.log10();
        });
        tmk::watermark::PayloadOptions popt;
        popt.account_limit = f.accounts;
        need_attr[i] = TokensNeeded(f.tokens, 10, [&](int n) {
          const auto s = prefix_stats(n);
          const auto pay = det->DecodePayload(s, popt).value();
          double best = 0;
          for (uint64_t c : pay.candidates) {
            const auto r = det->TestAccount(s, *det->ForAccount(c)).value();
            const double l = tmk::stats::Bonferroni(r.p_value, pay.candidates.size()).log10();
            if (c == account)
              best = std::min(best, l);
            else if (l < -6.0)
              return 0.0;  // a wrong attribution never counts as success
          }
          return best;
        });
      });
      nlohmann::json js;
      auto row = [&](const char* layer, const std::vector<int>& need) {
        std::vector<double> reached;
        for (int n : need)
          if (n > 0) reached.push_back(n);
        const double frac = static_cast<double>(reached.size()) / static_cast<double>(need.size());
        // Unreached generations count as "more than f.tokens" in the quantiles.
        std::vector<double> all;
        for (int n : need) all.push_back(n > 0 ? n : 1e9);
        const double med = Quantile(all, 0.5), p90 = Quantile(all, 0.9);
        auto fmt = [&](double v) {
          return v > 1e8 ? absl::StrFormat("> %d", f.tokens) : absl::StrFormat("%.0f", v);
        };
        std::printf("| %s | %s | %s | %s | %.1f%% |\n", sc.name.c_str(), layer, fmt(med).c_str(),
                    fmt(p90).c_str(), 100 * frac);
        js[layer] = {{"median", med > 1e8 ? nlohmann::json(nullptr) : nlohmann::json(med)},
                     {"p90", p90 > 1e8 ? nlohmann::json(nullptr) : nlohmann::json(p90)},
                     {"reached_fraction", frac}};
      };
      row("provider", need_provider);
      row("account (true account's fingerprint test)", need_account);
      row("attribution among accounts (decode + confirm)", need_attr);
      // The same generations with the provider layer alone (account_share = 0): separates the
      // provider scheme's own cost in perplexity from the account layer's.
      const Config provider_only = *tmk::watermark::ParseConfig("account_share=0", config);
      auto wm_provider = *Watermarker::Create(epoch, provider_only);
      std::vector<double> ppl_provider(f.generations);
      ParallelFor(f.generations, f.threads, [&](int i) {
        const auto acct = *wm_provider->ForAccount(Hash(i, 3) % f.accounts);
        const tmk::reference::Generation g = generate(i, wm_provider.get(), &acct);
        ppl_provider[i] = model->Perplexity(g.AllIds(), g.prompt_ids.size());
      });
      js["perplexity_median"] = Quantile(ppl, 0.5);
      js["perplexity_provider_only_median"] = Quantile(ppl_provider, 0.5);
      std::printf("%s perplexity (median): %.2f; provider layer alone: %.2f\n", sc.name.c_str(),
                  Quantile(ppl, 0.5), Quantile(ppl_provider, 0.5));
      out["schemes"][sc.name] = js;
    }
  } else if (f.study == "null") {
    out["texts"] = f.texts;
    // Clean text: plain generations of the reference model.
    std::vector<std::vector<int32_t>> plain(f.texts);
    std::vector<size_t> plain_from(f.texts);
    std::fprintf(stderr, "generating %d plain texts...\n", f.texts);
    ParallelFor(f.texts, f.threads, [&](int i) {
      tmk::reference::GenerateOptions o = opt;
      o.seed = Hash(i, 11);
      auto g = gen.GenerateIds(corpus.Prompt(Hash(i, 12), 8), nullptr, nullptr, o);
      plain[i] = g->AllIds();
      plain_from[i] = g->prompt_ids.size();
    });
    for (const SchemeCase& sc : kSchemes) {
      const Config config = *tmk::watermark::ParseConfig(sc.spec, base);
      const bool discrete = config.scheme != tmk::watermark::Scheme::kGumbel;
      std::vector<double> clean_provider(f.texts), clean_account(f.texts),
          wrong_key_provider(f.texts), wrong_key_account(f.texts), wrong_account(f.texts);
      std::fprintf(stderr, "%s: generating %d watermarked texts...\n", sc.name.c_str(), f.texts);
      const Key right_epoch = KeyFrom(1000);
      auto wm = *Watermarker::Create(right_epoch, config);
      auto det = *Detector::Create(right_epoch, config);
      // Control accounts (ids outside the range of tested accounts): the empirical null of the
      // fingerprint score, next to the Chernoff bound.
      constexpr int kControls = 1000;
      std::vector<tmk::watermark::AccountKeys> controls;
      for (int k = 0; k < kControls; ++k) controls.push_back(*det->ForAccount(1'000'000 + k));
      std::vector<double> clean_account_empirical(f.texts), wrong_account_empirical(f.texts);
      // Rank p-value of `tested` among the controls' scores on `s`, ties broken at random.
      auto empirical_p = [&](const tmk::watermark::TextStatistics& s,
                             const tmk::watermark::AccountKeys& tested, double u) {
        const double score = det->TestAccount(s, tested).value().score;
        int greater = 0, equal = 0;
        const std::vector<tmk::watermark::AccountResult> results =
            det->TestAccounts(s, controls).value();
        for (const auto& r : results) {
          greater += r.score > score;
          equal += r.score == score;
        }
        return (greater + u * (equal + 1)) / (kControls + 1);
      };
      ParallelFor(f.texts, f.threads, [&](int i) {
        // A fresh random key per text for the clean and wrong-key tests.
        const Key other = KeyFrom(Hash(i, 13));
        auto other_det = *Detector::Create(other, config);
        const double u = tmk::watermark::UnitOpen(Hash(i, 14));
        auto provider_p = [&](const Detector& d, const tmk::watermark::TextStatistics& s) {
          const auto r = d.TestProvider(s).value();
          if (!discrete) return r.p_value.value();
          const uint64_t n = config.scheme == tmk::watermark::Scheme::kKgw
                                 ? r.tuples
                                 : r.tuples * static_cast<uint64_t>(config.synthid.layers);
          const double g = config.scheme == tmk::watermark::Scheme::kKgw ? config.kgw.gamma : 0.5;
          return RandomisedBinomialP(static_cast<uint64_t>(r.score), n, g, u);
        };
        tmk::watermark::TextStatistics s_clean, s_clean_right;
        (void)other_det->Score(plain[i], plain_from[i], &s_clean);
        (void)det->Score(plain[i], plain_from[i], &s_clean_right);
        clean_account_empirical[i] =
            empirical_p(s_clean_right, *det->ForAccount(Hash(i, 20) % f.accounts), u);
        clean_provider[i] = provider_p(*other_det, s_clean);
        clean_account[i] =
            other_det->TestAccount(s_clean, *other_det->ForAccount(Hash(i, 15) % f.accounts))
                .value()
                .p_value.value();
        // Watermarked text for one account, tested under a wrong key and for a wrong account.
        const uint64_t account = Hash(i, 16) % f.accounts;
        auto acct = *wm->ForAccount(account);
        tmk::reference::GenerateOptions o = opt;
        o.seed = Hash(i, 17);
        auto g = gen.GenerateIds(corpus.Prompt(Hash(i, 18), 8), wm.get(), &acct, o);
        const std::vector<int32_t> all = g->AllIds();
        tmk::watermark::TextStatistics s_wrong, s_right;
        (void)other_det->Score(all, g->prompt_ids.size(), &s_wrong);
        wrong_key_provider[i] = provider_p(*other_det, s_wrong);
        wrong_key_account[i] = other_det->TestAccount(s_wrong, *other_det->ForAccount(account))
                                   .value()
                                   .p_value.value();
        (void)det->Score(all, g->prompt_ids.size(), &s_right);
        const tmk::watermark::AccountKeys innocent =
            *det->ForAccount((account + 1 + Hash(i, 19) % (f.accounts - 1)) % f.accounts);
        wrong_account[i] = det->TestAccount(s_right, innocent).value().p_value.value();
        wrong_account_empirical[i] = empirical_p(s_right, innocent, u);
      });
      nlohmann::json js;
      js["clean_text_account_empirical"] = KsJson(clean_account_empirical);
      js["wrong_account_empirical"] = KsJson(wrong_account_empirical);
      js["clean_text_provider"] = KsJson(clean_provider);
      js["clean_text_account"] = KsJson(clean_account);
      js["wrong_key_provider"] = KsJson(wrong_key_provider);
      js["wrong_key_account"] = KsJson(wrong_key_account);
      js["wrong_account"] = KsJson(wrong_account);
      out["schemes"][sc.name] = js;
      std::printf("\n%s (%d texts of %d tokens; provider p-values randomised where discrete)\n",
                  sc.name.c_str(), f.texts, f.tokens);
      std::printf(
          "| null | KS D | KS p | D+ | P(p<=0.01) | P(p<=0.001) | min p "
          "|\n|---|---|---|---|---|---|---|\n");
      for (const char* k : {"clean_text_provider", "clean_text_account",
                            "clean_text_account_empirical", "wrong_key_provider",
                            "wrong_key_account", "wrong_account", "wrong_account_empirical"}) {
        const auto& r = js[k];
        std::printf("| %s | %.4f | %.3g | %.4f | %.4f | %.4f | %.2g |\n", k,
                    r["ks_statistic"].get<double>(), r["ks_p_value"].get<double>(),
                    r["d_plus"].get<double>(), r["frac_le_0.01"].get<double>(),
                    r["frac_le_0.001"].get<double>(), r["min"].get<double>());
      }
      std::fflush(stdout);
    }
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
  if (!flags.Parse(argc, argv)) return 2;
  return Run(f);
}
