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
//   build-rel/studies/distill_study --budget 1000000 --queries 500 --tokens 200
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "study_common.h"
#include "tracemark/canary/evidence.h"
#include "tracemark/canary/processor.h"
#include "tracemark/canary/suite.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/stats/tails.h"
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
  std::string key;            // master secret file (default: a fixed study key)
  std::string model;          // the teacher (default: the reference model under the data dir)
  std::string save_students;  // directory: each student written as student-<share>.bin
  std::string attack_shares = "0.1";  // shares whose student is attacked ("" for none)
  std::string attacks = "paraphrase,continued,neutralise";
  uint64_t continue_tokens = 1000000;  // clean tokens of continued training
  double neutralise_delta = 2.0;       // the bias the targeted attacker subtracts
  // The GPU variant (scripts/gpu_student.py): --export DIR writes each share's training tokens,
  // its white-box windows and the query prompts, then stops; --student-from DIR tests the
  // students trained there (their answers and white-box argmax) instead of n-gram students.
  std::string export_dir;
  std::string student_from;
  // Writes what the cluster was served (every harvested answer, as prompt/completion JSONL): the
  // provider's own log, which an investigator passes to `tracemark scan --seen-in`.
  std::string write_harvest;
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
      .Add("--threads", &f.threads)
      .Add("--key", &f.key)
      .Add("--model", &f.model)
      .Add("--save-students", &f.save_students)
      .Add("--attack-shares", &f.attack_shares)
      .Add("--attacks", &f.attacks)
      .Add("--continue-tokens", &f.continue_tokens)
      .Add("--neutralise-delta", &f.neutralise_delta)
      .Add("--export", &f.export_dir)
      .Add("--student-from", &f.student_from)
      .Add("--write-harvest", &f.write_harvest);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  std::vector<double> shares, attack_shares;
  for (absl::string_view v : absl::StrSplit(f.shares, ',', absl::SkipEmpty())) {
    shares.push_back(std::stod(std::string(v)));
  }
  for (absl::string_view v : absl::StrSplit(f.attack_shares, ',', absl::SkipEmpty())) {
    attack_shares.push_back(std::stod(std::string(v)));
  }
  const std::vector<std::string> attacks = absl::StrSplit(f.attacks, ',', absl::SkipEmpty());
  std::unique_ptr<tmk::refmodel::KneserNeyModel> attacker_model;  // the targeted attacker's own
  auto data = tmk::study::LoadStudyData(f.data_dir, f.model);
  if (!data.ok()) return std::cerr << data.status() << "\n", 1;
  const auto& tok = *data->tok;
  tmk::watermark::Config config;
  config.vocab_size = tok.vocab_size();
  tmk::watermark::Key master = KeyFrom(5150);
  if (!f.key.empty()) {
    auto k = tmk::watermark::ReadMasterKeyFile(f.key);
    if (!k.ok()) return std::cerr << k.status() << "\n", 1;
    master = *std::move(k);
  }
  const tmk::watermark::Key epoch = *tmk::watermark::DeriveEpochKey(master, 0);
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
  double max_share = 0;
  for (double v : shares) max_share = std::max(max_share, v);
  for (double v : attack_shares) max_share = std::max(max_share, v);
  if (max_share == 0) max_share = 1;  // the control alone still tests the windows of a harvest
  const auto harvest_tokens = static_cast<uint64_t>(max_share * static_cast<double>(f.budget));
  const int answers = static_cast<int>((harvest_tokens + f.answer_tokens - 1) / f.answer_tokens);
  std::vector<Doc> harvest(static_cast<size_t>(answers));
  std::atomic<int> done{0};
  ParallelFor(answers, f.threads, [&](int i) {
    const uint64_t account = AccountOfAnswer(static_cast<uint64_t>(i), f.cluster, f.skew);
    tmk::reference::GenerateOptions o;
    o.max_tokens = f.answer_tokens;
    o.seed = Hash(static_cast<uint64_t>(i), 1);
    o.canary = proc.get();
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
  if (!f.write_harvest.empty()) {
    std::ofstream served(f.write_harvest, std::ios::trunc);
    for (const Doc& d : harvest) {
      const absl::Span<const int32_t> ids(d.ids);
      const auto prompt = tok.Decode(ids.subspan(0, d.prompt));
      const auto answer = tok.Decode(ids.subspan(d.prompt));
      if (!prompt.ok() || !answer.ok()) return std::cerr << "cannot decode the harvest\n", 1;
      served << nlohmann::json{{"prompt", *prompt}, {"completion", *answer}}.dump(
                    -1, ' ', false, nlohmann::json::error_handler_t::replace)
             << "\n";
    }
    if (!served) return std::cerr << "cannot write " << f.write_harvest << "\n", 1;
  }

  nlohmann::json out = {
      {"accounts", f.accounts},         {"cluster", f.cluster}, {"budget", f.budget},
      {"queries", f.queries},           {"tokens", f.tokens},   {"cohorts", f.cohorts},
      {"parameters", config.Describe()}};
  // The training data of the student at one watermarked share: harvested answers first, then
  // clean documents; the context windows of the watermarked answers (seen windows), and the first
  // --white-box of them in order.
  struct ShareData {
    std::vector<std::vector<int32_t>> docs;
    size_t harvested = 0;   // docs[0 .. harvested) are harvested answers (with their prompts)
    size_t next_clean = 0;  // clean documents used: the first next_clean of the keyed order
    uint64_t wm_tokens = 0, clean_tokens = 0;
    absl::flat_hash_set<uint64_t> seen;
    std::vector<std::vector<int32_t>> windows;
  };
  const auto h = static_cast<size_t>(config.context_width);
  auto window_key = [h](absl::Span<const int32_t> ids, size_t i) {
    uint64_t k = 0x9E3779B97F4A7C15ull;
    for (size_t j = i - h; j < i; ++j) k = Hash(k, static_cast<uint64_t>(ids[j]));
    return k;
  };
  auto clean_doc = [&](size_t i) -> const std::vector<int32_t>& {
    return clean[(i * 7919) % clean.size()];
  };
  auto build_share = [&](double share) {
    ShareData sd;
    const auto want_wm = static_cast<uint64_t>(share * static_cast<double>(f.budget));
    auto add_window = [&](const std::vector<int32_t>& ids, size_t i) {
      if (sd.seen.insert(window_key(ids, i)).second &&
          sd.windows.size() < static_cast<size_t>(f.white_box)) {
        sd.windows.emplace_back(ids.begin() + static_cast<ptrdiff_t>(i - h),
                                ids.begin() + static_cast<ptrdiff_t>(i));
      }
    };
    for (const Doc& d : harvest) {
      if (sd.wm_tokens >= want_wm) break;
      sd.docs.push_back(d.ids);
      sd.wm_tokens += d.ids.size() - d.prompt;
      for (size_t i = std::max(d.prompt, h); i < d.ids.size(); ++i) add_window(d.ids, i);
    }
    sd.harvested = sd.docs.size();
    if (share == 0) {
      // The control: a student that never saw the harvest, tested on the windows of all of it
      // (the null of the seen-window test).
      for (const Doc& d : harvest) {
        for (size_t i = std::max(d.prompt, h); i < d.ids.size(); ++i) add_window(d.ids, i);
      }
    }
    for (; sd.next_clean < clean.size() && sd.wm_tokens + sd.clean_tokens < f.budget;
         ++sd.next_clean) {
      sd.docs.push_back(clean_doc(sd.next_clean));
      sd.clean_tokens += 256;
    }
    return sd;
  };
  using Adjust = std::function<void(absl::Span<const int32_t>, absl::Span<float>)>;

  // Trains a student on `docs` and runs every test on it; `adjust` is an inference-time logit
  // change (the targeted attack), applied to sampling and to the white-box distributions.
  // Every test on one student, from what it produced: its most likely token at each white-box
  // window (argmax_tuples: the window then the token) and its answers to the queries.
  auto test_student =
      [&](const std::string& label, double share, const ShareData& sd, uint64_t training_tokens,
          const std::vector<std::vector<int32_t>>& argmax_tuples,
          const std::vector<Doc>& answers_out, const std::vector<std::string>& texts,
          const std::vector<std::string>& prefixes) -> absl::Status {
    auto white_box = [&](const tmk::watermark::Detector& d) {
      tmk::watermark::TextStatistics st;
      for (const auto& one : argmax_tuples) {
        if (!d.Score(one, h, &st).ok()) std::abort();
      }
      return *d.TestProvider(*d.Project(st, tmk::watermark::Layer::kProvider));
    };
    const tmk::watermark::ProviderResult provider_wb = white_box(*det);
    // The lower tail of the same count: fewer green tokens than chance, as an over-correcting
    // attacker who knows (roughly) the green lists produces.
    const auto wb_green = static_cast<uint64_t>(provider_wb.score);
    const tmk::stats::PValue wb_lower = tmk::stats::BinomialUpperTail(
        provider_wb.tuples - wb_green, provider_wb.tuples, 1 - config.kgw.gamma);
    if (share == 0 && f.null_keys > 0 && label.find(',') == std::string::npos) {
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
    // Provider layer over all answers' unique tuples, and over the seen windows only.
    tmk::watermark::TextStatistics stats, seen_stats;
    nlohmann::json by_queries = nlohmann::json::array();
    tmk::canary::CanaryStatistics cstats;
    for (size_t q = 0; q < answers_out.size(); ++q) {
      const std::vector<int32_t>& ids = answers_out[q].ids;
      tmk::watermark::TextStatistics s;
      if (!det->Score(ids, answers_out[q].prompt, &s).ok()) std::abort();
      if (!stats.Merge(s).ok()) std::abort();
      for (size_t i = std::max(answers_out[q].prompt, h); i < ids.size(); ++i) {
        if (!sd.seen.contains(window_key(ids, i))) continue;
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
        std::fprintf(stderr, "  %s, %zu queries: provider p %s, seen windows p %s\n", label.c_str(),
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
    // Canary attribution of single accounts: the best of all accounts, corrected over them.
    const auto single = tmk::canary::AttributeAmong(tuples, canary_keys, 1, f.threads);
    std::fprintf(stderr,
                 "  %s: best single account by canaries: %llu (%s cluster), corrected p %s\n",
                 label.c_str(), static_cast<unsigned long long>(single.top[0].account),
                 single.top[0].account < f.cluster ? "in the" : "NOT in the",
                 single.corrected.ToString().c_str());
    // Canary evidence per account: each account's own test on the pooled tuples (uncorrected), and
    // how many cluster and honest accounts reach p <= 0.01.
    std::vector<double> canary_log10(f.accounts);
    ParallelFor(static_cast<int>(f.accounts), f.threads, [&](int a) {
      canary_log10[static_cast<size_t>(a)] =
          tmk::canary::TestAccount(tuples, canary_keys[static_cast<size_t>(a)]).p.log10();
    });
    int canary_cluster_01 = 0, canary_honest_01 = 0;
    for (uint64_t a = 0; a < f.accounts; ++a) {
      if (canary_log10[a] > -2) continue;
      (a < f.cluster ? canary_cluster_01 : canary_honest_01)++;
    }
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
      honest_log10[static_cast<size_t>(c)] =
          tmk::canary::TestCohort(tuples, cohort).combined_p.log10();
    });
    int below_cluster = 0, below_1e3 = 0;
    for (double l : honest_log10) {
      below_cluster += l <= cluster_result.combined_p.log10();
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
        "| %s | %llu (%llu) | %s over %llu tuples | %s over %llu tuples | %s over %llu tuples | %s "
        "| %s (sum %s: %llu matches, %.0f expected, %zu tuples; heaviest: account %llu, %s) | %d / "
        "%d of %d | %d of %llu / %d of %llu | %d of %llu / %d of %llu |\n",
        label.c_str(), static_cast<unsigned long long>(training_tokens),
        static_cast<unsigned long long>(sd.wm_tokens), provider.p_value.ToString().c_str(),
        static_cast<unsigned long long>(provider.tuples), provider_seen.p_value.ToString().c_str(),
        static_cast<unsigned long long>(provider_seen.tuples),
        provider_wb.p_value.ToString().c_str(), static_cast<unsigned long long>(provider_wb.tuples),
        wb_lower.ToString().c_str(), cluster_result.combined_p.ToString().c_str(),
        cluster_result.p.ToString().c_str(),
        static_cast<unsigned long long>(cluster_result.matches), cluster_result.expected,
        tuples.size(), static_cast<unsigned long long>(cluster_result.best_account),
        cluster_result.best_member_p.ToString().c_str(), below_cluster, below_1e3, f.cohorts,
        cluster_accused, static_cast<unsigned long long>(f.cluster), honest_accused,
        static_cast<unsigned long long>(f.accounts - f.cluster), canary_cluster_01,
        static_cast<unsigned long long>(f.cluster), canary_honest_01,
        static_cast<unsigned long long>(f.accounts - f.cluster));
    std::fflush(stdout);
    out["rows"].push_back(
        {{"label", label},
         {"share", share},
         {"training_tokens", training_tokens},
         {"watermarked_tokens", sd.wm_tokens},
         {"provider_log10_p", provider.p_value.log10()},
         {"provider_tuples", provider.tuples},
         {"provider_seen_windows_log10_p", provider_seen.p_value.log10()},
         {"provider_seen_windows_tuples", provider_seen.tuples},
         {"by_queries", by_queries},
         {"provider_white_box_log10_p", provider_wb.p_value.log10()},
         {"provider_white_box_tuples", provider_wb.tuples},
         {"provider_white_box_lower_tail_log10_p", wb_lower.log10()},
         {"canary_cluster_log10_p", cluster_result.combined_p.log10()},
         {"canary_cluster_sum_log10_p", cluster_result.p.log10()},
         {"canary_cluster_heaviest_account", cluster_result.best_account},
         {"canary_cluster_heaviest_log10_p", cluster_result.best_member_p.log10()},
         {"canary_cluster_matches", cluster_result.matches},
         {"canary_cluster_expected", cluster_result.expected},
         {"canary_tuples", tuples.size()},
         {"canary_best_account", single.top[0].account},
         {"canary_best_account_corrected_log10_p", single.corrected.log10()},
         {"canary_cluster_accounts_at_0.01", canary_cluster_01},
         {"canary_honest_accounts_at_0.01", canary_honest_01},
         {"honest_cohorts_at_or_below_cluster_p", below_cluster},
         {"honest_cohorts_at_1e-3", below_1e3},
         {"fingerprint_cluster_accused_1e-3", cluster_accused},
         {"fingerprint_honest_accused_1e-3", honest_accused}});
    return absl::OkStatus();
  };

  // The GPU variant's students (scripts/gpu_student.py): their white-box argmax at the exported
  // windows and their answers to the exported prompts, read from --student-from DIR.
  auto read_u32 = [](const std::string& path) -> absl::StatusOr<std::vector<uint32_t>> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError("cannot read " + path);
    std::vector<uint32_t> v;
    uint32_t x;
    while (in.read(reinterpret_cast<char*>(&x), sizeof(x))) v.push_back(x);
    return v;
  };
  auto evaluate_external = [&](const std::string& label, double share,
                               const ShareData& sd) -> absl::Status {
    auto wb = read_u32(absl::StrFormat("%s/whitebox-%g.u32", f.student_from, share));
    if (!wb.ok()) return wb.status();
    if (wb->size() != sd.windows.size() * (h + 1)) {
      return absl::FailedPreconditionError("white-box file does not match the exported windows");
    }
    std::vector<std::vector<int32_t>> argmax_tuples(sd.windows.size());
    for (size_t w = 0; w < sd.windows.size(); ++w) {
      for (size_t j = 0; j <= h; ++j) {
        argmax_tuples[w].push_back(static_cast<int32_t>((*wb)[w * (h + 1) + j]));
      }
      if (!std::equal(sd.windows[w].begin(), sd.windows[w].end(), argmax_tuples[w].begin())) {
        return absl::FailedPreconditionError("white-box windows differ from this run's");
      }
    }
    auto ans = read_u32(absl::StrFormat("%s/answers-%g.u32", f.student_from, share));
    if (!ans.ok()) return ans.status();
    std::vector<Doc> answers_out;
    std::vector<std::string> texts, prefixes;
    for (size_t pos = 0; pos < ans->size();) {  // [prompt length, prompt, answer length, answer]
      Doc d;
      const uint32_t np = (*ans)[pos++];
      d.ids.assign(ans->begin() + static_cast<ptrdiff_t>(pos),
                   ans->begin() + static_cast<ptrdiff_t>(pos + np));
      pos += np;
      const uint32_t na = (*ans)[pos++];
      std::vector<int32_t> a(ans->begin() + static_cast<ptrdiff_t>(pos),
                             ans->begin() + static_cast<ptrdiff_t>(pos + na));
      pos += na;
      d.prompt = np;
      d.ids.insert(d.ids.end(), a.begin(), a.end());
      auto text = tok.Decode(a);
      if (!text.ok()) return text.status();
      texts.push_back(*std::move(text));
      prefixes.push_back(suite[answers_out.size() % suite.size()].prefix);
      answers_out.push_back(std::move(d));
    }
    return test_student(label + " (GPU student)", share, sd, sd.wm_tokens + sd.clean_tokens,
                        argmax_tuples, answers_out, texts, prefixes);
  };

  auto evaluate = [&](const std::string& label, double share, const ShareData& sd,
                      const std::vector<std::vector<int32_t>>& docs, uint64_t training_tokens,
                      const Adjust& adjust, bool save) -> absl::Status {
    if (!f.student_from.empty()) return evaluate_external(label, share, sd);
    auto student = tmk::refmodel::KneserNeyModel::Train(docs, tok.vocab_size(), 4);
    if (!student.ok()) return student.status();
    if (save && !f.save_students.empty()) {
      const std::string path = absl::StrFormat("%s/student-%g.bin", f.save_students, share);
      if (auto st = student->Save(path); !st.ok()) return st;
      std::fprintf(stderr, "  wrote %s\n", path.c_str());
    }
    const tmk::reference::ReferenceGenerator gen(&*student, &tok);
    // White-box: at each seen window, the student's most likely next token (a function of the
    // student alone, so green with probability exactly gamma under the null), as unique tuples.
    std::vector<std::vector<int32_t>> argmax_tuples(sd.windows.size());
    ParallelFor(static_cast<int>(sd.windows.size()), f.threads, [&](int w) {
      thread_local std::vector<float> lp;
      lp.resize(static_cast<size_t>(student->vocab_size()));
      const std::vector<int32_t>& window = sd.windows[static_cast<size_t>(w)];
      student->LogProbs(window, absl::MakeSpan(lp));
      if (adjust) adjust(window, absl::MakeSpan(lp));
      std::vector<int32_t> one = window;
      one.push_back(static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin()));
      argmax_tuples[static_cast<size_t>(w)] = std::move(one);
    });
    // Black-box queries with the suite's prefixes.
    std::vector<Doc> answers_out(static_cast<size_t>(f.queries));
    std::vector<std::string> texts(answers_out.size()), prefixes(answers_out.size());
    ParallelFor(f.queries, f.threads, [&](int q) {
      const auto& p = suite[static_cast<size_t>(q) % suite.size()];
      tmk::reference::GenerateOptions o;
      o.max_tokens = f.tokens;
      o.seed = Hash(static_cast<uint64_t>(q), 3);
      o.logit_adjust = adjust;
      auto g = gen.Generate(p.prefix, nullptr, nullptr, o);
      if (!g.ok()) std::abort();
      answers_out[static_cast<size_t>(q)] = {g->AllIds(), g->prompt_ids.size()};
      texts[static_cast<size_t>(q)] = g->text;
      prefixes[static_cast<size_t>(q)] = p.prefix;
    });
    return test_student(label, share, sd, training_tokens, argmax_tuples, answers_out, texts,
                        prefixes);
  };

  if (!f.export_dir.empty()) {
    // The GPU variant's inputs: per share, the training documents (each preceded by the separator
    // 0xFFFFFFFF) and the white-box windows (h ids each); the query prompts; uint32 little-endian.
    auto write_u32 = [](const std::string& path, const std::vector<uint32_t>& v) {
      std::ofstream file(path, std::ios::binary | std::ios::trunc);
      file.write(reinterpret_cast<const char*>(v.data()),
                 static_cast<std::streamsize>(v.size() * sizeof(uint32_t)));
      return static_cast<bool>(file);
    };
    for (double share : shares) {
      const ShareData sd = build_share(share);
      std::vector<uint32_t> train, windows;
      for (const auto& d : sd.docs) {
        train.push_back(0xFFFFFFFFu);
        train.insert(train.end(), d.begin(), d.end());
      }
      for (const auto& w : sd.windows) windows.insert(windows.end(), w.begin(), w.end());
      if (!write_u32(absl::StrFormat("%s/train-%g.u32", f.export_dir, share), train) ||
          !write_u32(absl::StrFormat("%s/windows-%g.u32", f.export_dir, share), windows)) {
        return std::cerr << "cannot write to " << f.export_dir << "\n", 1;
      }
      std::fprintf(stderr, "  exported share %g: %zu training tokens, %zu windows\n", share,
                   train.size(), sd.windows.size());
    }
    std::vector<uint32_t> prompts;
    for (int q = 0; q < f.queries; ++q) {
      auto ids = tok.Encode(suite[static_cast<size_t>(q) % suite.size()].prefix);
      if (!ids.ok()) return std::cerr << ids.status() << "\n", 1;
      prompts.push_back(static_cast<uint32_t>(ids->size()));
      prompts.insert(prompts.end(), ids->begin(), ids->end());
    }
    if (!write_u32(f.export_dir + "/prompts.u32", prompts)) return 1;
    nlohmann::json meta = {{"vocab_size", tok.vocab_size()},
                           {"h", h},
                           {"shares", shares},
                           {"queries", f.queries},
                           {"tokens", f.tokens},
                           {"budget", f.budget},
                           {"separator", 0xFFFFFFFFu}};
    std::ofstream(f.export_dir + "/meta.json") << meta.dump(2) << "\n";
    return 0;
  }

  std::printf(
      "| student | training tokens (watermarked) | provider p | provider p, seen windows | "
      "provider p, white-box | white-box, lower tail | canary: cluster p | honest cohorts at <= "
      "cluster p / <= 1e-3 | fingerprint: cluster accused / honest accused (1e-3, corrected) | "
      "canary per account: cluster / honest at p <= 0.01 |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n");
  for (double share : shares) {
    const ShareData sd = build_share(share);
    if (auto st = evaluate(absl::StrFormat("%g %%", 100 * share), share, sd, sd.docs,
                           sd.wm_tokens + sd.clean_tokens, nullptr, true);
        !st.ok()) {
      return std::cerr << st << "\n", 1;
    }
  }

  // Attacks on the student and its data, at each --attack-shares share.
  for (double share : attack_shares) {
    const ShareData sd = build_share(share);
    const std::string at = absl::StrFormat("%g %%", 100 * share);
    for (const std::string& attack : attacks) {
      std::vector<std::vector<int32_t>> docs = sd.docs;
      uint64_t training = sd.wm_tokens + sd.clean_tokens;
      Adjust adjust;
      std::string label;
      if (attack == "paraphrase") {
        // Untargeted paraphrase of 30 % of the harvested text: in every harvested answer, each
        // chunk of 10 tokens is, with probability 0.3 (a keyed draw), rewritten by the teacher
        // without watermark, conditioned on what precedes it (rewritten or not).
        label = absl::StrFormat("%s, 30 %% paraphrased", at);
        std::atomic<uint64_t> rewritten{0};
        ParallelFor(static_cast<int>(sd.harvested), f.threads, [&](int di) {
          const std::vector<int32_t>& orig = sd.docs[static_cast<size_t>(di)];
          const size_t prompt = harvest[static_cast<size_t>(di)].prompt;
          std::vector<int32_t> ids(orig.begin(), orig.begin() + static_cast<ptrdiff_t>(prompt));
          for (size_t c = prompt; c < orig.size(); c += 10) {
            const size_t len = std::min<size_t>(10, orig.size() - c);
            const uint64_t draw = Hash(static_cast<uint64_t>(di) * 1000003 + c, 5150);
            if (tmk::watermark::UnitOpen(draw) < 0.3) {
              tmk::reference::GenerateOptions o;
              o.max_tokens = static_cast<int>(len);
              o.seed = Hash(draw, 6);
              auto g = teacher.GenerateIds(ids, nullptr, nullptr, o);
              if (!g.ok()) std::abort();
              ids.insert(ids.end(), g->ids.begin(), g->ids.end());
              rewritten += len;
            } else {
              ids.insert(ids.end(), orig.begin() + static_cast<ptrdiff_t>(c),
                         orig.begin() + static_cast<ptrdiff_t>(c + len));
            }
          }
          docs[static_cast<size_t>(di)] = std::move(ids);
        });
        std::fprintf(stderr, "  paraphrase: %llu of %llu harvested tokens rewritten\n",
                     static_cast<unsigned long long>(rewritten.load()),
                     static_cast<unsigned long long>(sd.wm_tokens));
      } else if (attack == "continued") {
        // Continued training on clean text the student has not seen: for an n-gram student, its
        // counts grow by the new text's.
        label = absl::StrFormat("%s, then %llu clean tokens more", at,
                                static_cast<unsigned long long>(f.continue_tokens));
        uint64_t added = 0;
        for (size_t i = sd.next_clean; i < clean.size() && added < f.continue_tokens; ++i) {
          docs.push_back(clean_doc(i));
          added += 256;
        }
        training += added;
      } else if (attack == "neutralise") {
        // Targeted neutralisation: the attacker estimates, from the harvested text, which tokens
        // are green after each window (those it over-represents against the attacker's own clean
        // model), and lowers them by delta at inference.
        label =
            absl::StrFormat("%s, neutralised (estimated green lists, -%g)", at, f.neutralise_delta);
        if (!attacker_model) {
          std::vector<std::vector<int32_t>> own;
          for (size_t i = 0; i < clean.size() && own.size() * 256 < f.budget; ++i) {
            own.push_back(clean_doc(clean.size() - 1 - i));
          }
          attacker_model = std::make_unique<tmk::refmodel::KneserNeyModel>(
              *tmk::refmodel::KneserNeyModel::Train(own, tok.vocab_size(), 4));
        }
        // Counts of each (window, next token) in the harvested answers.
        auto table = std::make_shared<absl::flat_hash_map<uint64_t, std::vector<int32_t>>>();
        absl::flat_hash_map<uint64_t, absl::flat_hash_map<int32_t, uint32_t>> counts;
        absl::flat_hash_map<uint64_t, std::vector<int32_t>> window_ids;
        for (size_t di = 0; di < sd.harvested; ++di) {
          const std::vector<int32_t>& ids = sd.docs[di];
          for (size_t i = std::max(harvest[di].prompt, h); i < ids.size(); ++i) {
            const uint64_t k = window_key(ids, i);
            counts[k][ids[i]]++;
            if (!window_ids.contains(k)) {
              window_ids[k].assign(ids.begin() + static_cast<ptrdiff_t>(i - h),
                                   ids.begin() + static_cast<ptrdiff_t>(i));
            }
          }
        }
        uint64_t estimated = 0;
        for (const auto& [k, next] : counts) {
          uint32_t n = 0;
          for (const auto& [t, c] : next) n += c;
          for (const auto& [t, c] : next) {
            const double p_clean = std::exp(attacker_model->LogProb(window_ids[k], t));
            if (static_cast<double>(c) / n > p_clean) {
              (*table)[k].push_back(t);
              ++estimated;
            }
          }
        }
        std::fprintf(stderr,
                     "  neutralise: %llu (window, token) pairs estimated green at %zu windows\n",
                     static_cast<unsigned long long>(estimated), table->size());
        const double delta = f.neutralise_delta;
        adjust = [table, delta, &window_key, h](absl::Span<const int32_t> history,
                                                absl::Span<float> logits) {
          if (history.size() < h) return;
          const auto it = table->find(window_key(history, history.size()));
          if (it == table->end()) return;
          for (int32_t t : it->second) logits[static_cast<size_t>(t)] -= static_cast<float>(delta);
        };
      } else {
        std::cerr << "unknown attack '" << attack << "' (paraphrase, continued, neutralise)\n";
        return 2;
      }
      if (auto st = evaluate(label, share, sd, docs, training, adjust, false); !st.ok()) {
        return std::cerr << st << "\n", 1;
      }
    }
  }
  if (!f.out.empty()) std::ofstream(f.out) << out.dump(2) << "\n";
  return 0;
}
