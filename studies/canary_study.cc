// Canary-phrasing study with the reference model (docs/canary.md).
//
//  rate:        G generations of T tokens, canary off and on (with and without the watermark):
//               canary events per 1,000 generated tokens, how many match the account's keyed
//               choice, and the median perplexity under the plain model;
//  attribution: for A target accounts among N, answers of T tokens served to each, accumulated
//               until the account's canary test, Bonferroni-corrected over the N accounts, reaches
//               p <= 1e-9 with the right account on top: answers and tokens needed;
//  null:        D documents served to accounts outside the N tested (other accounts' outputs),
//               each tested among the N, then pooled 100 at a time and tested again; and, with
//               --clean FILE (JSON Lines with a "text" field, e.g. the validity corpus), every
//               clean document tested among the N: false attributions at 1e-3, 1e-6 and 1e-9;
//  keys:        R fresh master keys; under each, the dataset-level attribution among N issued
//               accounts (for each N of --account-counts) on every clean dataset of --datasets
//               (JSON Lines with a "text" field, or any file as one document; --max-docs caps
//               each), as a scan does it: the corrected p-values' counts at 0.01 ... 0.5 against
//               the bound and the exact null, Clopper-Pearson intervals and KS statistics; the
//               same for account 0's uncorrected p-value. Needs only the tokenizer, not the model.
//
//   build-rel/studies/canary_study --study rate --generations 200 --tokens 300
//   build-rel/studies/canary_study --study attribution --targets 20 --tokens 300
//   build-rel/studies/canary_study --study null --docs 100000 --tokens 200 --clean FILE
//   build-rel/studies/canary_study --study keys --fresh-keys 400 --datasets A.jsonl,B.jsonl
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "study_common.h"
#include "tracemark/base/read_file.h"
#include "tracemark/canary/evidence.h"
#include "tracemark/canary/processor.h"
#include "tracemark/canary/suite.h"
#include "tracemark/watermark/watermarker.h"

namespace tmk = tracemark;
using tmk::study::Hash;
using tmk::study::KeyFrom;
using tmk::study::ParallelFor;
using tmk::study::Quantile;

