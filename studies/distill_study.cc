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
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "study_common.h"
#include "tracemark/base/read_file.h"
#include "tracemark/canary/evidence.h"
#include "tracemark/canary/processor.h"
#include "tracemark/canary/suite.h"
#include "tracemark/detect/seen_windows.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/stats/tails.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/watermarker.h"

namespace tmk = tracemark;
using tmk::detect::SeenWindows;
using tmk::study::Hash;
using tmk::study::KeyFrom;
using tmk::study::ParallelFor;

namespace {

using Ids = std::vector<int32_t>;
// An inference-time logit change (the targeted attack), applied to sampling and to the white-box
// distributions.
using Adjust = std::function<void(absl::Span<const int32_t>, absl::Span<float>)>;

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

void AddFlags(Flags* f, tmk::study::StudyFlags* flags) {
  flags->Add("--data-dir", &f->data_dir)
      .Add("--out", &f->out)
      .Add("--shares", &f->shares)
      .Add("--accounts", &f->accounts)
      .Add("--cluster", &f->cluster)
      .Add("--budget", &f->budget)
      .Add("--answer-tokens", &f->answer_tokens)
      .Add("--queries", &f->queries)
      .Add("--tokens", &f->tokens)
      .Add("--cohorts", &f->cohorts)
      .Add("--white-box", &f->white_box)
      .Add("--null-keys", &f->null_keys)
      .Add("--skew", &f->skew)
      .Add("--threads", &f->threads)
      .Add("--key", &f->key)
      .Add("--model", &f->model)
      .Add("--save-students", &f->save_students)
      .Add("--attack-shares", &f->attack_shares)
      .Add("--attacks", &f->attacks)
      .Add("--continue-tokens", &f->continue_tokens)
      .Add("--neutralise-delta", &f->neutralise_delta)
      .Add("--export", &f->export_dir)
      .Add("--student-from", &f->student_from)
      .Add("--write-harvest", &f->write_harvest);
}

std::vector<double> ParseShares(const std::string& list) {
  std::vector<double> shares;
  for (absl::string_view v : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    shares.push_back(std::stod(std::string(v)));
  }
  return shares;
}

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
  Ids ids;  // prompt + answer
  size_t prompt = 0;
};

// What every step shares: the settings, the teacher and every account's keys, the harvest and
// the clean text, the suite, and the JSON result.
struct Study {
  Flags f;
  std::vector<double> shares, attack_shares;
  std::vector<std::string> attacks;
  tmk::study::StudyData data;
  tmk::watermark::Config config;
  size_t h = 0;  // the watermark's context width
  std::unique_ptr<tmk::watermark::Watermarker> wm;
  std::unique_ptr<tmk::watermark::Detector> det;
  std::unique_ptr<tmk::canary::CanaryProcessor> proc;
  std::vector<std::optional<tmk::watermark::AccountKeys>> keys;  // watermark keys of every account
  std::vector<tmk::canary::CanaryKey> canary_keys;
  std::vector<Doc> harvest;  // the cluster's answers, enough for the largest share
  std::vector<Ids> clean;    // the corpus cut into 256-token documents
  std::vector<tmk::canary::SuitePrompt> suite;
  nlohmann::json out;
  std::unique_ptr<tmk::refmodel::KneserNeyModel> attacker_model;  // the targeted attacker's own

  const tmk::tokenizer::Tokenizer& tok() const { return *data.tok; }
  // Clean document i in a keyed order.
  const Ids& CleanDoc(size_t i) const { return clean[(i * 7919) % clean.size()]; }
};

// ---- 1. Teacher, keys, harvest, clean text ----

// The teacher's data and model, the watermark and canary of the study key (or --key), and the
// flags' lists.
absl::Status SetUp(const Flags& f, Study* s) {
  s->f = f;
  s->shares = ParseShares(f.shares);
  s->attack_shares = ParseShares(f.attack_shares);
  std::vector<std::string> attacks = absl::StrSplit(f.attacks, ',', absl::SkipEmpty());
  s->attacks = std::move(attacks);
  auto data = tmk::study::LoadStudyData(f.data_dir, f.model);
  if (!data.ok()) return data.status();
  s->data = *std::move(data);
  s->config.vocab_size = s->tok().vocab_size();
  s->h = static_cast<size_t>(s->config.context_width);
  tmk::watermark::Key master = KeyFrom(5150);
  if (!f.key.empty()) {
    auto k = tmk::watermark::ReadMasterKeyFile(f.key);
    if (!k.ok()) return k.status();
    master = *std::move(k);
  }
  const tmk::watermark::Key epoch = *tmk::watermark::DeriveEpochKey(master, 0);
  s->wm = *tmk::watermark::Watermarker::Create(epoch, s->config);
  s->det = *tmk::watermark::Detector::Create(epoch, s->config);
  s->proc = *tmk::canary::CanaryProcessor::Create(&tmk::canary::Lexicon::BuiltIn(), s->tok());
  s->suite = *tmk::canary::ParseSuite(tmk::canary::BuiltInSuiteText());
  s->out = {{"accounts", f.accounts},
            {"cluster", f.cluster},
            {"budget", f.budget},
            {"queries", f.queries},
            {"tokens", f.tokens},
            {"cohorts", f.cohorts},
            {"parameters", s->config.Describe()}};
  return absl::OkStatus();
}

