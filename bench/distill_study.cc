// Distillation study, CPU variant (docs/distillation.md; issue 5, first step): a fraud cluster of
// accounts harvests watermarked answers with canaries, an n-gram student is trained on them mixed
// with clean text, and the student alone is tested.
//
//  1. Teacher: the reference model with the provider layer, the account layer and canaries, 1,000
//     accounts; the fraud cluster is accounts 0 .. C-1 (the keys are independent, so which ids
//     form it does not matter); the others are honest and their outputs never reach the student.
//  2. Harvest: the cluster's answers (corpus prompts), S tokens in all for the largest share;
//     shared equally, or with --skew s account k of the cluster harvests a share proportional to
//     1 / (k + 1)^s.
//  3. Student: an order-4 Kneser-Ney model trained on a budget of B tokens: share x B harvested
//     answer tokens and the rest clean text (State of the Union addresses the harvest never used
//     as prompts), for each watermarked share (100 %, 10 %, 1 %, 0 % control).
//  4. Black-box queries: the student is sampled (plain, no watermark) on Q elicitation-suite
//     prefixes, T tokens each.
//  5. Tests on the student's answers only:
//     - provider layer: unique (context, token) tuples over all answers (prompt positions not
//       scored), exact binomial test; and the same restricted to positions whose context window
//       (the h ids before) occurs in the watermarked training data, as an investigator holding
//       the suspected training data (the harvest) can do (the 0 % control is tested on the
//       windows of the whole harvest);
//     - white-box (the radioactivity "open model" setting): at up to W seen windows, the
//       student's own most likely next token, scored as unique tuples; no sampling at all;
//     - canary cohort: the cluster's summed canary matches over the answers' distinct tuples, and
//       the same test for R random cohorts of honest accounts of the same size (the empirical
//       null: how many would be accused at the cluster's p-value and at 1e-3);
//     - fingerprint: every account's Tardos accusation on the pooled fingerprint tuples, with the
//       Chernoff bound, Bonferroni-corrected over the accounts: cluster members and honest
//       accounts accused at 1e-3.
//
//   build-rel/bench/distill_study --budget 1000000 --queries 500 --tokens 200
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "study_common.h"
#include "tracemark/canary/evidence.h"
#include "tracemark/canary/processor.h"
#include "tracemark/canary/suite.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/watermarker.h"

namespace tmk = tracemark;
using tmk::study::Hash;
using tmk::study::KeyFrom;
using tmk::study::ParallelFor;