namespace {

struct Flags {
  std::string study = "rate";
  std::string data_dir = TRACEMARK_DATA_DIR;
  std::string out;
  std::string clean;
  std::string prompts = "corpus";  // or "suite": the elicitation suite's prefixes
  int generations = 200;
  int tokens = 300;
  int targets = 20;
  int max_answers = 200;
  int docs = 100000;
  int threads = 2;
  uint64_t accounts = 25000;
  // keys
  std::string datasets;  // comma-separated files
  std::string account_counts = "1000,25";
  int fresh_keys = 400;
  uint64_t key_seed = 0;  // 0: random fresh keys
  uint64_t max_docs = 0;  // per dataset; 0: all
};

struct Setup {
  tmk::study::StudyData data;
  std::vector<std::vector<int32_t>> suite;  // tokenised suite prefixes (--prompts suite)
  std::unique_ptr<tmk::watermark::Watermarker> wm;
  std::unique_ptr<tmk::canary::CanaryProcessor> proc;
  std::optional<tmk::watermark::Key> epoch;
};

// Prompt `i`: 16 corpus tokens, or the suite's prefix i (cycling) with --prompts suite.
std::vector<int32_t> PromptFor(const Setup& s, uint64_t i) {
  if (!s.suite.empty()) return s.suite[i % s.suite.size()];
  return s.data.corpus.Prompt(i, 16);
}

tmk::reference::GenerateOptions Options(const Flags& f, uint64_t seed) {
  tmk::reference::GenerateOptions o;
  o.max_tokens = f.tokens;
  o.seed = seed;
  return o;
}

std::vector<tmk::canary::Event> Events(const Setup& s, const tmk::reference::Generation& g) {
  const std::string prompt = *s.data.tok->Decode(g.prompt_ids);
  return tmk::canary::ExtractEvents(g.text, s.proc->lexicon(), s.proc->active_forms(), prompt);
}

int Rate(const Flags& f, const Setup& s, nlohmann::json* out) {
  const tmk::reference::ReferenceGenerator gen(s.data.model.get(), s.data.tok.get());
  struct Variant {
    const char* name;
    bool watermark, canary;
  };
  const Variant variants[] = {{"plain", false, false},
                              {"canary", false, true},
                              {"watermark", true, false},
                              {"watermark+canary", true, true}};
  for (const Variant& v : variants) {
    std::vector<double> ppl(static_cast<size_t>(f.generations));
    std::vector<uint64_t> events(ppl.size()), matches(ppl.size()), moved(ppl.size());
    ParallelFor(f.generations, f.threads, [&](int i) {
      const auto account = static_cast<uint64_t>(i);
      auto keys = s.wm->ForAccount(account);
      const tmk::canary::CanaryKey ck = tmk::canary::CanaryKey::FromAccountKeys(*keys);
      tmk::reference::GenerateOptions o = Options(f, static_cast<uint64_t>(i) + 1);
      if (v.canary) {
        o.canary = s.proc.get();
      }
      auto g = gen.GenerateIds(PromptFor(s, static_cast<uint64_t>(i)),
                               v.watermark ? s.wm.get() : nullptr,
                               v.canary || v.watermark ? &*keys : nullptr, o);
      if (!g.ok()) std::abort();
      const auto ev = Events(s, *g);
      const auto idx = static_cast<size_t>(i);
      events[idx] = ev.size();
      for (const auto& e : ev) {
        const auto k = static_cast<uint32_t>(s.proc->lexicon().sets()[e.set].members.size());
        matches[idx] += ck.Choice(e.set, k, e.context) == e.member;
      }
      moved[idx] = g->canary_moves;
      ppl[idx] = s.data.model->Perplexity(g->AllIds(), g->prompt_ids.size());
    });
    uint64_t ev = 0, m = 0, mv = 0;
    for (size_t i = 0; i < ppl.size(); ++i) ev += events[i], m += matches[i], mv += moved[i];
    const double tokens = static_cast<double>(f.generations) * f.tokens;
    const double per_k = 1000.0 * static_cast<double>(ev) / tokens;
    std::printf(
        "%-17s events/1k tokens %.2f, matching the key %.1f %%, steps moved/1k %.1f, "
        "perplexity median %.2f\n",
        v.name, per_k, ev ? 100.0 * static_cast<double>(m) / static_cast<double>(ev) : 0.0,
        1000.0 * static_cast<double>(mv) / tokens, Quantile(ppl, 0.5));
    std::fflush(stdout);
    (*out)["variants"][v.name] = {
        {"events_per_1k_tokens", per_k},
        {"events", ev},
        {"matching_key", m},
        {"steps_moved_per_1k_tokens", 1000.0 * static_cast<double>(mv) / tokens},
        {"perplexity_median", Quantile(ppl, 0.5)},
        {"perplexity_p90", Quantile(ppl, 0.9)}};
  }
  return 0;
}

// Canary keys of accounts 0..n-1 under `epoch` (the real derivation).
std::vector<tmk::canary::CanaryKey> CanaryKeys(const tmk::watermark::Key& epoch, uint64_t n,
                                               int threads) {
  std::vector<std::optional<tmk::canary::CanaryKey>> keys(n);
  ParallelFor(static_cast<int>(n), threads, [&](int i) {
    keys[static_cast<size_t>(i)] = *tmk::canary::CanaryKey::Derive(epoch, static_cast<uint64_t>(i));
  });
  std::vector<tmk::canary::CanaryKey> out;
  for (auto& k : keys) out.push_back(*k);
  return out;
}

// Canary keys of accounts 0..n-1 under the study's epoch key.
std::vector<tmk::canary::CanaryKey> KeysOf(const Setup& s, uint64_t n, int threads) {
  return CanaryKeys(*s.epoch, n, threads);
}

int Attribution(const Flags& f, const Setup& s, nlohmann::json* out) {
  const auto keys = KeysOf(s, f.accounts, f.threads);
  const tmk::reference::ReferenceGenerator gen(s.data.model.get(), s.data.tok.get());
  std::vector<double> answers(static_cast<size_t>(f.targets), NAN), tokens(answers.size(), NAN);
  std::vector<uint64_t> tuples(answers.size());
  std::atomic<int> wrong_top{0};
  ParallelFor(f.targets, f.threads, [&](int t) {
    const uint64_t account = Hash(static_cast<uint64_t>(t), 3) % f.accounts;
    auto wk = s.wm->ForAccount(account);
    tmk::canary::CanaryStatistics stats;
    uint64_t total_tokens = 0;
    for (int a = 1; a <= f.max_answers; ++a) {
      tmk::reference::GenerateOptions o =
          Options(f, Hash(static_cast<uint64_t>(t), static_cast<uint64_t>(a)));
      o.canary = s.proc.get();
      auto g = gen.GenerateIds(
          PromptFor(s, Hash(static_cast<uint64_t>(t), 1000u + static_cast<uint64_t>(a))),
          s.wm.get(), &*wk, o);
      if (!g.ok()) std::abort();
      stats.Add(Events(s, *g));
      total_tokens += g->ids.size();
      const auto tup = stats.Tuples(s.proc->lexicon());
      const tmk::canary::CanaryAttribution at = tmk::canary::AttributeAmong(tup, keys, 1, 1);
      if (at.corrected.log10() <= -9) {
        if (at.top[0].account != account) ++wrong_top;
        answers[static_cast<size_t>(t)] = a;
        tokens[static_cast<size_t>(t)] = static_cast<double>(total_tokens);
        tuples[static_cast<size_t>(t)] = tup.size();
        break;
      }
    }
  });
  int reached = 0;
  for (double a : answers) reached += !std::isnan(a);
  std::vector<double> a_ok, t_ok;
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!std::isnan(answers[i])) a_ok.push_back(answers[i]), t_ok.push_back(tokens[i]);
  }
  std::printf(
      "attribution among %llu accounts at corrected p <= 1e-9: %d of %d targets within %d "
      "answers of %d tokens; answers median %.0f p90 %.0f; tokens median %.0f p90 %.0f; "
      "wrong account on top: %d\n",
      static_cast<unsigned long long>(f.accounts), reached, f.targets, f.max_answers, f.tokens,
      Quantile(a_ok, 0.5), Quantile(a_ok, 0.9), Quantile(t_ok, 0.5), Quantile(t_ok, 0.9),
      wrong_top.load());
  (*out)["attribution"] = {{"accounts", f.accounts},
                           {"targets", f.targets},
                           {"reached", reached},
                           {"answers_median", Quantile(a_ok, 0.5)},
                           {"answers_p90", Quantile(a_ok, 0.9)},
                           {"tokens_median", Quantile(t_ok, 0.5)},
                           {"tokens_p90", Quantile(t_ok, 0.9)},
                           {"tuples_at_success", tuples},
                           {"wrong_account_on_top", wrong_top.load()}};
  return 0;
}