// Keys of every account (watermark and canary).
void DeriveKeys(Study* s) {
  s->keys.resize(s->f.accounts);
  ParallelFor(static_cast<int>(s->f.accounts), s->f.threads, [&](int a) {
    s->keys[static_cast<size_t>(a)] = *s->wm->ForAccount(static_cast<uint64_t>(a));
  });
  for (const auto& k : s->keys) {
    s->canary_keys.push_back(tmk::canary::CanaryKey::FromAccountKeys(*k));
  }
}

// 2. Harvest: the cluster's answers to corpus prompts, enough for the largest share (of the
// student shares and the attacked ones).
std::vector<Doc> Harvest(const Study& s) {
  double max_share = 0;
  for (double v : s.shares) max_share = std::max(max_share, v);
  for (double v : s.attack_shares) max_share = std::max(max_share, v);
  if (max_share == 0) max_share = 1;  // the control alone still tests the windows of a harvest
  const auto harvest_tokens = static_cast<uint64_t>(max_share * static_cast<double>(s.f.budget));
  const int answers =
      static_cast<int>((harvest_tokens + s.f.answer_tokens - 1) / s.f.answer_tokens);
  const tmk::reference::ReferenceGenerator teacher(s.data.model.get(), &s.tok());
  std::vector<Doc> harvest(static_cast<size_t>(answers));
  std::atomic<int> done{0};
  ParallelFor(answers, s.f.threads, [&](int i) {
    const uint64_t account = AccountOfAnswer(static_cast<uint64_t>(i), s.f.cluster, s.f.skew);
    tmk::reference::GenerateOptions o;
    o.max_tokens = s.f.answer_tokens;
    o.seed = Hash(static_cast<uint64_t>(i), 1);
    o.canary = s.proc.get();
    auto g = teacher.GenerateIds(s.data.corpus.Prompt(Hash(static_cast<uint64_t>(i), 2), 16),
                                 s.wm.get(), &*s.keys[account], o);
    if (!g.ok()) std::abort();
    harvest[static_cast<size_t>(i)] = {g->AllIds(), g->prompt_ids.size()};
    if (++done % 1000 == 0)
      std::fprintf(stderr, "  harvested %d of %d answers\n", done.load(), answers);
  });
  return harvest;
}

// Clean text: the corpus cut into 256-token documents.
std::vector<Ids> CleanDocuments(const tmk::study::Corpus& corpus) {
  std::vector<Ids> clean;
  for (size_t i = 0; i + 256 <= corpus.ids.size(); i += 256) {
    clean.emplace_back(corpus.ids.begin() + static_cast<ptrdiff_t>(i),
                       corpus.ids.begin() + static_cast<ptrdiff_t>(i + 256));
  }
  return clean;
}

// --write-harvest: every harvested answer as a prompt/completion line. False, with a message,
// on failure.
bool WriteHarvest(const Study& s, const std::string& path) {
  std::ofstream served(path, std::ios::trunc);
  for (const Doc& d : s.harvest) {
    const absl::Span<const int32_t> ids(d.ids);
    const auto prompt = s.tok().Decode(ids.subspan(0, d.prompt));
    const auto answer = s.tok().Decode(ids.subspan(d.prompt));
    if (!prompt.ok() || !answer.ok()) return std::cerr << "cannot decode the harvest\n", false;
    served << nlohmann::json{{"prompt", *prompt}, {"completion", *answer}}.dump(
                  -1, ' ', false, nlohmann::json::error_handler_t::replace)
           << "\n";
  }
  if (!served) return std::cerr << "cannot write " << path << "\n", false;
  return true;
}

// ---- 3. The student's training data at one watermarked share ----

// Harvested answers first, then clean documents; the context windows of the watermarked answers
// (seen windows, by SeenWindows::WindowKey), and the first --white-box of them in order.
struct ShareData {
  std::vector<Ids> docs;
  size_t harvested = 0;   // docs[0 .. harvested) are harvested answers (with their prompts)
  size_t next_clean = 0;  // clean documents used: the first next_clean of the keyed order
  uint64_t wm_tokens = 0, clean_tokens = 0;
  absl::flat_hash_set<uint64_t> seen;
  std::vector<Ids> windows;
};

// Adds the windows of every answer position of `d` (the h ids before it) to sd.seen, and each
// new one to sd.windows while it holds fewer than --white-box.
void AddAnswerWindows(const Study& s, const Doc& d, ShareData* sd) {
  for (size_t i = std::max(d.prompt, s.h); i < d.ids.size(); ++i) {
    if (sd->seen.insert(SeenWindows::WindowKey(d.ids, i, s.h)).second &&
        sd->windows.size() < static_cast<size_t>(s.f.white_box)) {
      sd->windows.emplace_back(d.ids.begin() + static_cast<ptrdiff_t>(i - s.h),
                               d.ids.begin() + static_cast<ptrdiff_t>(i));
    }
  }
}

ShareData BuildShare(const Study& s, double share) {
  ShareData sd;
  const auto want_wm = static_cast<uint64_t>(share * static_cast<double>(s.f.budget));
  for (const Doc& d : s.harvest) {
    if (sd.wm_tokens >= want_wm) break;
    sd.docs.push_back(d.ids);
    sd.wm_tokens += d.ids.size() - d.prompt;
    AddAnswerWindows(s, d, &sd);
  }
  sd.harvested = sd.docs.size();
  if (share == 0) {
    // The control: a student that never saw the harvest, tested on the windows of all of it
    // (the null of the seen-window test).
    for (const Doc& d : s.harvest) AddAnswerWindows(s, d, &sd);
  }
  for (; sd.next_clean < s.clean.size() && sd.wm_tokens + sd.clean_tokens < s.f.budget;
       ++sd.next_clean) {
    sd.docs.push_back(s.CleanDoc(sd.next_clean));
    sd.clean_tokens += 256;
  }
  return sd;
}

