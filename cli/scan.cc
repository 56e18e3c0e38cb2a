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
#include "tracemark/base/status_macros.h"
#include "tracemark/dataset/input.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/detect/scanner.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/evidence/report.h"

namespace tracemark::cli {
namespace {

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
void DrawProgress(const detect::ScanProgress& p) {
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

// What the scan was run with: a wrong key, tokenizer or scheme gives unremarkable p-values and
// nothing else, so the reader sees them first.
void PrintSetup(const detect::ScanJobSpec& job, const detect::ScanJobOutput& out) {
  std::cout << "key " << out.master_key_id << " (epochs";
  for (const nlohmann::json& e : out.result["epochs"]) {
    std::cout << " " << e.value("epoch", 0u) << ": " << e.value("key_id", "");
  }
  std::cout << "), tokenizer " << job.encoding << ", scheme " << job.scheme
            << (job.watermark.empty() ? "" : " " + job.watermark) << "\n";
}

void PrintWarnings(const detect::ScanSummary& s) {
  for (const std::string& w : s.warnings) std::cout << "warning: " << w << "\n";
}

void PrintTotals(const detect::ScanResult& r, const detect::ScanSummary& s, double alpha,
                 const std::string& family) {
  const double seconds = r.seconds;
  const double bytes = static_cast<double>(r.bytes), tokens = static_cast<double>(r.tokens);
  std::cout << absl::StrFormat(
      "scanned %d documents (%s, %d tokens) in %.1f s: %.1f MB/s, %.0f tokens/s\n",
      r.documents.size(), Bytes(bytes), r.tokens, seconds,
      seconds > 0 ? bytes / seconds / 1e6 : 0.0, seconds > 0 ? tokens / seconds : 0.0);
  std::cout << "dataset provider watermark: p = " << s.provider_p_value.ToString() << " over "
            << s.provider_tuples << " unique tuples (epoch " << s.provider_epoch << ")\n";
  std::cout << absl::StrFormat(
      "documents with provider p <= %g: %d of %d tested; attributed to an account: %d%s\n", alpha,
      s.documents_flagged, r.documents.size(), s.documents_attributed,
      family == "none" ? " (each document at its own alpha; --family-control fwer|fdr for the set)"
      : family == "fwer" ? " (family-wise error rate controlled at alpha)"
                         : " (false-discovery rate controlled at alpha)");
}

void PrintAccounts(const detect::ScanSummary& s) {
  if (s.accounts.empty()) return;
  std::cout << absl::StrFormat("\n%-12s %6s %10s %11s %9s  %s\n", "account", "epoch", "documents",
                               "attributed", "tuples", "combined p");
  size_t shown = 0;
  for (const detect::AccountSummary& a : s.accounts) {
    if (++shown > 20) {
      std::cout << "... " << s.accounts.size() - 20 << " more (--json lists all)\n";
      break;
    }
    std::cout << absl::StrFormat("%-12d %6d %10d %11d %9d  %s\n", a.account, a.epoch, a.documents,
                                 a.attributed, a.tuples, a.combined_p_value.ToString());
  }
}

void PrintSeenAndWhiteBox(const detect::ScanSummary& s) {
  if (s.seen.has_value()) {
    const detect::SeenSummary& z = *s.seen;
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
    const detect::WhiteBoxSummary& w = *s.white_box;
    std::cout << "white-box (the suspect's reported log-probabilities): p = "
              << w.p_value.ToString() << " over " << w.tuples << " unique tuples from "
              << w.documents << " answers\n";
    if (w.unusable > 0) {
      std::cout << "  " << w.unusable << " answers' log-probabilities not used: " << w.problem
                << "\n";
    }
  }
}

void PrintCanary(const detect::ScanSummary& s) {
  if (!s.canary.has_value()) return;
  const detect::CanarySummary& c = *s.canary;
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
  for (const detect::AccountSummary& a : s.accounts) {
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
        c.cohort->accounts, c.cohort->combined_p.ToString(), c.cohort->matches, c.cohort->expected,
        c.cohort->p.ToString(), c.cohort->best_account, c.cohort->best_member_p.ToString());
  }
}

void PrintSkipped(const detect::ScanResult& r) {
  if (!r.skipped.empty()) {
    std::cout << "\nskipped " << r.skipped.size() << ":\n";
    for (size_t i = 0; i < r.skipped.size() && i < 10; ++i) {
      std::cout << "  " << r.skipped[i].source << ": " << r.skipped[i].reason << "\n";
    }
    if (r.skipped.size() > 10) std::cout << "  ... (--json lists all)\n";
  }
}

void PrintSummary(const detect::ScanResult& r, const detect::ScanSummary& s, double alpha,
                  const std::string& family) {
  PrintTotals(r, s, alpha, family);
  PrintAccounts(s);
  PrintSeenAndWhiteBox(s);
  PrintCanary(s);
  PrintSkipped(r);
  std::cout << "\nmethod: " << s.method << "\n";
}

}  // namespace

absl::Status Scan(const ScanFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(detect::ScanJobSpec job, SpecFromFlags(f.spec));
  job.data_dir = DataDir(f.common.data_dir);
  job.threads = f.threads;
  if (f.report.empty() != f.signing_key.empty()) {
    return absl::InvalidArgumentError("--report and --signing-key go together");
  }
  std::optional<evidence::EnvelopeSigner> signer;
  if (!f.signing_key.empty()) {  // before the scan: a bad signing key fails at once
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed, watermark::ReadMasterKeyFile(f.signing_key));
    TRACEMARK_ASSIGN_OR_RETURN(signer, evidence::EnvelopeSigner::FromSeed(seed));
    TRACEMARK_RETURN_IF_ERROR(base::CheckWritable(f.report));  // not after the scan
  }
  const bool bar = !f.no_progress && isatty(STDERR_FILENO);
  detect::ScanJobControl control;
  if (bar) control.progress = DrawProgress;
  absl::StatusOr<detect::ScanJobOutput> out;
  {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    out = detect::RunScanJob(job, master, control);
  }  // the master key is wiped here
  if (bar) std::fputc('\n', stderr);
  if (!out.ok()) return out.status();
  if (f.common.json) {
    std::cout << out->result.dump(2) << "\n";
  } else {
    PrintSetup(job, *out);
    PrintWarnings(out->summary);
    PrintSummary(out->scan, out->summary, f.spec.attribution.alpha, job.family_control);
  }
  if (signer.has_value()) {
    TRACEMARK_ASSIGN_OR_RETURN(nlohmann::json report, evidence::BuildReport(job, *out, "scan"));
    TRACEMARK_ASSIGN_OR_RETURN(std::string envelope, evidence::SignReport(report, *signer));
    TRACEMARK_RETURN_IF_ERROR(WriteFileAtomically(f.report, envelope));
    std::cerr << "signed report written to " << f.report << " (signing key id " << signer->key_id()
              << ")\n";
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cli