// Calibration: every (text, account) test's uncorrected p-value, counted at each level; a valid
// test has at most level x tests at or below each level.
struct Calibration {
  static constexpr int kLevels = 5;  // 1e-2 .. 1e-6
  uint64_t tests = 0;
  uint64_t at[kLevels] = {0, 0, 0, 0, 0};
  void AddAll(absl::Span<const tmk::canary::Tuple> tuples,
              const std::vector<tmk::canary::CanaryKey>& keys) {
    const tmk::stats::BinomialSum null = tmk::canary::NullOfMatches(tuples);
    for (const auto& k : keys) {
      const double l = null.UpperTail(tmk::canary::CountMatches(tuples, k)).log10();
      ++tests;
      for (int i = 0; i < kLevels; ++i) at[i] += l <= -(i + 2);
    }
  }
  void Merge(const Calibration& o) {
    tests += o.tests;
    for (int i = 0; i < kLevels; ++i) at[i] += o.at[i];
  }
  nlohmann::json Json() const {
    nlohmann::json j = {{"tests", tests}};
    for (int i = 0; i < kLevels; ++i) {
      j[absl::StrFormat("at_1e-%d", i + 2)] = at[i];
      j[absl::StrFormat("expected_at_most_1e-%d", i + 2)] =
          static_cast<double>(tests) * std::pow(10.0, -(i + 2));
    }
    return j;
  }
  void Print(const char* what) const {
    std::printf("%-34s %llu (text, account) tests; uncorrected p <=", what,
                static_cast<unsigned long long>(tests));
    for (int i = 0; i < kLevels; ++i) {
      std::printf(" 1e-%d: %llu (<= %.0f)", i + 2, static_cast<unsigned long long>(at[i]),
                  static_cast<double>(tests) * std::pow(10.0, -(i + 2)));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
};

struct NullCounts {
  uint64_t tested = 0, at3 = 0, at6 = 0, at9 = 0, tuples = 0;
  double min_log10 = 0;
  void Add(const tmk::canary::CanaryAttribution& a, size_t n_tuples) {
    ++tested;
    tuples += n_tuples;
    const double l = a.corrected.log10();
    at3 += l <= -3;
    at6 += l <= -6;
    at9 += l <= -9;
    min_log10 = std::min(min_log10, l);
  }
  void Merge(const NullCounts& o) {
    tested += o.tested, at3 += o.at3, at6 += o.at6, at9 += o.at9, tuples += o.tuples;
    min_log10 = std::min(min_log10, o.min_log10);
  }
  nlohmann::json Json() const {
    return {{"tested", tested},       {"attributed_1e-3", at3},
            {"attributed_1e-6", at6}, {"attributed_1e-9", at9},
            {"tuples", tuples},       {"min_corrected_log10_p", min_log10}};
  }
  void Print(const char* what) const {
    std::printf(
        "%-34s %8llu tested (%.1f tuples each): attributed at 1e-3 %llu, 1e-6 %llu, "
        "1e-9 %llu; smallest corrected p 1e%.1f\n",
        what, static_cast<unsigned long long>(tested),
        tested ? static_cast<double>(tuples) / static_cast<double>(tested) : 0.0,
        static_cast<unsigned long long>(at3), static_cast<unsigned long long>(at6),
        static_cast<unsigned long long>(at9), min_log10);
    std::fflush(stdout);
  }
};

// The other accounts' documents (accounts outside the N tested), kPool to a pool: each document
// tested among the N (`single`), each pool tested among them (`pooled`) and every account's
// p-value on each pool counted (`calibration`).
struct OtherAccountsNull {
  static constexpr int kPool = 100;
  NullCounts single, pooled;
  Calibration calibration;
};

// Pool p of the other accounts' documents: documents p x kPool .. (p + 1) x kPool - 1, each
// served to an account of its own, never among the N tested.
void TestOtherAccountsPool(const Flags& f, const Setup& s,
                           const std::vector<tmk::canary::CanaryKey>& keys, int p,
                           OtherAccountsNull* local) {
  const tmk::reference::ReferenceGenerator gen(s.data.model.get(), s.data.tok.get());
  constexpr int kPool = OtherAccountsNull::kPool;
  tmk::canary::CanaryStatistics pool_stats;
  for (int d = 0; d < kPool; ++d) {
    const uint64_t doc = static_cast<uint64_t>(p) * kPool + static_cast<uint64_t>(d);
    const uint64_t account = f.accounts + doc;  // never among the accounts tested
    auto wk = s.wm->ForAccount(account);
    tmk::reference::GenerateOptions o = Options(f, doc + 1);
    o.canary = s.proc.get();
    auto g = gen.GenerateIds(s.data.corpus.Prompt(doc, 16), s.wm.get(), &*wk, o);
    if (!g.ok()) std::abort();
    tmk::canary::CanaryStatistics st;
    st.Add(Events(s, *g));
    pool_stats.Merge(st);
    const auto tup = st.Tuples(s.proc->lexicon());
    local->single.Add(tmk::canary::AttributeAmong(tup, keys, 1, 1), tup.size());
  }
  const auto tup = pool_stats.Tuples(s.proc->lexicon());
  local->pooled.Add(tmk::canary::AttributeAmong(tup, keys, 1, 1), tup.size());
  local->calibration.AddAll(tup, keys);
}

void NullOtherAccounts(const Flags& f, const Setup& s,
                       const std::vector<tmk::canary::CanaryKey>& keys, nlohmann::json* out) {
  const int pools = f.docs / OtherAccountsNull::kPool;
  std::mutex mu;
  OtherAccountsNull all;
  std::atomic<int> done{0};
  ParallelFor(pools, f.threads, [&](int p) {
    OtherAccountsNull local;
    TestOtherAccountsPool(f, s, keys, p, &local);
    std::lock_guard<std::mutex> lock(mu);
    all.calibration.Merge(local.calibration);
    all.single.Merge(local.single);
    all.pooled.Merge(local.pooled);
    if (++done % 50 == 0) std::fprintf(stderr, "  %d of %d pools\n", done.load(), pools);
  });
  all.single.Print("other accounts' documents");
  all.pooled.Print("pooled by 100 (other accounts)");
  all.calibration.Print("pooled by 100, every account");
  (*out)["other_accounts"] = all.single.Json();
  (*out)["other_accounts_pooled_100"] = all.pooled.Json();
  (*out)["other_accounts_pooled_100_calibration"] = all.calibration.Json();
}

// The "text" field of each line of a JSON Lines file (lines without one are skipped); nullopt
// when the file cannot be read.
std::optional<std::vector<std::string>> ReadTexts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("text") && j["text"].is_string()) texts.push_back(j["text"]);
  }
  return texts;
}