// ---- 5. Tests on one student, from what it produced ----

// What one student produced: its most likely token at each white-box window (argmax_tuples: the
// window then the token) and its answers to the queries, with their text and the suite prefix
// each one answered.
struct StudentOutput {
  std::vector<Ids> argmax_tuples;
  std::vector<Doc> answers;
  std::vector<std::string> texts, prefixes;
};

// White-box: the provider test on the (window, most likely token) tuples under `d`.
tmk::watermark::ProviderResult WhiteBoxTest(const tmk::watermark::Detector& d,
                                            const std::vector<Ids>& argmax_tuples, size_t h) {
  tmk::watermark::TextStatistics st;
  for (const auto& one : argmax_tuples) {
    if (!d.Score(one, h, &st).ok()) std::abort();
  }
  return *d.TestProvider(*d.Project(st, tmk::watermark::Layer::kProvider));
}

// The null of the white-box test: the same clean student and windows under --null-keys keys that
// never touched anything; randomised binomial p-values (uniform under the null) and their KS test.
nlohmann::json WhiteBoxNull(const Study& s, const std::vector<Ids>& argmax_tuples) {
  std::vector<double> ps(static_cast<size_t>(s.f.null_keys));
  ParallelFor(s.f.null_keys, s.f.threads, [&](int k) {
    const tmk::watermark::Key other =
        *tmk::watermark::DeriveEpochKey(KeyFrom(900000 + static_cast<uint64_t>(k)), 0);
    auto d = *tmk::watermark::Detector::Create(other, s.config);
    const auto r = WhiteBoxTest(*d, argmax_tuples, s.h);
    ps[static_cast<size_t>(k)] = tmk::study::RandomisedBinomialP(
        static_cast<uint64_t>(r.score), r.tuples, s.config.kgw.gamma,
        tmk::watermark::UnitOpen(Hash(static_cast<uint64_t>(k), 77)));
  });
  const nlohmann::json ks = tmk::study::KsJson(ps);
  std::fprintf(stderr, "white-box null over %d keys: %s\n", s.f.null_keys, ks.dump().c_str());
  return ks;
}

// The provider layer over all answers' unique tuples and over the seen windows only (also after
// 250, 500, 1,000, 2,000, ... queries), and the answers' canary events.
struct AnswerTests {
  tmk::watermark::TextStatistics stats;  // every answer
  tmk::watermark::ProviderResult provider, provider_seen;
  nlohmann::json by_queries = nlohmann::json::array();
  tmk::canary::CanaryStatistics canary;
};

// Whether the p-values after n of `total` queries are reported: at 250 x 2^k, and at the last.
bool IsReportPoint(size_t n, size_t total) {
  return n == total || (n >= 250 && (n % 250 == 0) && ((n / 250) & (n / 250 - 1)) == 0);
}

AnswerTests TestAnswers(const Study& s, const std::string& label, const ShareData& sd,
                        const StudentOutput& so) {
  const tmk::watermark::Detector& det = *s.det;
  AnswerTests t;
  tmk::watermark::TextStatistics seen_stats;
  auto provider = [&](const tmk::watermark::TextStatistics& st) {
    return *det.TestProvider(*det.Project(st, tmk::watermark::Layer::kProvider));
  };
  for (size_t q = 0; q < so.answers.size(); ++q) {
    const Ids& ids = so.answers[q].ids;
    tmk::watermark::TextStatistics one_answer;
    if (!det.Score(ids, so.answers[q].prompt, &one_answer).ok()) std::abort();
    if (!t.stats.Merge(one_answer).ok()) std::abort();
    for (size_t i = std::max(so.answers[q].prompt, s.h); i < ids.size(); ++i) {
      if (!sd.seen.contains(SeenWindows::WindowKey(ids, i, s.h))) continue;
      // Score position i alone: its h context ids, then the token.
      const absl::Span<const int32_t> one(ids.data() + i - s.h, s.h + 1);
      if (!det.Score(one, s.h, &seen_stats).ok()) std::abort();
    }
    t.canary.Add(tmk::canary::ExtractEvents(so.texts[q], s.proc->lexicon(), s.proc->active_forms(),
                                            so.prefixes[q]));
    const size_t n = q + 1;
    if (IsReportPoint(n, so.answers.size())) {
      const auto all = provider(t.stats), sw = provider(seen_stats);
      t.by_queries.push_back({{"queries", n},
                              {"provider_log10_p", all.p_value.log10()},
                              {"provider_seen_windows_log10_p", sw.p_value.log10()},
                              {"seen_windows_tuples", sw.tuples}});
      std::fprintf(stderr, "  %s, %zu queries: provider p %s, seen windows p %s\n", label.c_str(),
                   n, all.p_value.ToString().c_str(), sw.p_value.ToString().c_str());
    }
  }
  t.provider = provider(t.stats);
  t.provider_seen = provider(seen_stats);
  return t;
}

// Canary evidence on the answers' tuples: the cluster as a cohort, the best single account, each
// account's own test, and random cohorts of honest accounts (the empirical null).
struct CanaryTests {
  size_t tuples = 0;
  tmk::canary::CohortResult cluster;
  tmk::canary::CanaryAttribution single;    // the best of all accounts, corrected over them
  int cluster_at_01 = 0, honest_at_01 = 0;  // accounts whose own (uncorrected) p <= 0.01
  int cohorts_below_cluster = 0, cohorts_below_1e3 = 0;  // honest cohorts at or below
};

