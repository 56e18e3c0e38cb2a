// A scan as a value: everything that shapes a scan's result in one plain struct, run end to end
// (tokenizer, watermark configuration, epoch keys, canary processor, inputs, scan, summary) by one
// call. `tracemark scan`, the verifier service's jobs and `tracemark report verify` (which reruns
// a report's scan from its inputs) all go through RunScanJob, so the three agree by construction.
//
//   ScanJobSpec spec;
//   spec.inputs = {"harvest/"};
//   spec.account_limit = 25000;
//   TRACEMARK_ASSIGN_OR_RETURN(ScanJobOutput out, RunScanJob(spec, master_key));
//   std::cout << out.result.dump(2);
//
// A spec converts to and from JSON (Options / FromOptions): the "options" of an evidence report,
// from which the same result can be recomputed.
#ifndef TRACEMARK_DETECT_SCAN_JOB_H_
#define TRACEMARK_DETECT_SCAN_JOB_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/detect/scanner.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::detect {

inline constexpr char kDefaultEncoding[] = "cl100k_base";

struct ScanJobSpec {
  std::vector<std::string> inputs;          // files and directories, read in this order
  std::vector<std::string> seen_in;         // suspected training data: also test at its windows
  std::string encoding = kDefaultEncoding;  // the provider's tokenizer (tokenizer/load.h)
  std::string scheme = "kgw";
  std::string watermark;               // extra watermark key=value parameters
  uint64_t account_limit = 0;          // accounts issued are 0 .. account_limit - 1, or
  std::vector<uint64_t> account_ids;   // this explicit list (sorted, unique); both empty: any id
  std::vector<uint32_t> epochs = {0};  // key epochs tried (the correction counts them)
  double alpha = kDefaultAttributionAlpha;        // attribution threshold
  size_t max_candidates = kDefaultMaxCandidates;  // payload candidates confirmed per document
  bool canary = true;                             // collect and test canary phrasings
  std::string lexicon;                            // canary lexicon file; "" for the built-in one
  std::vector<uint64_t> cohort;  // accounts tested together for canary evidence (sorted)
  // Test each document on the tuples no other document shares (ScanOptions::shared: a first
  // pass over the inputs; not with partitions), and count flags under this family control.
  bool independent_documents = false;
  std::string family_control = "none";  // none, fwer or fdr (family_control.h)
  // Not part of the result: where the tokenizers' data lives, and the scan's threads.
  std::string data_dir = "data";
  int threads = 0;

  // The result-shaping fields as JSON (not data_dir or threads; inputs and seen_in as given).
  nlohmann::json Options() const;
  // The inverse of Options(); InvalidArgument naming the field for anything malformed or unknown
  // (a key Options() does not write). Fields absent from `options` keep their defaults.
  static absl::StatusOr<ScanJobSpec> FromOptions(const nlohmann::json& options);
  // InvalidArgument for values no scan accepts (no inputs, alpha outside (0, 1), ...).
  absl::Status Validate() const;
};

// Tokenizers loaded once and shared by the scans that name them (a service runs many small
// scans; loading a vocabulary costs tens of milliseconds). Thread-safe; tokenizers are immutable.
class TokenizerCache {
 public:
  absl::StatusOr<const tokenizer::Tokenizer*> Get(const std::string& encoding,
                                                  const std::string& data_dir);

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<tokenizer::Tokenizer>> loaded_;
};

struct ScanJobControl {
  // Called from the scanning thread about five times a second and once at the end.
  std::function<void(const ScanProgress&)> progress;
  // When set and it becomes true, the scan stops within a fraction of a second (Cancelled).
  const std::atomic<bool>* cancel = nullptr;
  // When set, tokenizers come from (and stay in) this cache.
  TokenizerCache* tokenizers = nullptr;
};

struct ScanJobOutput {
  nlohmann::json result;  // as `tracemark scan --json` prints it, with the epochs' key ids
  ScanResult scan;
  ScanSummary summary;
  std::vector<std::string> input_files;    // every file read, in reading order
  std::vector<std::string> seen_in_files;  // likewise for spec.seen_in
  std::string master_key_id, master_key_commitment;
};