// Every clean document tested among the N.
void NullCleanDocuments(const Flags& f, const Setup& s,
                        const std::vector<tmk::canary::CanaryKey>& keys,
                        const std::vector<std::string>& texts, nlohmann::json* out) {
  NullCounts clean;
  std::vector<std::optional<tmk::canary::CanaryAttribution>> results(texts.size());
  std::vector<size_t> sizes(texts.size());
  ParallelFor(static_cast<int>(texts.size()), f.threads, [&](int i) {
    tmk::canary::CanaryStatistics st;
    st.Add(tmk::canary::ExtractEvents(texts[static_cast<size_t>(i)], s.proc->lexicon(),
                                      s.proc->active_forms()));
    const auto tup = st.Tuples(s.proc->lexicon());
    sizes[static_cast<size_t>(i)] = tup.size();
    results[static_cast<size_t>(i)] = tmk::canary::AttributeAmong(tup, keys, 1, 1);
  });
  for (size_t i = 0; i < texts.size(); ++i) clean.Add(*results[i], sizes[i]);
  clean.Print("clean documents");
  (*out)["clean"] = clean.Json();
}

// Clean documents pooled 1,000 at a time (in corpus order), every account's p-value counted.
void NullCleanPooled(const Flags& f, const Setup& s,
                     const std::vector<tmk::canary::CanaryKey>& keys,
                     const std::vector<std::string>& texts, nlohmann::json* out) {
  constexpr size_t kCleanPool = 1000;
  const int clean_pools = static_cast<int>(texts.size() / kCleanPool);
  std::mutex mu;
  NullCounts clean_pooled;
  Calibration clean_cal;
  ParallelFor(clean_pools, f.threads, [&](int q) {
    tmk::canary::CanaryStatistics st;
    for (size_t i = static_cast<size_t>(q) * kCleanPool;
         i < (static_cast<size_t>(q) + 1) * kCleanPool; ++i) {
      st.Add(tmk::canary::ExtractEvents(texts[i], s.proc->lexicon(), s.proc->active_forms()));
    }
    const auto tup = st.Tuples(s.proc->lexicon());
    const auto at = tmk::canary::AttributeAmong(tup, keys, 1, 1);
    Calibration cal;
    cal.AddAll(tup, keys);
    std::lock_guard<std::mutex> lock(mu);
    clean_pooled.Add(at, tup.size());
    clean_cal.Merge(cal);
  });
  clean_pooled.Print("clean, pooled by 1,000");
  clean_cal.Print("clean pooled, every account");
  (*out)["clean_pooled_1000"] = clean_pooled.Json();
  (*out)["clean_pooled_1000_calibration"] = clean_cal.Json();
}