// log10 p of --cohorts random cohorts of honest accounts, each the cluster's size (a partial
// Fisher-Yates draw keyed by the cohort's index).
std::vector<double> HonestCohortsLog10(const Study& s,
                                       absl::Span<const tmk::canary::Tuple> tuples) {
  const uint64_t cluster = s.f.cluster;
  std::vector<double> honest_log10(static_cast<size_t>(s.f.cohorts));
  ParallelFor(s.f.cohorts, s.f.threads, [&](int c) {
    std::vector<tmk::canary::CanaryKey> cohort;
    std::vector<uint64_t> ids(s.f.accounts - cluster);
    std::iota(ids.begin(), ids.end(), cluster);
    for (uint64_t j = 0; j < cluster; ++j) {
      const uint64_t r = j + Hash(static_cast<uint64_t>(c), j) % (ids.size() - j);
      std::swap(ids[j], ids[r]);
      cohort.push_back(s.canary_keys[ids[j]]);
    }
    honest_log10[static_cast<size_t>(c)] =
        tmk::canary::TestCohort(tuples, cohort).combined_p.log10();
  });
  return honest_log10;
}

CanaryTests TestCanaries(const Study& s, const std::string& label,
                         const tmk::canary::CanaryStatistics& cstats) {
  CanaryTests t;
  const auto tuples = cstats.Tuples(s.proc->lexicon());
  t.tuples = tuples.size();
  const std::vector<tmk::canary::CanaryKey> cluster_keys(
      s.canary_keys.begin(), s.canary_keys.begin() + static_cast<ptrdiff_t>(s.f.cluster));
  t.cluster = tmk::canary::TestCohort(tuples, cluster_keys);
  t.single = tmk::canary::AttributeAmong(tuples, s.canary_keys, 1, s.f.threads);
  std::fprintf(stderr, "  %s: best single account by canaries: %llu (%s cluster), corrected p %s\n",
               label.c_str(), static_cast<unsigned long long>(t.single.top[0].account),
               t.single.top[0].account < s.f.cluster ? "in the" : "NOT in the",
               t.single.corrected.ToString().c_str());
  std::vector<double> canary_log10(s.f.accounts);
  ParallelFor(static_cast<int>(s.f.accounts), s.f.threads, [&](int a) {
    canary_log10[static_cast<size_t>(a)] =
        tmk::canary::TestAccount(tuples, s.canary_keys[static_cast<size_t>(a)]).p.log10();
  });
  for (uint64_t a = 0; a < s.f.accounts; ++a) {
    if (canary_log10[a] > -2) continue;
    (a < s.f.cluster ? t.cluster_at_01 : t.honest_at_01)++;
  }
  for (double l : HonestCohortsLog10(s, tuples)) {
    t.cohorts_below_cluster += l <= t.cluster.combined_p.log10();
    t.cohorts_below_1e3 += l <= -3;
  }
  return t;
}

// Fingerprint accusations of every account on the pooled fingerprint tuples (Chernoff bound,
// Bonferroni-corrected over the accounts) at 1e-3: cluster members and honest accounts.
struct Accused {
  int cluster = 0, honest = 0;
};

Accused FingerprintAccusations(const Study& s, const tmk::watermark::TextStatistics& stats) {
  const auto fp = *s.det->Project(stats, tmk::watermark::Layer::kAccountFingerprint);
  std::vector<double> acc_log10(s.f.accounts);
  ParallelFor(static_cast<int>(s.f.accounts), s.f.threads, [&](int a) {
    const auto r = *s.det->TestAccount(fp, *s.keys[static_cast<size_t>(a)]);
    acc_log10[static_cast<size_t>(a)] = tmk::stats::Bonferroni(r.p_value, s.f.accounts).log10();
  });
  Accused accused;
  for (uint64_t a = 0; a < s.f.accounts; ++a) {
    if (acc_log10[a] > -3) continue;
    (a < s.f.cluster ? accused.cluster : accused.honest)++;
  }
  return accused;
}

// Every test's result on one student: one row of the table and of the JSON.
struct StudentResult {
  std::string label;
  double share = 0;
  uint64_t training_tokens = 0, watermarked_tokens = 0;
  tmk::watermark::ProviderResult white_box;
  // The lower tail of the white-box count: fewer green tokens than chance, as an over-correcting
  // attacker who knows (roughly) the green lists produces.
  tmk::stats::PValue white_box_lower;
  AnswerTests answers;
  CanaryTests canary;
  Accused fingerprint;
};

