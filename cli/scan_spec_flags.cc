#include "scan_spec_flags.h"

#include <algorithm>

#include "flags.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::cli {

void AddScanSpecFlags(CLI::App* cmd, ScanSpecFlags* f, const std::string& seen_in_help) {
  AddTokenizerFlag(cmd, &f->encoding);
  AddSchemeFlags(cmd, &f->scheme, &f->watermark);
  AddAttributionFlags(cmd, &f->attribution);
  cmd->add_option("--epochs", f->epochs, "Epochs to try, e.g. 0,1 or 0-3")->capture_default_str();
  cmd->add_flag("--independent-documents", f->independent_documents,
                "Test each document on the tuples no other document shares (a first pass "
                "over the inputs): per-document p-values independent under the key");
  cmd->add_option("--family-control", f->family_control,
                  "Count flagged documents per document (none), or with the family-wise error "
                  "(fwer) or false-discovery rate (fdr) at alpha")
      ->capture_default_str();
  cmd->add_flag("--no-canary", f->no_canary, "Skip the canary-phrasing tests");
  cmd->add_option("--cohort", f->cohort,
                  "File of account ids whose pooled canary choices are tested together");
  cmd->add_option("--seen-in", f->seen_in, seen_in_help);
}

absl::StatusOr<detect::ScanJobSpec> SpecFromFlags(const ScanSpecFlags& f) {
  TRACEMARK_RETURN_IF_ERROR(CheckAttributionFlags(f.attribution));
  detect::ScanJobSpec spec;
  spec.inputs = f.inputs;
  spec.seen_in = f.seen_in;
  spec.encoding = f.encoding;
  spec.scheme = f.scheme;
  spec.watermark = f.watermark;
  spec.alpha = f.attribution.alpha;
  spec.max_candidates = f.attribution.max_candidates;
  spec.canary = !f.no_canary;
  spec.lexicon = f.lexicon;
  spec.independent_documents = f.independent_documents;
  spec.family_control = f.family_control;
  TRACEMARK_ASSIGN_OR_RETURN(spec.epochs, detect::ParseEpochs(f.epochs));
  TRACEMARK_ASSIGN_OR_RETURN(const IssuedAccountsFlag issued,
                             ParseAccounts(f.attribution.accounts));
  spec.account_limit = issued.limit;
  spec.account_ids = issued.ids;
  if (!f.cohort.empty()) {
    if (f.no_canary) {
      return absl::InvalidArgumentError("--cohort is a canary test: drop --no-canary");
    }
    TRACEMARK_ASSIGN_OR_RETURN(absl::flat_hash_set<uint64_t> ids,
                               detect::ReadAccountIds(f.cohort, "--cohort"));
    spec.cohort.assign(ids.begin(), ids.end());
    std::sort(spec.cohort.begin(), spec.cohort.end());
  }
  return spec;
}

}  // namespace tracemark::cli