int Null(const Flags& f, const Setup& s, nlohmann::json* out) {
  const auto keys = KeysOf(s, f.accounts, f.threads);
  NullOtherAccounts(f, s, keys, out);
  if (f.clean.empty()) return 0;
  const auto texts = ReadTexts(f.clean);
  if (!texts) return std::cerr << "cannot read " << f.clean << "\n", 1;
  NullCleanDocuments(f, s, keys, *texts, out);
  NullCleanPooled(f, s, keys, *texts, out);
  return 0;
}

// ---- keys: validity of the corrected p-value over fresh keys on fixed clean datasets ----

// One clean dataset: every document's events pooled, as a scan pools them.
struct KeyDataset {
  std::string name;
  uint64_t docs = 0, events = 0;
  std::vector<tmk::canary::Tuple> tuples;
};

// A comma-separated list; empty items dropped.
std::vector<std::string> SplitList(const std::string& s) {
  return absl::StrSplit(s, ',', absl::SkipEmpty());
}

// JSON Lines with a "text" field (one document a line), or any other file as one document (read
// with base::ReadFile); at most `max_docs` documents (0: all).
absl::StatusOr<KeyDataset> ReadKeyDataset(const std::string& path, const Setup& s,
                                          uint64_t max_docs) {
  KeyDataset d;
  d.name = path.substr(path.find_last_of('/') + 1);
  tmk::canary::CanaryStatistics stats;
  auto add = [&](const std::string& text) {
    const auto ev = tmk::canary::ExtractEvents(text, s.proc->lexicon(), s.proc->active_forms());
    stats.Add(ev);
    ++d.docs;
  };
  const bool jsonl = path.size() > 6 && path.substr(path.size() - 6) == ".jsonl";
  if (!jsonl) {
    auto text = tmk::base::ReadFile(path, "dataset");
    if (!text.ok()) return text.status();
    add(*text);
  } else {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError("cannot read " + path);
    std::string line;
    while ((max_docs == 0 || d.docs < max_docs) && std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("text") && j["text"].is_string()) add(j["text"]);
    }
  }
  d.events = stats.events();
  d.tuples = stats.Tuples(s.proc->lexicon());
  return d;
}