void PrintRow(const Study& s, const StudentResult& r) {
  const uint64_t honest = s.f.accounts - s.f.cluster;
  std::printf(
      "| %s | %llu (%llu) | %s over %llu tuples | %s over %llu tuples | %s over %llu tuples | %s "
      "| %s (sum %s: %llu matches, %.0f expected, %zu tuples; heaviest: account %llu, %s) | %d / "
      "%d of %d | %d of %llu / %d of %llu | %d of %llu / %d of %llu |\n",
      r.label.c_str(), static_cast<unsigned long long>(r.training_tokens),
      static_cast<unsigned long long>(r.watermarked_tokens),
      r.answers.provider.p_value.ToString().c_str(),
      static_cast<unsigned long long>(r.answers.provider.tuples),
      r.answers.provider_seen.p_value.ToString().c_str(),
      static_cast<unsigned long long>(r.answers.provider_seen.tuples),
      r.white_box.p_value.ToString().c_str(), static_cast<unsigned long long>(r.white_box.tuples),
      r.white_box_lower.ToString().c_str(), r.canary.cluster.combined_p.ToString().c_str(),
      r.canary.cluster.p.ToString().c_str(),
      static_cast<unsigned long long>(r.canary.cluster.matches), r.canary.cluster.expected,
      r.canary.tuples, static_cast<unsigned long long>(r.canary.cluster.best_account),
      r.canary.cluster.best_member_p.ToString().c_str(), r.canary.cohorts_below_cluster,
      r.canary.cohorts_below_1e3, s.f.cohorts, r.fingerprint.cluster,
      static_cast<unsigned long long>(s.f.cluster), r.fingerprint.honest,
      static_cast<unsigned long long>(honest), r.canary.cluster_at_01,
      static_cast<unsigned long long>(s.f.cluster), r.canary.honest_at_01,
      static_cast<unsigned long long>(honest));
  std::fflush(stdout);
}

nlohmann::json RowJson(const StudentResult& r) {
  const CanaryTests& c = r.canary;
  return {{"label", r.label},
          {"share", r.share},
          {"training_tokens", r.training_tokens},
          {"watermarked_tokens", r.watermarked_tokens},
          {"provider_log10_p", r.answers.provider.p_value.log10()},
          {"provider_tuples", r.answers.provider.tuples},
          {"provider_seen_windows_log10_p", r.answers.provider_seen.p_value.log10()},
          {"provider_seen_windows_tuples", r.answers.provider_seen.tuples},
          {"by_queries", r.answers.by_queries},
          {"provider_white_box_log10_p", r.white_box.p_value.log10()},
          {"provider_white_box_tuples", r.white_box.tuples},
          {"provider_white_box_lower_tail_log10_p", r.white_box_lower.log10()},
          {"canary_cluster_log10_p", c.cluster.combined_p.log10()},
          {"canary_cluster_sum_log10_p", c.cluster.p.log10()},
          {"canary_cluster_heaviest_account", c.cluster.best_account},
          {"canary_cluster_heaviest_log10_p", c.cluster.best_member_p.log10()},
          {"canary_cluster_matches", c.cluster.matches},
          {"canary_cluster_expected", c.cluster.expected},
          {"canary_tuples", c.tuples},
          {"canary_best_account", c.single.top[0].account},
          {"canary_best_account_corrected_log10_p", c.single.corrected.log10()},
          {"canary_cluster_accounts_at_0.01", c.cluster_at_01},
          {"canary_honest_accounts_at_0.01", c.honest_at_01},
          {"honest_cohorts_at_or_below_cluster_p", c.cohorts_below_cluster},
          {"honest_cohorts_at_1e-3", c.cohorts_below_1e3},
          {"fingerprint_cluster_accused_1e-3", r.fingerprint.cluster},
          {"fingerprint_honest_accused_1e-3", r.fingerprint.honest}};
}

// Every test on one student; prints its row and adds it to the JSON (and, for the control's
// plain student with --null-keys, the white-box null).
void TestStudent(Study* s, const std::string& label, double share, const ShareData& sd,
                 uint64_t training_tokens, const StudentOutput& so) {
  StudentResult r;
  r.label = label;
  r.share = share;
  r.training_tokens = training_tokens;
  r.watermarked_tokens = sd.wm_tokens;
  r.white_box = WhiteBoxTest(*s->det, so.argmax_tuples, s->h);
  const auto wb_green = static_cast<uint64_t>(r.white_box.score);
  r.white_box_lower = tmk::stats::BinomialUpperTail(r.white_box.tuples - wb_green,
                                                    r.white_box.tuples, 1 - s->config.kgw.gamma);
  if (share == 0 && s->f.null_keys > 0 && label.find(',') == std::string::npos) {
    s->out["white_box_null"] = WhiteBoxNull(*s, so.argmax_tuples);
  }
  r.answers = TestAnswers(*s, label, sd, so);
  r.canary = TestCanaries(*s, label, r.answers.canary);
  r.fingerprint = FingerprintAccusations(*s, r.answers.stats);
  PrintRow(*s, r);
  s->out["rows"].push_back(RowJson(r));
}

// ---- 4. The student: an n-gram model trained here, or a GPU student (--student-from) ----

// White-box: at each seen window, the student's most likely next token (a function of the
// student alone, so green with probability exactly gamma under the null), after `adjust`.
std::vector<Ids> ArgmaxAtWindows(const Study& s, const tmk::refmodel::KneserNeyModel& student,
                                 const ShareData& sd, const Adjust& adjust) {
  std::vector<Ids> argmax_tuples(sd.windows.size());
  ParallelFor(static_cast<int>(sd.windows.size()), s.f.threads, [&](int w) {
    thread_local std::vector<float> lp;
    lp.resize(static_cast<size_t>(student.vocab_size()));
    const Ids& window = sd.windows[static_cast<size_t>(w)];
    student.LogProbs(window, absl::MakeSpan(lp));
    if (adjust) adjust(window, absl::MakeSpan(lp));
    Ids one = window;
    one.push_back(static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin()));
    argmax_tuples[static_cast<size_t>(w)] = std::move(one);
  });
  return argmax_tuples;
}

