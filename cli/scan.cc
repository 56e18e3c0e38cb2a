// tracemark scan: test every document of a suspect dataset and attribute it (docs/cli.md).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "commands.h"
#include "report.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/verifier/envelope.h"
#include "tracemark/verifier/input.h"
#include "tracemark/verifier/scanner.h"
#include "tracemark/verifier/verifier.h"

namespace tracemark::cli {
namespace {

// "--accounts N" (ids 0..N-1) or "--accounts FILE" (one id a line; '#' starts a comment).
absl::Status ParseAccounts(const std::string& spec, verifier::ScanOptions* opt,
                           std::optional<watermark::IssuedAccounts>* issued) {
  if (spec.empty()) return absl::OkStatus();
  uint64_t n = 0;
  if (absl::SimpleAtoi(spec, &n)) {
    if (n == 0) return absl::InvalidArgumentError("--accounts: the number of accounts must be > 0");
    opt->account_limit = n;
    return absl::OkStatus();
  }
  absl::StatusOr<absl::flat_hash_set<uint64_t>> ids = ReadAccountIds(spec, "--accounts");
  if (absl::IsNotFound(ids.status())) {
    return absl::NotFoundError(
        absl::StrCat("--accounts: '", spec, "' is neither a number nor a readable file"));
  }
  if (!ids.ok()) return ids.status();
  opt->issued = &issued->emplace(*std::move(ids));
  return absl::OkStatus();
}

std::string Bytes(double b) {
  if (b >= 1e9) return absl::StrFormat("%.2f GB", b / 1e9);
  if (b >= 1e6) return absl::StrFormat("%.1f MB", b / 1e6);
  if (b >= 1e3) return absl::StrFormat("%.1f kB", b / 1e3);
  return absl::StrFormat("%.0f B", b);
}

std::string Duration(double s) {
  const long t = static_cast<long>(s + 0.5);
  return t >= 3600 ? absl::StrFormat("%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
                   : absl::StrFormat("%d:%02d", t / 60, t % 60);
}

// One line on a terminal, rewritten in place: bar, bytes, documents, rate, ETA.
void DrawProgress(const verifier::ScanProgress& p) {
  const double read = static_cast<double>(p.bytes_read), total = static_cast<double>(p.total_bytes);
  const double frac = total > 0 ? std::min(1.0, read / total) : 0;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(frac * kWidth);
  const double rate = p.seconds > 0 ? read / p.seconds : 0;
  const std::string eta = rate > 0 && frac < 1 ? Duration((total - read) / rate) : "-";
  std::fprintf(stderr, "\r[%s%s] %3.0f%%  %s/%s  %llu docs  %s/s  %.0f tok/s  ETA %s   ",
               std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
               100 * frac, Bytes(read).c_str(), Bytes(total).c_str(),
               static_cast<unsigned long long>(p.documents), Bytes(rate).c_str(),
               p.seconds > 0 ? static_cast<double>(p.tokens) / p.seconds : 0.0, eta.c_str());
  std::fflush(stderr);
}

nlohmann::json ScanJson(const verifier::ScanResult& r, const verifier::ScanSummary& s,
                        const watermark::Config& config) {
  nlohmann::json j;
  j["provider"] = {{"p_value", PValueJson(s.provider_p_value)},
                   {"tokens_scored", r.tokens},
                   {"tuples_scored", s.provider_tuples},
                   {"epoch", s.provider_epoch}};
  j["documents"] = nlohmann::json::array();
  for (const verifier::DocumentResult& d : r.documents) {
    nlohmann::json e = {{"id", d.id},
                        {"source", d.source},
                        {"account", d.account ? nlohmann::json(*d.account) : nlohmann::json()},
                        {"p_value", PValueJson(d.provider_p_value)},
                        {"account_p_value", PValueJson(d.account_p_value)},
                        {"candidates", d.candidates},
                        {"tokens_scored", d.tokens_scored},
                        {"tuples_scored", d.provider_tuples},
                        {"epoch", d.provider_epoch}};
    if (d.repaired_utf8) e["repaired_utf8"] = true;
    if (s.canary.has_value()) {
      e["canary"] = {{"events", d.canary_events},
                     {"tuples", d.canary_tuples},
                     {"account_p_value", PValueJson(d.canary_p_value)}};
    }
    if (d.windows > 0) {
      e["windows"] = d.windows;
      e["window_p_value"] = PValueJson(d.window_p_value);
    }
    j["documents"].push_back(std::move(e));
  }
  j["accounts"] = nlohmann::json::array();
  for (const verifier::AccountSummary& a : s.accounts) {
    j["accounts"].push_back({{"account", a.account},
                             {"epoch", a.epoch},
                             {"documents", a.documents},
                             {"attributed", a.attributed},
                             {"tuples_scored", a.tuples},
                             {"combined_p_value", PValueJson(a.combined_p_value)},
                             {"canary_tuples", a.canary_tuples},
                             {"canary_matches", a.canary_matches},
                             {"canary_p_value", PValueJson(a.canary_p_value)}});
  }
  if (s.canary.has_value()) {
    const verifier::CanarySummary& c = *s.canary;
    nlohmann::json top = nlohmann::json::array();
    for (size_t i = 0; i < c.attribution.top.size(); ++i) {
      const canary::CanaryResult& t = c.attribution.top[i];
      top.push_back({{"account", t.account},
                     {"epoch", c.attribution_epochs[i]},
                     {"matches", t.matches},
                     {"expected", t.expected},
                     {"p_value", PValueJson(t.p)}});
    }
    j["canary"] = {{"lexicon", c.lexicon},
                   {"lexicon_digest", c.lexicon_digest},
                   {"active_sets", c.active_sets},
                   {"events", c.events},
                   {"tuples", c.tuples},
                   {"attribution",
                    {{"accounts_tried", c.attribution.accounts_tried},
                     {"corrected_p_value", PValueJson(c.attribution.corrected)},
                     {"exact", c.attribution.exact},
                     {"top", top}}},
                   {"method", c.method}};
    if (c.cohort.has_value()) {
      j["canary"]["cohort"] = {{"accounts", c.cohort->accounts},
                               {"matches", c.cohort->matches},
                               {"expected", c.cohort->expected},
                               {"sum_p_value", PValueJson(c.cohort->p)},
                               {"heaviest_account", c.cohort->best_account},
                               {"heaviest_matches", c.cohort->best_matches},
                               {"heaviest_p_value", PValueJson(c.cohort->best_member_p)},
                               {"p_value", PValueJson(c.cohort->combined_p)}};
    }
  }
  if (s.seen.has_value()) {
    const verifier::SeenSummary& z = *s.seen;
    j["seen_windows"] = {{"windows", z.windows},
                         {"documents", z.documents},
                         {"provider_p_value", PValueJson(z.provider_p_value)},
                         {"provider_tuples", z.provider_tuples}};
    if (z.white_box_p_value.has_value()) {
      j["seen_windows"]["white_box_p_value"] = PValueJson(*z.white_box_p_value);
      j["seen_windows"]["white_box_tuples"] = z.white_box_tuples;
    }
  }
  if (s.white_box.has_value()) {
    const verifier::WhiteBoxSummary& w = *s.white_box;
    j["white_box"] = {{"p_value", PValueJson(w.p_value)},
                      {"tuples", w.tuples},
                      {"epoch", w.epoch},
                      {"documents", w.documents},
                      {"positions", w.positions},
                      {"unusable_documents", w.unusable},
                      {"problem", w.problem},
                      {"method", w.method}};
  }
  j["skipped"] = nlohmann::json::array();
  for (const verifier::Skipped& k : r.skipped) {
    j["skipped"].push_back({{"source", k.source}, {"reason", k.reason}});
  }
  j["method"] = s.method;
  j["parameters"] = config.Describe();
  j["totals"] = {{"documents", r.documents.size()},
                 {"documents_flagged", s.documents_flagged},
                 {"documents_attributed", s.documents_attributed},
                 {"skipped", r.skipped.size()},
                 {"bytes", r.bytes},
                 {"tokens", r.tokens},
                 {"seconds", r.seconds}};
  return j;
}

void PrintSummary(const verifier::ScanResult& r, const verifier::ScanSummary& s, double alpha) {
  const double seconds = r.seconds;
  const double bytes = static_cast<double>(r.bytes), tokens = static_cast<double>(r.tokens);
  std::cout << absl::StrFormat(
      "scanned %d documents (%s, %d tokens) in %.1f s: %.1f MB/s, %.0f tokens/s\n",
      r.documents.size(), Bytes(bytes), r.tokens, seconds,
      seconds > 0 ? bytes / seconds / 1e6 : 0.0, seconds > 0 ? tokens / seconds : 0.0);
  std::cout << "dataset provider watermark: p = " << s.provider_p_value.ToString() << " over "
            << s.provider_tuples << " unique tuples (epoch " << s.provider_epoch << ")\n";
  std::cout << absl::StrFormat(
      "documents with provider p <= %g: %d; attributed to an account: %d\n", alpha,
      s.documents_flagged, s.documents_attributed);
  if (!s.accounts.empty()) {
    std::cout << absl::StrFormat("\n%-12s %6s %10s %11s %9s  %s\n", "account", "epoch", "documents",
                                 "attributed", "tuples", "combined p");
    size_t shown = 0;
    for (const verifier::AccountSummary& a : s.accounts) {
      if (++shown > 20) {
        std::cout << "... " << s.accounts.size() - 20 << " more (--json lists all)\n";
        break;
      }
      std::cout << absl::StrFormat("%-12d %6d %10d %11d %9d  %s\n", a.account, a.epoch, a.documents,
                                   a.attributed, a.tuples, a.combined_p_value.ToString());
    }
  }
  if (s.seen.has_value()) {
    const verifier::SeenSummary& z = *s.seen;
    std::cout << "at the " << z.windows << " windows of the suspected training data ("
              << z.documents << " documents): provider p = " << z.provider_p_value.ToString()
              << " over " << z.provider_tuples << " unique tuples";
    if (z.white_box_p_value.has_value()) {
      std::cout << "; white-box p = " << z.white_box_p_value->ToString() << " over "
                << z.white_box_tuples;
    }
    std::cout << "\n";
  }
  if (s.white_box.has_value()) {
    const verifier::WhiteBoxSummary& w = *s.white_box;
    std::cout << "white-box (the suspect's reported log-probabilities): p = "
              << w.p_value.ToString() << " over " << w.tuples << " unique tuples from "
              << w.documents << " answers\n";
    if (w.unusable > 0) {
      std::cout << "  " << w.unusable << " answers' log-probabilities not used: " << w.problem
                << "\n";
    }
  }
  if (s.canary.has_value()) {
    const verifier::CanarySummary& c = *s.canary;
    std::cout << absl::StrFormat(
        "\ncanary phrasings (%s, %d sets active): %d events, %d distinct "
        "(set, context) tuples\n",
        c.lexicon, c.active_sets, c.events, c.tuples);
    if (c.attribution.accounts_tried > 0 && !c.attribution.top.empty()) {
      const canary::CanaryResult& t = c.attribution.top.front();
      std::cout << absl::StrFormat(
          "  best account %d (epoch %d): %d of %d tuples match its keyed choices (%.1f "
          "expected); p = %s, corrected for %d (account, epoch) pairs: %s\n",
          t.account, c.attribution_epochs.front(), t.matches, t.tuples, t.expected, t.p.ToString(),
          c.attribution.accounts_tried, c.attribution.corrected.ToString());
    } else {
      std::cout << "  (give --accounts to test every issued account)\n";
    }
    for (const verifier::AccountSummary& a : s.accounts) {
      if (a.canary_tuples == 0 || a.attributed == 0) continue;  // --json lists every group
      std::cout << absl::StrFormat(
          "  account %d (its attributed documents' group): %d of %d "
          "tuples match, p = %s (corrected)\n",
          a.account, a.canary_matches, a.canary_tuples, a.canary_p_value.ToString());
    }
    if (c.cohort.has_value()) {
      std::cout << absl::StrFormat(
          "  cohort of %d accounts: p = %s (the smaller of: summed matches %d, %.1f expected, "
          "p = %s; heaviest contributor %d, p = %s corrected for the members; corrected for "
          "epochs)\n",
          c.cohort->accounts, c.cohort->combined_p.ToString(), c.cohort->matches,
          c.cohort->expected, c.cohort->p.ToString(), c.cohort->best_account,
          c.cohort->best_member_p.ToString());
    }
  }
  if (!r.skipped.empty()) {
    std::cout << "\nskipped " << r.skipped.size() << ":\n";
    for (size_t i = 0; i < r.skipped.size() && i < 10; ++i) {
      std::cout << "  " << r.skipped[i].source << ": " << r.skipped[i].reason << "\n";
    }
    if (r.skipped.size() > 10) std::cout << "  ... (--json lists all)\n";
  }
  std::cout << "\nmethod: " << s.method << "\n";
}

}  // namespace

absl::Status Scan(const ScanFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Config config, LoadConfig(f.common, tok->vocab_size()));
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<uint32_t> epochs, ParseEpochs(f.epochs));
  if (f.report.empty() != f.signing_key.empty()) {
    return absl::InvalidArgumentError("--report and --signing-key go together");
  }
  std::optional<verifier::EnvelopeSigner> signer;
  if (!f.signing_key.empty()) {  // before the scan: a bad signing key fails at once
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed, watermark::ReadMasterKeyFile(f.signing_key));
    TRACEMARK_ASSIGN_OR_RETURN(signer, verifier::EnvelopeSigner::FromSeed(seed));
  }
  std::unique_ptr<verifier::Verifier> v;
  std::string master_id, master_commitment;
  {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    TRACEMARK_ASSIGN_OR_RETURN(v, verifier::Verifier::Create(master, config, epochs));
    master_id = master.Id();
    master_commitment = master.Commitment();
  }  // the master key is wiped here; the verifier holds only epoch detectors
  verifier::ScanOptions opt;
  std::optional<watermark::IssuedAccounts> issued;
  TRACEMARK_RETURN_IF_ERROR(ParseAccounts(f.accounts, &opt, &issued));
  if (!(f.alpha > 0 && f.alpha < 1)) return absl::InvalidArgumentError("--alpha must be in (0, 1)");
  opt.attribution_alpha = f.alpha;
  opt.threads = f.threads;
  if (f.max_candidates == 0) return absl::InvalidArgumentError("--max-candidates must be >= 1");
  opt.max_candidates = f.max_candidates;
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<verifier::DocumentReader> reader,
                             verifier::DocumentReader::Open(f.inputs));
  std::optional<canary::Lexicon> lexicon_holder;
  std::unique_ptr<canary::CanaryProcessor> canary_proc;
  if (!f.no_canary) {
    TRACEMARK_ASSIGN_OR_RETURN(canary_proc, LoadCanaryProcessor(f.lexicon, *tok, &lexicon_holder));
    opt.canary = canary_proc.get();
    if (!f.cohort.empty()) {
      TRACEMARK_ASSIGN_OR_RETURN(absl::flat_hash_set<uint64_t> ids,
                                 ReadAccountIds(f.cohort, "--cohort"));
      opt.cohort.assign(ids.begin(), ids.end());
      std::sort(opt.cohort.begin(), opt.cohort.end());
    }
  } else if (!f.cohort.empty()) {
    return absl::InvalidArgumentError("--cohort is a canary test: drop --no-canary");
  }
  std::optional<verifier::SeenWindows> seen;
  if (!f.seen_in.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<verifier::DocumentReader> training,
                               verifier::DocumentReader::Open(f.seen_in));
    TRACEMARK_ASSIGN_OR_RETURN(
        seen, verifier::SeenWindows::Collect(*training, *tok, config.context_width));
    if (seen->size() == 0) {
      return absl::InvalidArgumentError("--seen-in: no windows in the suspected training data");
    }
    opt.seen = &*seen;
  }
  verifier::Scanner scanner(*v, *tok, opt);
  const bool bar = !f.no_progress && isatty(STDERR_FILENO);
  TRACEMARK_ASSIGN_OR_RETURN(
      verifier::ScanResult r,
      scanner.Scan(*reader, bar ? std::function<void(const verifier::ScanProgress&)>(DrawProgress)
                                : nullptr));
  if (bar) std::fputc('\n', stderr);
  TRACEMARK_ASSIGN_OR_RETURN(verifier::ScanSummary s, scanner.Summarize(r));
  nlohmann::json j;  // for --json and the report only
  if (f.common.json || signer.has_value()) {
    j = ScanJson(r, s, config);
    for (size_t i = 0; i < v->num_epochs(); ++i) {
      j["epochs"].push_back({{"epoch", v->epoch(i)}, {"key_id", v->detector(i).key_id()}});
    }
  }
  if (f.common.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    PrintSummary(r, s, f.alpha);
  }
  if (signer.has_value()) {
    ReportContext ctx;
    ctx.command = "scan";
    ctx.inputs = reader->paths();
    if (!f.seen_in.empty()) {
      TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<verifier::DocumentReader> training,
                                 verifier::DocumentReader::Open(f.seen_in));
      ctx.seen_in = training->paths();
    }
    ctx.master_key_id = master_id;
    ctx.master_key_commitment = master_commitment;
    ctx.options = {{"accounts", f.accounts},    {"epochs", f.epochs},
                   {"alpha", f.alpha},          {"max_candidates", f.max_candidates},
                   {"canary", !f.no_canary},    {"lexicon", f.lexicon},
                   {"cohort", opt.cohort},      {"tokenizer", f.common.encoding},
                   {"scheme", f.common.scheme}, {"watermark", f.common.watermark_spec}};
    TRACEMARK_RETURN_IF_ERROR(WriteSignedReport(ctx, j, *signer, f.report));
    std::cerr << "signed report written to " << f.report << " (signing key id " << signer->key_id()
              << ")\n";
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cli