// The r-th fresh master key: random (seed 0), or a reproducible one drawn from the seed.
tmk::watermark::Key FreshMaster(uint64_t seed, uint64_t r) {
  if (seed == 0) return *tmk::watermark::Key::Generate();
  return KeyFrom(Hash(seed, r));
}

// Canary keys of accounts 0..n-1 under epoch 0 of `master`.
std::vector<tmk::canary::CanaryKey> FreshAccountKeys(const tmk::watermark::Key& master, uint64_t n,
                                                     int threads) {
  return CanaryKeys(*tmk::watermark::DeriveEpochKey(master, 0), n, threads);
}

// The exact null law of a p-value that takes the value min(1, accounts x T(m)) when the best of
// `accounts` independent accounts has m matches, T(m) = P(matches >= m) for one account.
struct ExactNull {
  std::vector<double> support;  // attainable values, decreasing in m
  std::vector<double> cdf;      // P(value <= support[m])
  ExactNull(absl::Span<const tmk::canary::Tuple> tuples, uint64_t accounts) {
    const tmk::stats::BinomialSum null = tmk::canary::NullOfMatches(tuples);
    for (uint64_t m = 0; m <= tuples.size(); ++m) {
      const tmk::stats::PValue t = null.UpperTail(m);
      support.push_back(tmk::stats::Bonferroni(t, accounts).value());
      // P(best >= m) = 1 - (1 - T(m))^accounts.
      const double a = static_cast<double>(accounts);
      cdf.push_back(accounts == 1 ? t.value() : -std::expm1(a * std::log1p(-t.value())));
    }
  }
  // P(value <= x).
  double Cdf(double x) const {
    for (size_t m = 0; m < support.size(); ++m) {
      if (support[m] <= x) return cdf[m];
    }
    return 0.0;
  }
};

// Kolmogorov's asymptotic P(sqrt(n) D >= lambda), with Stephens' small-n correction.
double KolmogorovP(double d, size_t n) {
  const double sn = std::sqrt(static_cast<double>(n));
  const double l = (sn + 0.12 + 0.11 / sn) * d;
  if (l < 0.3) return 1.0;
  double p = 0;
  for (int k = 1; k <= 100; ++k) p += 2 * ((k % 2) ? 1 : -1) * std::exp(-2.0 * k * k * l * l);
  return std::clamp(p, 0.0, 1.0);
}

// sup |F_n - F| over the attainable values (both laws are steps there).
double KsAgainst(std::vector<double> v, const ExactNull& null) {
  std::sort(v.begin(), v.end());
  double d = 0;
  for (size_t m = 0; m < null.support.size(); ++m) {
    const double x = null.support[m];
    const auto below = std::upper_bound(v.begin(), v.end(), x) - v.begin();
    d = std::max(
        d, std::abs(static_cast<double>(below) / static_cast<double>(v.size()) - null.Cdf(x)));
  }
  return d;
}