// Black-box queries: the student sampled (plain, after `adjust`) on --queries suite prefixes.
void QueryStudent(const Study& s, const tmk::refmodel::KneserNeyModel& student,
                  const Adjust& adjust, StudentOutput* so) {
  const tmk::reference::ReferenceGenerator gen(&student, &s.tok());
  so->answers.resize(static_cast<size_t>(s.f.queries));
  so->texts.resize(so->answers.size());
  so->prefixes.resize(so->answers.size());
  ParallelFor(s.f.queries, s.f.threads, [&](int q) {
    const auto& p = s.suite[static_cast<size_t>(q) % s.suite.size()];
    tmk::reference::GenerateOptions o;
    o.max_tokens = s.f.tokens;
    o.seed = Hash(static_cast<uint64_t>(q), 3);
    o.logit_adjust = adjust;
    auto g = gen.Generate(p.prefix, nullptr, nullptr, o);
    if (!g.ok()) std::abort();
    so->answers[static_cast<size_t>(q)] = {g->AllIds(), g->prompt_ids.size()};
    so->texts[static_cast<size_t>(q)] = g->text;
    so->prefixes[static_cast<size_t>(q)] = p.prefix;
  });
}

// A uint32 little-endian file of the GPU variant (whole words; a trailing partial one is
// ignored).
absl::StatusOr<std::vector<uint32_t>> ReadU32(const std::string& path) {
  auto bytes = tmk::base::ReadFile(path, "GPU student file");
  if (!bytes.ok()) return bytes.status();
  std::vector<uint32_t> v(bytes->size() / sizeof(uint32_t));
  if (!v.empty()) std::memcpy(v.data(), bytes->data(), v.size() * sizeof(uint32_t));
  return v;
}

// The GPU student's white-box argmax at the exported windows (h + 1 ids each: the window, then
// the token), checked against this run's windows.
absl::StatusOr<std::vector<Ids>> ReadWhiteBox(const Study& s, double share, const ShareData& sd) {
  auto wb = ReadU32(absl::StrFormat("%s/whitebox-%g.u32", s.f.student_from, share));
  if (!wb.ok()) return wb.status();
  if (wb->size() != sd.windows.size() * (s.h + 1)) {
    return absl::FailedPreconditionError("white-box file does not match the exported windows");
  }
  std::vector<Ids> argmax_tuples(sd.windows.size());
  for (size_t w = 0; w < sd.windows.size(); ++w) {
    for (size_t j = 0; j <= s.h; ++j) {
      argmax_tuples[w].push_back(static_cast<int32_t>((*wb)[w * (s.h + 1) + j]));
    }
    if (!std::equal(sd.windows[w].begin(), sd.windows[w].end(), argmax_tuples[w].begin())) {
      return absl::FailedPreconditionError("white-box windows differ from this run's");
    }
  }
  return argmax_tuples;
}

// The GPU student's answers to the exported prompts: [prompt length, prompt, answer length,
// answer] per query, uint32 each.
absl::Status ReadAnswers(const Study& s, double share, StudentOutput* so) {
  auto ans = ReadU32(absl::StrFormat("%s/answers-%g.u32", s.f.student_from, share));
  if (!ans.ok()) return ans.status();
  for (size_t pos = 0; pos < ans->size();) {
    Doc d;
    const uint32_t np = (*ans)[pos++];
    d.ids.assign(ans->begin() + static_cast<ptrdiff_t>(pos),
                 ans->begin() + static_cast<ptrdiff_t>(pos + np));
    pos += np;
    const uint32_t na = (*ans)[pos++];
    Ids a(ans->begin() + static_cast<ptrdiff_t>(pos),
          ans->begin() + static_cast<ptrdiff_t>(pos + na));
    pos += na;
    d.prompt = np;
    d.ids.insert(d.ids.end(), a.begin(), a.end());
    auto text = s.tok().Decode(a);
    if (!text.ok()) return text.status();
    so->texts.push_back(*std::move(text));
    so->prefixes.push_back(s.suite[so->answers.size() % s.suite.size()].prefix);
    so->answers.push_back(std::move(d));
  }
  return absl::OkStatus();
}

// Trains a student on `docs` (or reads the GPU student of --student-from) and runs every test
// on it; `adjust` is the targeted attack's logit change. `save`: --save-students applies.
absl::Status Evaluate(Study* s, const std::string& label, double share, const ShareData& sd,
                      const std::vector<Ids>& docs, uint64_t training_tokens, const Adjust& adjust,
                      bool save) {
  StudentOutput so;
  if (!s->f.student_from.empty()) {
    auto argmax = ReadWhiteBox(*s, share, sd);
    if (!argmax.ok()) return argmax.status();
    so.argmax_tuples = *std::move(argmax);
    if (auto st = ReadAnswers(*s, share, &so); !st.ok()) return st;
    TestStudent(s, label + " (GPU student)", share, sd, sd.wm_tokens + sd.clean_tokens, so);
    return absl::OkStatus();
  }
  auto student = tmk::refmodel::KneserNeyModel::Train(docs, s->tok().vocab_size(), 4);
  if (!student.ok()) return student.status();
  if (save && !s->f.save_students.empty()) {
    const std::string path = absl::StrFormat("%s/student-%g.bin", s->f.save_students, share);
    if (auto st = student->Save(path); !st.ok()) return st;
    std::fprintf(stderr, "  wrote %s\n", path.c_str());
  }
  so.argmax_tuples = ArgmaxAtWindows(*s, *student, sd, adjust);
  QueryStudent(*s, *student, adjust, &so);
  TestStudent(s, label, share, sd, training_tokens, so);
  return absl::OkStatus();
}

