// Scanning a suspect dataset: every document is tested for the provider watermark and attributed
// to the account its id payload names, confirmed on the fingerprint positions; the dataset as a
// whole gets one provider test over all its unique tuples, and each account the documents decode
// to gets one combined fingerprint test over their pooled tuples.
//
//   Scanner scanner(*verifier, *tokenizer, options);
//   TRACEMARK_ASSIGN_OR_RETURN(ScanResult r, scanner.Scan(*reader, progress_callback));
//   TRACEMARK_ASSIGN_OR_RETURN(ScanSummary s, scanner.Summarize(r));
//
// Validity of the combined account test: documents are grouped by the id their payload decodes
// to, a function of the text alone; for an account that did not produce them, its codeword is
// independent of the text, so its fingerprint test on the group's pooled tuples keeps its null.
// The combined p-values are Bonferroni-corrected for every (epoch, account) group tested.
//
// ScanResult holds mergeable statistics: scanning shards of a dataset separately and merging the
// results gives exactly the summary of one scan (unique tuples merge as a union).
#ifndef TRACEMARK_VERIFIER_SCANNER_H_
#define TRACEMARK_VERIFIER_SCANNER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/verifier/document.h"
#include "tracemark/verifier/input.h"
#include "tracemark/verifier/verifier.h"
#include "tracemark/watermark/detector.h"

namespace tracemark::verifier {

struct ScanOptions {
  uint64_t account_limit = 0;  // accounts issued are 0 .. account_limit - 1 (0: any id)
  // Or the accounts issued as an explicit list. Not owned; must outlive the scanner.
  const absl::flat_hash_set<uint64_t>* issued = nullptr;
  // A document is attributed to an account when its corrected confirmation p-value is at most
  // this (docs/validity.md gives the measured false-attribution rate).
  double attribution_alpha = 1e-6;
  int threads = 0;  // 0: one per hardware thread
};

struct DocumentResult {
  uint64_t index = 0;  // input order
  std::string id, source;
  size_t tokens_scored = 0;        // model-written tokens
  uint64_t provider_tuples = 0;    // unique tuples on provider positions (best epoch)
  stats::PValue provider_p_value;  // best epoch, corrected for the epochs tried
  uint32_t provider_epoch = 0;
  std::optional<uint64_t> account;  // attributed account, if confirmed at attribution_alpha
  stats::PValue account_p_value;    // best confirmation, corrected (1 when none)
  uint64_t candidates = 0;          // payload candidates confirmed (the correction)
  bool repaired_utf8 = false;       // invalid UTF-8 was replaced by U+FFFD before tokenising
};

// Mergeable results of a scan (or of one shard).
struct ScanResult {
  std::vector<DocumentResult> documents;  // in input order after Scan
  std::vector<Skipped> skipped;
  // Per epoch: the provider-layer tuples of every document, merged.
  std::vector<watermark::TextStatistics> provider;
  // Per (epoch index, decoded account): the fingerprint tuples of the documents whose payload
  // decoded to that account, merged, and how many documents that was.
  absl::flat_hash_map<std::pair<size_t, uint64_t>, watermark::TextStatistics> groups;
  absl::flat_hash_map<std::pair<size_t, uint64_t>, uint64_t> group_documents;
  uint64_t tokens = 0;  // model-written tokens scored
  uint64_t bytes = 0;   // model-written bytes scored
  double seconds = 0;   // wall time of Scan (summed over merged results)

  // Appends `other` (a result from the same verifier): documents, skipped, statistics (union).
  absl::Status Merge(ScanResult other);
};

struct AccountSummary {
  uint64_t account = 0;
  uint32_t epoch = 0;
  uint64_t documents = 0;          // documents whose payload decoded to it
  uint64_t attributed = 0;         // of those, documents attributed to it
  uint64_t tuples = 0;             // pooled unique fingerprint tuples
  stats::PValue combined_p_value;  // corrected for every group tested
};

struct ScanSummary {
  stats::PValue provider_p_value;  // all documents' unique provider tuples, best epoch, corrected
  uint64_t provider_tuples = 0;
  uint32_t provider_epoch = 0;
  std::vector<AccountSummary> accounts;  // most significant first
  uint64_t documents_flagged = 0;        // provider p-value <= attribution_alpha
  uint64_t documents_attributed = 0;
  std::string method;
};

struct ScanProgress {
  uint64_t documents = 0, tokens = 0;
  uint64_t bytes_read = 0, total_bytes = 0;  // of the input files on disk
  double seconds = 0;
};

class Scanner {
 public:
  // `verifier` and `tokenizer` must outlive the scanner.
  Scanner(const Verifier& verifier, const tokenizer::Tokenizer& tokenizer, ScanOptions options);

  // Reads and scores every document with options.threads threads; calls `progress` (if set) from
  // the calling thread about five times a second and once at the end. Errors only when the
  // tokenizer does not match the configuration; bad inputs are in ScanResult::skipped.
  absl::StatusOr<ScanResult> Scan(DocumentReader& reader,
                                  const std::function<void(const ScanProgress&)>& progress = {});

  // Scores one document into `out` (single-threaded; what each scan thread does).
  absl::Status ScanDocument(Document doc, ScanResult* out) const;

  absl::StatusOr<ScanSummary> Summarize(const ScanResult& result) const;

 private:
  const Verifier& verifier_;
  const tokenizer::Tokenizer& tokenizer_;
  ScanOptions options_;
};

}  // namespace tracemark::verifier

#endif  // TRACEMARK_VERIFIER_SCANNER_H_