// Counts at each level against the bound level x n and the exact expectation, with Clopper-Pearson
// intervals, the binomial P(count this high | level), and KS against uniform and the exact law.
nlohmann::json Calibrate(const char* what, const std::vector<double>& p, const ExactNull& null) {
  const double levels[] = {0.01, 0.05, 0.1, 0.2, 0.5};
  const auto n = static_cast<uint64_t>(p.size());
  std::printf("    %s (%llu keys)\n", what, static_cast<unsigned long long>(n));
  nlohmann::json j = {{"keys", n}};
  for (double a : levels) {
    uint64_t k = 0;
    for (double x : p) k += x <= a;
    const auto [lo, hi] = tmk::study::ClopperPearson(k, n);
    const double excess = tmk::stats::BinomialUpperTail(k, n, a).value();
    const double exact = null.Cdf(a) * static_cast<double>(n);
    std::printf(
        "      <= %-4g %4llu  (bound %6.1f, exact null %6.1f)  rate %.3f [%.3f, %.3f]  "
        "P(>= this | %g) %.3g\n",
        a, static_cast<unsigned long long>(k), a * static_cast<double>(n), exact,
        static_cast<double>(k) / static_cast<double>(n), lo, hi, a, excess);
    j["levels"].push_back({{"level", a},
                           {"count", k},
                           {"bound", a * static_cast<double>(n)},
                           {"exact_expected", exact},
                           {"cp95", {lo, hi}},
                           {"binomial_p_excess", excess}});
  }
  const tmk::stats::KsResult u = tmk::stats::KolmogorovSmirnovUniform(p);
  const double d = KsAgainst(p, null);
  const double dplus_p =
      std::exp(-2.0 * static_cast<double>(n) * u.statistic_plus * u.statistic_plus);
  std::printf(
      "      KS vs uniform: D+ %.4f (P %.3g), D %.4f; KS vs the exact discrete null: D %.4f "
      "(P %.3g, conservative)\n",
      u.statistic_plus, dplus_p, u.statistic, d, KolmogorovP(d, p.size()));
  j["ks_uniform_d_plus"] = u.statistic_plus;
  j["ks_uniform_d_plus_p"] = dplus_p;
  j["ks_uniform_d"] = u.statistic;
  j["ks_exact_null_d"] = d;
  j["ks_exact_null_p"] = KolmogorovP(d, p.size());
  j["p_values"] = p;
  std::fflush(stdout);
  return j;
}

// Per dataset and account count: the corrected p-values over the keys, and account 0's own.
struct KeyResults {
  std::vector<std::vector<double>> corrected;  // [account count][key]
  std::vector<double> fixed;                   // account 0's uncorrected p, per key
};

int Keys(const Flags& f, const Setup& s, nlohmann::json* out) {
  std::vector<uint64_t> counts;
  for (const std::string& c : SplitList(f.account_counts)) counts.push_back(std::stoull(c));
  std::vector<KeyDataset> datasets;
  for (const std::string& path : SplitList(f.datasets)) {
    auto d = ReadKeyDataset(path, s, f.max_docs);
    if (!d.ok()) return std::cerr << d.status().message() << "\n", 1;
    std::printf("%s: %llu documents, %llu events, %zu tuples\n", d->name.c_str(),
                static_cast<unsigned long long>(d->docs),
                static_cast<unsigned long long>(d->events), d->tuples.size());
    datasets.push_back(*std::move(d));
  }
  if (counts.empty() || datasets.empty()) return std::cerr << "--datasets, --account-counts\n", 2;
  const uint64_t most = *std::max_element(counts.begin(), counts.end());
  std::vector<KeyResults> res(datasets.size());
  for (KeyResults& r : res) r.corrected.resize(counts.size());
  for (int r = 0; r < f.fresh_keys; ++r) {
    const auto keys =
        FreshAccountKeys(FreshMaster(f.key_seed, static_cast<uint64_t>(r)), most, f.threads);
    for (size_t d = 0; d < datasets.size(); ++d) {
      const auto& t = datasets[d].tuples;
      for (size_t c = 0; c < counts.size(); ++c) {
        const auto span = absl::MakeConstSpan(keys).first(counts[c]);
        res[d].corrected[c].push_back(
            tmk::canary::AttributeAmong(t, span, 1, f.threads).corrected.value());
      }
      res[d].fixed.push_back(tmk::canary::TestAccount(t, keys[0]).p.value());
    }
    if ((r + 1) % 50 == 0) std::fprintf(stderr, "  %d of %d keys\n", r + 1, f.fresh_keys);
  }
  for (size_t d = 0; d < datasets.size(); ++d) {
    const auto& t = datasets[d].tuples;
    std::printf("%s (%zu tuples)\n", datasets[d].name.c_str(), t.size());
    nlohmann::json j = {{"docs", datasets[d].docs},
                        {"events", datasets[d].events},
                        {"tuples", t.size()},
                        {"exact", tmk::canary::NullOfMatches(t).exact()}};
    for (size_t c = 0; c < counts.size(); ++c) {
      const std::string what = absl::StrFormat("corrected p, best of %d accounts", counts[c]);
      j[absl::StrFormat("corrected_%d", counts[c])] =
          Calibrate(what.c_str(), res[d].corrected[c], ExactNull(t, counts[c]));
    }
    j["fixed_account"] = Calibrate("account 0, uncorrected p", res[d].fixed, ExactNull(t, 1));
    (*out)["datasets"][datasets[d].name] = j;
  }
  return 0;
}

