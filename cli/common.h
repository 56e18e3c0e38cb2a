// Shared plumbing of the tracemark subcommands: loading keys, the tokenizer, the reference model
// and the watermark configuration from flags, and printing results.
#ifndef TRACEMARK_CLI_COMMON_H_
#define TRACEMARK_CLI_COMMON_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/data_dir.h"
#include "tracemark/base/file_io.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/refmodel/kneser_ney.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::cli {

using base::WriteFileAtomically;

using detect::kDefaultEncoding;

// Flags shared by the commands that need the key, the data and the watermark configuration.
struct CommonFlags {
  std::string data_dir;  // default: $TRACEMARK_DATA_DIR, else ./data
  std::string key_file;
  std::string key_env;
  std::string scheme = "kgw";
  std::string watermark_spec;  // extra key=value parameters
  std::string encoding = kDefaultEncoding;
  bool json = false;
};

using base::DataDir;  // --data-dir, else the default (base/data_dir.h)

// The master key from --key FILE or --key-env VAR (exactly one).
absl::StatusOr<watermark::Key> LoadMasterKey(const CommonFlags& f);
absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(const CommonFlags& f);
// The watermark configuration: defaults, then --scheme, then --watermark, for `vocab_size`.
absl::StatusOr<watermark::Config> LoadConfig(const CommonFlags& f, int32_t vocab_size);
// The reference model at `path` (default: the one set-up trains under the data dir).
absl::StatusOr<refmodel::KneserNeyModel> LoadModel(const CommonFlags& f, const std::string& path);

// Reads a whole file, or standard input for "-".
absl::StatusOr<std::string> ReadInput(const std::string& path);

using detect::ParseEpochs;

// The accounts issued, from "--accounts N" (ids 0..N-1) or "--accounts FILE" (one id a line;
// '#' starts a comment); both empty for "" (any id).
struct IssuedAccountsFlag {
  uint64_t limit = 0;
  std::vector<uint64_t> ids;  // sorted
};
absl::StatusOr<IssuedAccountsFlag> ParseAccounts(const std::string& spec);

// The attribution flags `detect` and `scan` share (one rule: detect/text_detection.h).
struct AttributionFlags {
  std::string accounts;  // --accounts N|FILE
  double alpha = detect::kDefaultAttributionAlpha;
  size_t max_candidates = detect::kDefaultMaxCandidates;
};
// InvalidArgument naming the flag for an alpha outside (0, 1) or no candidate.
absl::Status CheckAttributionFlags(const AttributionFlags& f);

// Prints "tracemark: error: ..." and returns the exit code for `s` (0 when OK).
int Report(const absl::Status& s);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_COMMON_H_