namespace {

struct Flags {
  std::string data_dir = TRACEMARK_DATA_DIR;
  std::string out;
  std::string shares = "1,0.1,0.01,0";
  uint64_t accounts = 1000;
  uint64_t cluster = 50;
  uint64_t budget = 1000000;  // student training tokens
  int answer_tokens = 200;    // per harvested answer
  int queries = 500;          // suite prompts sent to the student
  int tokens = 200;           // per student answer
  int cohorts = 1000;         // random honest cohorts for the empirical null
  int white_box = 20000;      // seen windows scored through the student's own distributions
  int null_keys = 0;          // control only: the white-box test under this many other keys
  double skew = 0;            // 0: the cluster shares the harvest equally; s > 0: Zipf(s) shares
  int threads = 2;
};

// The cluster account that harvests answer i: round-robin when skew is 0, else account k with
// probability proportional to 1 / (k + 1)^skew (a keyed draw per answer).
uint64_t AccountOfAnswer(uint64_t i, uint64_t cluster, double skew) {
  if (skew <= 0) return i % cluster;
  double total = 0;
  for (uint64_t k = 0; k < cluster; ++k) total += std::pow(static_cast<double>(k + 1), -skew);
  double u = tmk::watermark::UnitOpen(Hash(i, 4242)) * total;
  for (uint64_t k = 0; k < cluster; ++k) {
    u -= std::pow(static_cast<double>(k + 1), -skew);
    if (u <= 0) return k;
  }
  return cluster - 1;
}

struct Doc {
  std::vector<int32_t> ids;  // prompt + answer
  size_t prompt = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  flags.Add("--data-dir", &f.data_dir)
      .Add("--out", &f.out)
      .Add("--shares", &f.shares)
      .Add("--accounts", &f.accounts)
      .Add("--cluster", &f.cluster)
      .Add("--budget", &f.budget)
      .Add("--answer-tokens", &f.answer_tokens)
      .Add("--queries", &f.queries)
      .Add("--tokens", &f.tokens)
      .Add("--cohorts", &f.cohorts)
      .Add("--white-box", &f.white_box)
      .Add("--null-keys", &f.null_keys)
      .Add("--skew", &f.skew)
      .Add("--threads", &f.threads);
  if (!flags.Parse(argc, argv)) return 2;
  std::vector<double> shares;
  for (size_t pos = 0; pos < f.shares.size();) {
    size_t comma = f.shares.find(',', pos);
    if (comma == std::string::npos) comma = f.shares.size();
    shares.push_back(std::stod(f.shares.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  auto data = tmk::study::LoadStudyData(f.data_dir);
  if (!data.ok()) return std::cerr << data.status() << "\n", 1;
  const auto& tok = *data->tok;
  tmk::watermark::Config config;
  config.vocab_size = tok.vocab_size();
  const tmk::watermark::Key epoch = *tmk::watermark::DeriveEpochKey(KeyFrom(5150), 0);
  auto wm = *tmk::watermark::Watermarker::Create(epoch, config);
  auto det = *tmk::watermark::Detector::Create(epoch, config);
  auto proc = *tmk::canary::CanaryProcessor::Create(&tmk::canary::Lexicon::BuiltIn(), tok);
  const tmk::reference::ReferenceGenerator teacher(data->model.get(), &tok);

  // Keys of every account (watermark and canary).
  std::vector<std::optional<tmk::watermark::AccountKeys>> keys(f.accounts);
  ParallelFor(static_cast<int>(f.accounts), f.threads, [&](int a) {
    keys[static_cast<size_t>(a)] = *wm->ForAccount(static_cast<uint64_t>(a));
  });
  std::vector<tmk::canary::CanaryKey> canary_keys;
  for (const auto& k : keys) canary_keys.push_back(tmk::canary::CanaryKey::FromAccountKeys(*k));

  // 2. Harvest: the cluster's answers, round-robin over its accounts, enough for the largest share.
  const double max_share = *std::max_element(shares.begin(), shares.end());
  const auto harvest_tokens = static_cast<uint64_t>(max_share * static_cast<double>(f.budget));
  const int answers = static_cast<int>((harvest_tokens + f.answer_tokens - 1) / f.answer_tokens);
  std::vector<Doc> harvest(static_cast<size_t>(answers));
  std::atomic<int> done{0};
  ParallelFor(answers, f.threads, [&](int i) {
    const uint64_t account = AccountOfAnswer(static_cast<uint64_t>(i), f.cluster, f.skew);
    const tmk::canary::CanaryKey ck = canary_keys[account];
    tmk::reference::GenerateOptions o;
    o.max_tokens = f.answer_tokens;
    o.seed = Hash(static_cast<uint64_t>(i), 1);
    o.canary = proc.get();
    o.canary_key = &ck;
    auto g = teacher.GenerateIds(data->corpus.Prompt(Hash(static_cast<uint64_t>(i), 2), 16),
                                 wm.get(), &*keys[account], o);
    if (!g.ok()) std::abort();
    harvest[static_cast<size_t>(i)] = {g->AllIds(), g->prompt_ids.size()};
    if (++done % 1000 == 0)
      std::fprintf(stderr, "  harvested %d of %d answers\n", done.load(), answers);
  });
  // Clean text: the corpus cut into 256-token documents.
  std::vector<std::vector<int32_t>> clean;
  for (size_t i = 0; i + 256 <= data->corpus.ids.size(); i += 256) {
    clean.emplace_back(data->corpus.ids.begin() + static_cast<ptrdiff_t>(i),
                       data->corpus.ids.begin() + static_cast<ptrdiff_t>(i + 256));
  }
  auto suite = *tmk::canary::ParseSuite(tmk::canary::BuiltInSuiteText());

  nlohmann::json out = {
      {"accounts", f.accounts},         {"cluster", f.cluster}, {"budget", f.budget},
      {"queries", f.queries},           {"tokens", f.tokens},   {"cohorts", f.cohorts},
      {"parameters", config.Describe()}};
  std::printf(
      "| watermarked share | student training tokens (watermarked) | provider p | provider p, "
      "seen windows | provider p, white-box | canary: cluster p | honest cohorts at <= cluster p / "
      "<= 1e-3 | "
      "fingerprint: cluster accused / honest accused (1e-3, corrected) |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (double share : shares) {
    // 3. The student.
    std::vector<std::vector<int32_t>> docs;
    uint64_t wm_tokens = 0, clean_tokens = 0;
    const auto want_wm = static_cast<uint64_t>(share * static_cast<double>(f.budget));
    const auto h = static_cast<size_t>(config.context_width);
    absl::flat_hash_set<uint64_t> seen;  // context windows of the watermarked training answers
    std::vector<std::vector<int32_t>> windows;  // the first --white-box of them, in order
    auto window_key = [&](const std::vector<int32_t>& ids, size_t i) {
      uint64_t k = 0x9E3779B97F4A7C15ull;
      for (size_t j = i - h; j < i; ++j) k = Hash(k, static_cast<uint64_t>(ids[j]));
      return k;
    };
    auto add_window = [&](const std::vector<int32_t>& ids, size_t i) {
      if (seen.insert(window_key(ids, i)).second &&
          windows.size() < static_cast<size_t>(f.white_box)) {
        windows.emplace_back(ids.begin() + static_cast<ptrdiff_t>(i - h),
                             ids.begin() + static_cast<ptrdiff_t>(i));
      }
    };
    for (const Doc& d : harvest) {
      if (wm_tokens >= want_wm) break;
      docs.push_back(d.ids);
      wm_tokens += d.ids.size() - d.prompt;
      for (size_t i = std::max(d.prompt, h); i < d.ids.size(); ++i) add_window(d.ids, i);
    }
    if (share == 0) {
      // The control: a student that never saw the harvest, tested on the windows of all of it
      // (the null of the seen-window test).
      for (const Doc& d : harvest) {
        for (size_t i = std::max(d.prompt, h); i < d.ids.size(); ++i) add_window(d.ids, i);
      }
    }
    for (size_t i = 0; i < clean.size() && wm_tokens + clean_tokens < f.budget; ++i) {
      docs.push_back(clean[(i * 7919) % clean.size()]);
      clean_tokens += 256;
    }
    auto student = tmk::refmodel::KneserNeyModel::Train(docs, tok.vocab_size(), 4);
    if (!student.ok()) return std::cerr << student.status() << "\n", 1;
    const tmk::reference::ReferenceGenerator gen(&*student, &tok);
    // White-box: at each seen window, the student's most likely next token (a function of the
    // student alone, so green with probability exactly gamma under the null), as unique tuples.
    std::vector<std::vector<int32_t>> argmax_tuples(
        windows.size());  // window + the student's token
    ParallelFor(static_cast<int>(windows.size()), f.threads, [&](int w) {
      thread_local std::vector<float> lp;
      lp.resize(static_cast<size_t>(student->vocab_size()));
      student->LogProbs(windows[static_cast<size_t>(w)], absl::MakeSpan(lp));
      std::vector<int32_t> one = windows[static_cast<size_t>(w)];
      one.push_back(static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin()));
      argmax_tuples[static_cast<size_t>(w)] = std::move(one);
    });
    auto white_box = [&](const tmk::watermark::Detector& d) {
      tmk::watermark::TextStatistics st;
      for (const auto& one : argmax_tuples) {
        if (!d.Score(one, h, &st).ok()) std::abort();
      }
      return *d.TestProvider(*d.Project(st, tmk::watermark::Layer::kProvider));
    };
    const tmk::watermark::ProviderResult provider_wb = white_box(*det);
    if (share == 0 && f.null_keys > 0) {
      // The null of the white-box test: the same clean student and windows under keys that never
      // touched anything; randomised binomial p-values (uniform under the null) and their KS test.
      std::vector<double> ps(static_cast<size_t>(f.null_keys));
      ParallelFor(f.null_keys, f.threads, [&](int k) {
        const tmk::watermark::Key other =
            *tmk::watermark::DeriveEpochKey(KeyFrom(900000 + static_cast<uint64_t>(k)), 0);
        auto d = *tmk::watermark::Detector::Create(other, config);
        const auto r = white_box(*d);
        ps[static_cast<size_t>(k)] = tmk::study::RandomisedBinomialP(
            static_cast<uint64_t>(r.score), r.tuples, config.kgw.gamma,
            tmk::watermark::UnitOpen(Hash(static_cast<uint64_t>(k), 77)));
      });
      const nlohmann::json ks = tmk::study::KsJson(ps);
      std::fprintf(stderr, "white-box null over %d keys: %s\n", f.null_keys, ks.dump().c_str());
      out["white_box_null"] = ks;
    }
    // 4. Black-box queries with the suite's prefixes.
    std::vector<Doc> answers_out(static_cast<size_t>(f.queries));
    std::vector<std::string> texts(answers_out.size()), prefixes(answers_out.size());
    ParallelFor(f.queries, f.threads, [&](int q) {
      const auto& p = suite[static_cast<size_t>(q) % suite.size()];
      tmk::reference::GenerateOptions o;
      o.max_tokens = f.tokens;
      o.seed = Hash(static_cast<uint64_t>(q), 3);
      auto g = gen.Generate(p.prefix, nullptr, nullptr, o);
      if (!g.ok()) std::abort();
      answers_out[static_cast<size_t>(q)] = {g->AllIds(), g->prompt_ids.size()};
      texts[static_cast<size_t>(q)] = g->text;
      prefixes[static_cast<size_t>(q)] = p.prefix;
    });
    // 5. Provider layer over all answers' unique tuples.
    tmk::watermark::TextStatistics stats, seen_stats;
    nlohmann::json by_queries = nlohmann::json::array();
    tmk::canary::CanaryStatistics cstats;
    for (size_t q = 0; q < answers_out.size(); ++q) {
      const std::vector<int32_t>& ids = answers_out[q].ids;
      tmk::watermark::TextStatistics s;
      if (!det->Score(ids, answers_out[q].prompt, &s).ok()) std::abort();
      if (!stats.Merge(s).ok()) std::abort();
      for (size_t i = std::max(answers_out[q].prompt, h); i < ids.size(); ++i) {
        if (!seen.contains(window_key(ids, i))) continue;
        // Score position i alone: its h context ids, then the token.
        const absl::Span<const int32_t> one(ids.data() + i - h, h + 1);
        if (!det->Score(one, h, &seen_stats).ok()) std::abort();
      }
      cstats.Add(
          tmk::canary::ExtractEvents(texts[q], proc->lexicon(), proc->active_forms(), prefixes[q]));
      // p-values against the number of queries: at 250, 500, 1,000, 2,000, ... and the last.
      const size_t n = q + 1;
      if (n == answers_out.size() ||
          (n >= 250 && (n % 250 == 0) && ((n / 250) & (n / 250 - 1)) == 0)) {
        const auto all = *det->TestProvider(*det->Project(stats, tmk::watermark::Layer::kProvider));
        const auto sw =
            *det->TestProvider(*det->Project(seen_stats, tmk::watermark::Layer::kProvider));
        by_queries.push_back({{"queries", n},
                              {"provider_log10_p", all.p_value.log10()},
                              {"provider_seen_windows_log10_p", sw.p_value.log10()},
                              {"seen_windows_tuples", sw.tuples}});
        std::fprintf(stderr, "  share %g, %zu queries: provider p %s, seen windows p %s\n", share,
                     n, all.p_value.ToString().c_str(), sw.p_value.ToString().c_str());
      }
    }
    const auto provider =
        *det->TestProvider(*det->Project(stats, tmk::watermark::Layer::kProvider));
    const auto provider_seen =
        *det->TestProvider(*det->Project(seen_stats, tmk::watermark::Layer::kProvider));
    // Canary cohort test: the cluster, then random honest cohorts of the same size.
    const auto tuples = cstats.Tuples(proc->lexicon());
    const std::vector<tmk::canary::CanaryKey> cluster_keys(
        canary_keys.begin(), canary_keys.begin() + static_cast<ptrdiff_t>(f.cluster));
    const auto cluster_result = tmk::canary::TestCohort(tuples, cluster_keys);
    // Canary attribution of single accounts: the best of all 1,000, corrected over them.
    const auto single = tmk::canary::AttributeAmong(tuples, canary_keys, 1, f.threads);
    std::fprintf(stderr,
                 "  share %g: best single account by canaries: %llu (%s cluster), corrected p %s\n",
                 share, static_cast<unsigned long long>(single.top[0].account),
                 single.top[0].account < f.cluster ? "in the" : "NOT in the",
                 single.corrected.ToString().c_str());
    std::vector<double> honest_log10(static_cast<size_t>(f.cohorts));
    ParallelFor(f.cohorts, f.threads, [&](int c) {
      std::vector<tmk::canary::CanaryKey> cohort;
      std::vector<uint64_t> ids(f.accounts - f.cluster);
      std::iota(ids.begin(), ids.end(), f.cluster);
      for (uint64_t j = 0; j < f.cluster; ++j) {  // partial Fisher-Yates, keyed by the cohort index
        const uint64_t r = j + Hash(static_cast<uint64_t>(c), j) % (ids.size() - j);
        std::swap(ids[j], ids[r]);
        cohort.push_back(canary_keys[ids[j]]);
      }
      honest_log10[static_cast<size_t>(c)] = tmk::canary::TestCohort(tuples, cohort).p.log10();
    });
    int below_cluster = 0, below_1e3 = 0;
    for (double l : honest_log10) {
      below_cluster += l <= cluster_result.p.log10();
      below_1e3 += l <= -3;
    }
    // Fingerprint accusations of every account.
    const auto fp = *det->Project(stats, tmk::watermark::Layer::kAccountFingerprint);
    std::vector<double> acc_log10(f.accounts);
    ParallelFor(static_cast<int>(f.accounts), f.threads, [&](int a) {
      const auto r = *det->TestAccount(fp, *keys[static_cast<size_t>(a)]);
      acc_log10[static_cast<size_t>(a)] = tmk::stats::Bonferroni(r.p_value, f.accounts).log10();
    });
    int cluster_accused = 0, honest_accused = 0;
    for (uint64_t a = 0; a < f.accounts; ++a) {
      if (acc_log10[a] > -3) continue;
      (a < f.cluster ? cluster_accused : honest_accused)++;
    }
    std::printf(
        "| %g %% | %llu (%llu) | %s over %llu tuples | %s over %llu tuples | %s over %llu tuples | "
        "%s (%llu matches, "
        "%.0f expected, %zu tuples) | %d / %d of %d | %d of %llu / %d of %llu |\n",
        100 * share, static_cast<unsigned long long>(wm_tokens + clean_tokens),
        static_cast<unsigned long long>(wm_tokens), provider.p_value.ToString().c_str(),
        static_cast<unsigned long long>(provider.tuples), provider_seen.p_value.ToString().c_str(),
        static_cast<unsigned long long>(provider_seen.tuples),
        provider_wb.p_value.ToString().c_str(), static_cast<unsigned long long>(provider_wb.tuples),
        cluster_result.p.ToString().c_str(),
        static_cast<unsigned long long>(cluster_result.matches), cluster_result.expected,
        tuples.size(), below_cluster, below_1e3, f.cohorts, cluster_accused,
        static_cast<unsigned long long>(f.cluster), honest_accused,
        static_cast<unsigned long long>(f.accounts - f.cluster));
    std::fflush(stdout);
    out["shares"].push_back({{"share", share},
                             {"training_tokens", wm_tokens + clean_tokens},
                             {"watermarked_tokens", wm_tokens},
                             {"provider_log10_p", provider.p_value.log10()},
                             {"provider_tuples", provider.tuples},
                             {"provider_seen_windows_log10_p", provider_seen.p_value.log10()},
                             {"provider_seen_windows_tuples", provider_seen.tuples},
                             {"by_queries", by_queries},
                             {"provider_white_box_log10_p", provider_wb.p_value.log10()},
                             {"provider_white_box_tuples", provider_wb.tuples},
                             {"canary_cluster_log10_p", cluster_result.p.log10()},
                             {"canary_cluster_matches", cluster_result.matches},
                             {"canary_cluster_expected", cluster_result.expected},
                             {"canary_tuples", tuples.size()},
                             {"canary_best_account", single.top[0].account},
                             {"canary_best_account_corrected_log10_p", single.corrected.log10()},
                             {"honest_cohorts_at_or_below_cluster_p", below_cluster},
                             {"honest_cohorts_at_1e-3", below_1e3},
                             {"fingerprint_cluster_accused_1e-3", cluster_accused},
                             {"fingerprint_honest_accused_1e-3", honest_accused}});
  }
  if (!f.out.empty()) std::ofstream(f.out) << out.dump(2) << "\n";
  return 0;
}