// The keys study needs the tokenizer (for the active forms) but not the trained model.
int KeysMain(const Flags& f) {
  auto tok = tmk::tokenizer::LoadTiktokenFromDataDir(f.data_dir, "cl100k_base");
  if (!tok.ok()) return std::cerr << tok.status() << "\n", 1;
  Setup s{{*std::move(tok), nullptr, {}}, {}, nullptr, nullptr, std::nullopt};
  s.proc = *tmk::canary::CanaryProcessor::Create(&tmk::canary::Lexicon::BuiltIn(), *s.data.tok);
  nlohmann::json out = {{"study", "keys"},
                        {"fresh_keys", f.fresh_keys},
                        {"key_seed", f.key_seed},
                        {"account_counts", f.account_counts},
                        {"max_docs", f.max_docs},
                        {"lexicon", s.proc->lexicon().version()},
                        {"lexicon_digest", s.proc->lexicon().digest()},
                        {"active_sets", s.proc->active_count()}};
  const int rc = Keys(f, s, &out);
  if (rc == 0 && !f.out.empty()) std::ofstream(f.out) << out.dump(2) << "\n";
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  flags.Add("--study", &f.study)
      .Add("--data-dir", &f.data_dir)
      .Add("--out", &f.out)
      .Add("--clean", &f.clean)
      .Add("--prompts", &f.prompts)
      .Add("--generations", &f.generations)
      .Add("--tokens", &f.tokens)
      .Add("--targets", &f.targets)
      .Add("--max-answers", &f.max_answers)
      .Add("--docs", &f.docs)
      .Add("--threads", &f.threads)
      .Add("--accounts", &f.accounts)
      .Add("--datasets", &f.datasets)
      .Add("--account-counts", &f.account_counts)
      .Add("--fresh-keys", &f.fresh_keys)
      .Add("--key-seed", &f.key_seed)
      .Add("--max-docs", &f.max_docs);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  if (f.study == "keys") return KeysMain(f);
  auto data = tmk::study::LoadStudyData(f.data_dir);
  if (!data.ok()) return std::cerr << data.status() << "\n", 1;
  Setup s{*std::move(data), {}, nullptr, nullptr, std::nullopt};
  tmk::watermark::Config config;
  config.vocab_size = s.data.tok->vocab_size();
  s.epoch.emplace(*tmk::watermark::DeriveEpochKey(KeyFrom(2026), 0));
  s.wm = *tmk::watermark::Watermarker::Create(*s.epoch, config);
  s.proc = *tmk::canary::CanaryProcessor::Create(&tmk::canary::Lexicon::BuiltIn(), *s.data.tok);
  if (f.prompts == "suite") {
    auto suite = tmk::canary::ParseSuite(tmk::canary::BuiltInSuiteText());
    if (!suite.ok()) return std::cerr << suite.status() << "\n", 1;
    for (const auto& p : *suite) s.suite.push_back(*s.data.tok->Encode(p.prefix));
  } else if (f.prompts != "corpus") {
    return std::cerr << "--prompts must be corpus or suite\n", 2;
  }
  nlohmann::json out = {{"study", f.study},
                        {"prompts", f.prompts},
                        {"parameters", config.Describe()},
                        {"lexicon", s.proc->lexicon().version()},
                        {"lexicon_digest", s.proc->lexicon().digest()},
                        {"active_sets", s.proc->active_count()}};
  int rc = 2;
  if (f.study == "rate") {
    rc = Rate(f, s, &out);
  } else if (f.study == "attribution") {
    rc = Attribution(f, s, &out);
  } else if (f.study == "null") {
    rc = Null(f, s, &out);
  } else {
    std::cerr << "unknown --study " << f.study << " (rate, attribution, null or keys)\n";
  }
  if (rc == 0 && !f.out.empty()) std::ofstream(f.out) << out.dump(2) << "\n";
  return rc;
}