// ---- The GPU variant's inputs (--export) ----

// uint32 little-endian. False on failure.
bool WriteU32(const std::string& path, const std::vector<uint32_t>& v) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(v.data()),
             static_cast<std::streamsize>(v.size() * sizeof(uint32_t)));
  return static_cast<bool>(file);
}

// One share's training documents (each preceded by the separator 0xFFFFFFFF) and white-box
// windows (h ids each).
bool ExportShare(const Study& s, double share) {
  const ShareData sd = BuildShare(s, share);
  std::vector<uint32_t> train, windows;
  for (const auto& d : sd.docs) {
    train.push_back(0xFFFFFFFFu);
    train.insert(train.end(), d.begin(), d.end());
  }
  for (const auto& w : sd.windows) windows.insert(windows.end(), w.begin(), w.end());
  if (!WriteU32(absl::StrFormat("%s/train-%g.u32", s.f.export_dir, share), train) ||
      !WriteU32(absl::StrFormat("%s/windows-%g.u32", s.f.export_dir, share), windows)) {
    return std::cerr << "cannot write to " << s.f.export_dir << "\n", false;
  }
  std::fprintf(stderr, "  exported share %g: %zu training tokens, %zu windows\n", share,
               train.size(), sd.windows.size());
  return true;
}

// Every share's files, the query prompts ([length, ids] each) and meta.json; the exit status.
int Export(const Study& s) {
  for (double share : s.shares) {
    if (!ExportShare(s, share)) return 1;
  }
  std::vector<uint32_t> prompts;
  for (int q = 0; q < s.f.queries; ++q) {
    auto ids = s.tok().Encode(s.suite[static_cast<size_t>(q) % s.suite.size()].prefix);
    if (!ids.ok()) return std::cerr << ids.status() << "\n", 1;
    prompts.push_back(static_cast<uint32_t>(ids->size()));
    prompts.insert(prompts.end(), ids->begin(), ids->end());
  }
  if (!WriteU32(s.f.export_dir + "/prompts.u32", prompts)) return 1;
  nlohmann::json meta = {{"vocab_size", s.tok().vocab_size()},
                         {"h", s.h},
                         {"shares", s.shares},
                         {"queries", s.f.queries},
                         {"tokens", s.f.tokens},
                         {"budget", s.f.budget},
                         {"separator", 0xFFFFFFFFu}};
  std::ofstream(s.f.export_dir + "/meta.json") << meta.dump(2) << "\n";
  return 0;
}

// ---- Attacks on the student and its data ----

// Untargeted paraphrase of 30 % of the harvested text: in every harvested answer, each chunk of
// 10 tokens is, with probability 0.3 (a keyed draw), rewritten by the teacher without
// watermark, conditioned on what precedes it (rewritten or not). Rewrites docs[0 .. harvested).
void Paraphrase(const Study& s, const ShareData& sd, std::vector<Ids>* docs) {
  const tmk::reference::ReferenceGenerator teacher(s.data.model.get(), &s.tok());
  std::atomic<uint64_t> rewritten{0};
  ParallelFor(static_cast<int>(sd.harvested), s.f.threads, [&](int di) {
    const Ids& orig = sd.docs[static_cast<size_t>(di)];
    const size_t prompt = s.harvest[static_cast<size_t>(di)].prompt;
    Ids ids(orig.begin(), orig.begin() + static_cast<ptrdiff_t>(prompt));
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
    (*docs)[static_cast<size_t>(di)] = std::move(ids);
  });
  std::fprintf(stderr, "  paraphrase: %llu of %llu harvested tokens rewritten\n",
               static_cast<unsigned long long>(rewritten.load()),
               static_cast<unsigned long long>(sd.wm_tokens));
}

// Continued training on clean text the student has not seen: for an n-gram student, its counts
// grow by the new text's. Returns the tokens added.
uint64_t ContinueTraining(const Study& s, const ShareData& sd, std::vector<Ids>* docs) {
  uint64_t added = 0;
  for (size_t i = sd.next_clean; i < s.clean.size() && added < s.f.continue_tokens; ++i) {
    docs->push_back(s.CleanDoc(i));
    added += 256;
  }
  return added;
}

// The targeted attacker's own clean model: clean documents from the end of the keyed order (the
// students' come from its start), --budget tokens.
const tmk::refmodel::KneserNeyModel& AttackerModel(Study* s) {
  if (!s->attacker_model) {
    std::vector<Ids> own;
    for (size_t i = 0; i < s->clean.size() && own.size() * 256 < s->f.budget; ++i) {
      own.push_back(s->CleanDoc(s->clean.size() - 1 - i));
    }
    s->attacker_model = std::make_unique<tmk::refmodel::KneserNeyModel>(
        *tmk::refmodel::KneserNeyModel::Train(own, s->tok().vocab_size(), 4));
  }
  return *s->attacker_model;
}

// The green lists as the attacker estimates them from the harvested text: after each window
// (by its WindowKey), the tokens that follow it more often than the attacker's clean model says.
using GreenTable = absl::flat_hash_map<uint64_t, std::vector<int32_t>>;