// Everything a scan of `spec` checks before it reads an input, with no input read: Validate()
// (an empty input list aside: a service checks before the uploads arrive), the tokenizer loads,
// the watermark parameters hold for its vocabulary, the canary lexicon loads. A spec that passes
// fails later only on its inputs (or the key).
absl::Status CheckScanParameters(const ScanJobSpec& spec, const ScanJobControl& control = {});

// Runs the scan `spec` describes with the epoch keys derived from `master` (not retained).
absl::StatusOr<ScanJobOutput> RunScanJob(const ScanJobSpec& spec, const watermark::Key& master,
                                         const ScanJobControl& control = {});

// A scan split into partitions (docs/scale-out.md): each partition is the same spec with a slice
// of the inputs, scored anywhere (ScanPartition; its ScanResult travels as bytes, see
// scan_result_io.h); MergeScanPartitions then merges them in input order and summarises them under
// the whole spec, giving exactly RunScanJob's result over all the inputs, wall time aside.
struct ScanPartitionOutput {
  ScanResult scan;
  std::vector<std::string> input_files;  // the files this partition read, in reading order
};
absl::StatusOr<ScanPartitionOutput> ScanPartition(const ScanJobSpec& spec,
                                                  const watermark::Key& master,
                                                  const ScanJobControl& control = {});
// InvalidArgument when a partition was scored under another key, epoch list or configuration,
// and, as RunScanJob, when no partition holds a usable document.
absl::StatusOr<ScanJobOutput> MergeScanPartitions(const ScanJobSpec& spec,
                                                  const watermark::Key& master,
                                                  std::vector<ScanPartitionOutput> partitions,
                                                  const ScanJobControl& control = {});

// The same result with what legitimately differs between two runs of one scan removed: the wall
// time, and the input paths (each path prefix of a source or id becomes "input:N", N its index in
// `input_files`). Skipped entries are sorted. Two runs over the same bytes compare equal.
nlohmann::json CanonicalResult(const nlohmann::json& result,
                               const std::vector<std::string>& input_files);

// The watermark configuration: defaults, then `scheme`, then the `extra` key=value parameters.
absl::StatusOr<watermark::Config> WatermarkConfig(const std::string& scheme,
                                                  const std::string& extra, int32_t vocab_size);

// The canary processor for `tok` over the lexicon in file `path`, or the built-in one when `path`
// is empty. `holder` keeps a loaded lexicon alive for as long as the processor is used.
absl::StatusOr<std::unique_ptr<canary::CanaryProcessor>> LoadCanaryProcessor(
    const std::string& path, const tokenizer::Tokenizer& tok,
    std::optional<canary::Lexicon>* holder);

// Account ids from a file: one a line, '#' starts a comment. `flag` names the option in errors.
absl::StatusOr<absl::flat_hash_set<uint64_t>> ReadAccountIds(const std::string& path,
                                                             const std::string& flag);

// Parses an epoch list: "0,1,3" or "0-3" (InvalidArgument otherwise).
absl::StatusOr<std::vector<uint32_t>> ParseEpochs(const std::string& spec);

// A p-value as JSON: a number when it is representable as a double, else its decimal string
// ("3.1e-412"); never 0.
nlohmann::json PValueJson(stats::PValue p);

// The log10 of a p-value as PValueJson writes it (a number, or a decimal string such as
// "3.1e-412"); nullopt for anything else, or a value that is not positive.
std::optional<double> PValueLog10(const nlohmann::json& p);

// A p-value as PValueJson writes it, for a reader: "0.012", "3.1e-412"; "?" for anything else.
std::string PValueText(const nlohmann::json& p);

// Beside every "...p_value" field of `j` (recursively), its log10 as a number under
// "log10_...p_value", so that a reader gets every p-value as numbers even below double range.
// A log10 field already there (written from the PValue itself, exact) is kept.
void AddLog10PValues(nlohmann::json* j);

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_SCAN_JOB_H_