std::shared_ptr<GreenTable> EstimateGreen(const Study& s, const ShareData& sd,
                                          const tmk::refmodel::KneserNeyModel& attacker) {
  absl::flat_hash_map<uint64_t, absl::flat_hash_map<int32_t, uint32_t>> counts;
  absl::flat_hash_map<uint64_t, Ids> window_ids;
  for (size_t di = 0; di < sd.harvested; ++di) {
    const Ids& ids = sd.docs[di];
    for (size_t i = std::max(s.harvest[di].prompt, s.h); i < ids.size(); ++i) {
      const uint64_t k = SeenWindows::WindowKey(ids, i, s.h);
      counts[k][ids[i]]++;
      if (!window_ids.contains(k)) {
        window_ids[k].assign(ids.begin() + static_cast<ptrdiff_t>(i - s.h),
                             ids.begin() + static_cast<ptrdiff_t>(i));
      }
    }
  }
  auto table = std::make_shared<GreenTable>();
  uint64_t estimated = 0;
  for (const auto& [k, next] : counts) {
    uint32_t n = 0;
    for (const auto& [t, c] : next) n += c;
    for (const auto& [t, c] : next) {
      const double p_clean = std::exp(attacker.LogProb(window_ids[k], t));
      if (static_cast<double>(c) / n > p_clean) {
        (*table)[k].push_back(t);
        ++estimated;
      }
    }
  }
  std::fprintf(stderr, "  neutralise: %llu (window, token) pairs estimated green at %zu windows\n",
               static_cast<unsigned long long>(estimated), table->size());
  return table;
}

// Targeted neutralisation: the estimated green tokens after each window lowered by
// --neutralise-delta at inference.
Adjust Neutraliser(Study* s, const ShareData& sd) {
  const std::shared_ptr<const GreenTable> table = EstimateGreen(*s, sd, AttackerModel(s));
  const double delta = s->f.neutralise_delta;
  const size_t h = s->h;
  return [table, delta, h](absl::Span<const int32_t> history, absl::Span<float> logits) {
    if (history.size() < h) return;
    const auto it = table->find(SeenWindows::WindowKey(history, history.size(), h));
    if (it == table->end()) return;
    for (int32_t t : it->second) logits[static_cast<size_t>(t)] -= static_cast<float>(delta);
  };
}

// One attacked student's training documents, tokens and inference-time change.
struct AttackedStudent {
  std::string label;
  std::vector<Ids> docs;
  uint64_t training_tokens = 0;
  Adjust adjust;
};

bool IsAttack(const std::string& attack) {
  return attack == "paraphrase" || attack == "continued" || attack == "neutralise";
}

AttackedStudent Attack(Study* s, double share, const ShareData& sd, const std::string& attack) {
  const std::string at = absl::StrFormat("%g %%", 100 * share);
  AttackedStudent a{"", sd.docs, sd.wm_tokens + sd.clean_tokens, nullptr};
  if (attack == "paraphrase") {
    a.label = absl::StrFormat("%s, 30 %% paraphrased", at);
    Paraphrase(*s, sd, &a.docs);
  } else if (attack == "continued") {
    a.label = absl::StrFormat("%s, then %llu clean tokens more", at,
                              static_cast<unsigned long long>(s->f.continue_tokens));
    a.training_tokens += ContinueTraining(*s, sd, &a.docs);
  } else {
    a.label =
        absl::StrFormat("%s, neutralised (estimated green lists, -%g)", at, s->f.neutralise_delta);
    a.adjust = Neutraliser(s, sd);
  }
  return a;
}

// ---- The runs ----

void PrintHeader() {
  std::printf(
      "| student | training tokens (watermarked) | provider p | provider p, seen windows | "
      "provider p, white-box | white-box, lower tail | canary: cluster p | honest cohorts at <= "
      "cluster p / <= 1e-3 | fingerprint: cluster accused / honest accused (1e-3, corrected) | "
      "canary per account: cluster / honest at p <= 0.01 |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n");
}

// A student at each --shares share; the exit status.
int RunShares(Study* s) {
  for (double share : s->shares) {
    const ShareData sd = BuildShare(*s, share);
    if (auto st = Evaluate(s, absl::StrFormat("%g %%", 100 * share), share, sd, sd.docs,
                           sd.wm_tokens + sd.clean_tokens, nullptr, true);
        !st.ok()) {
      return std::cerr << st << "\n", 1;
    }
  }
  return 0;
}

// Each attack on the student of each --attack-shares share; the exit status.
int RunAttacks(Study* s) {
  for (double share : s->attack_shares) {
    const ShareData sd = BuildShare(*s, share);
    for (const std::string& attack : s->attacks) {
      if (!IsAttack(attack)) {
        std::cerr << "unknown attack '" << attack << "' (paraphrase, continued, neutralise)\n";
        return 2;
      }
      const AttackedStudent a = Attack(s, share, sd, attack);
      if (auto st = Evaluate(s, a.label, share, sd, a.docs, a.training_tokens, a.adjust, false);
          !st.ok()) {
        return std::cerr << st << "\n", 1;
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  AddFlags(&f, &flags);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  Study s;
  if (auto st = SetUp(f, &s); !st.ok()) return std::cerr << st << "\n", 1;
  DeriveKeys(&s);
  s.harvest = Harvest(s);
  s.clean = CleanDocuments(s.data.corpus);
  if (!f.write_harvest.empty() && !WriteHarvest(s, f.write_harvest)) return 1;
  if (!f.export_dir.empty()) return Export(s);
  PrintHeader();
  if (const int rc = RunShares(&s); rc != 0) return rc;
  if (const int rc = RunAttacks(&s); rc != 0) return rc;
  if (!f.out.empty()) std::ofstream(f.out) << s.out.dump(2) << "\n";
  return 0;
}
