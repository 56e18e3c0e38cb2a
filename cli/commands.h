// The tracemark subcommands, each a function of its parsed flags that returns a status.
#ifndef TRACEMARK_CLI_COMMANDS_H_
#define TRACEMARK_CLI_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common.h"
#include "scan_spec_flags.h"

namespace tracemark::cli {

absl::Status Keygen(const std::string& out);

struct TrainFlags {
  CommonFlags common;
  int order = 4;
  std::string out;  // default: the data dir's reference model path
};
absl::Status TrainModel(const TrainFlags& f);

struct GenerateFlags {
  CommonFlags common;
  std::string model;
  uint64_t account = 0;
  uint32_t epoch = 0;
  std::string prompt;
  int max_tokens = 200;
  uint64_t seed = 1;
  double temperature = 1.0;
  int top_k = 64;
  double top_p = 1.0;
  bool no_watermark = false;
  bool canary = false;  // canary phrasings on (docs/canary.md)
  std::string lexicon;  // empty: the built-in lexicon
  std::string ledger;   // append the answer's record to this ledger directory (docs/ledger.md)
};
absl::Status Generate(const GenerateFlags& f);

struct DetectFlags {
  CommonFlags common;
  std::optional<uint64_t> account;
  std::string epochs = "0";
  std::string prompt;
  AttributionFlags attribution;
  std::string input = "-";
};
absl::Status Detect(const DetectFlags& f);

struct ScanFlags {
  CommonFlags common;  // --data-dir, --key, --key-env, --json
  ScanSpecFlags spec;  // what shapes the result (scan_spec_flags.h)
  int threads = 0;
  bool no_progress = false;
  std::string report;       // write a signed evidence report here
  std::string signing_key;  // Ed25519 seed file for --report
};
absl::Status Scan(const ScanFlags& f);

struct CanarySuiteFlags {
  std::string out;
  bool force = false;
};
absl::Status CanarySuite(const CanarySuiteFlags& f);

struct CanaryLexiconFlags {
  CommonFlags common;
  std::string lexicon;
  bool list = false;
};
absl::Status CanaryLexiconInfo(const CanaryLexiconFlags& f);

struct ServeFlags {
  CommonFlags common;
  std::string model;  // default: the reference model under the data dir
  std::string name = "tracemark-reference";
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string port_file;  // write the bound port here (with --port 0)
  int threads = 4;
  int max_tokens_limit = 4096;
  bool watermark = false;  // provider mode: watermark each answer for its API key's account
  uint32_t epoch = 0;
  bool canary = false;
  std::string lexicon;
  std::string api_keys;  // file of "KEY ACCOUNT" lines
  std::string ledger;    // record every answer in this ledger directory (docs/ledger.md)
};
absl::Status ModelServe(const ServeFlags& f);

struct LedgerImportFlags {
  CommonFlags common;  // --tokenizer, --data-dir; --key/--key-env for the epoch's key id
  std::string ledger;
  std::vector<std::string> inputs;  // JSONL files ("-": standard input)
  uint32_t epoch = 0;
  bool skip_bad = false;  // import the good lines, report the bad ones
};
absl::Status LedgerImport(const LedgerImportFlags& f);

struct LedgerShowFlags {
  std::string ledger;
  // Print the first N records (of --account); unset: none, or 20 with --account.
  std::optional<size_t> records;
  std::optional<uint64_t> account;  // only this account's records are printed
  bool skip_damaged = false;
  int windows = 0;  // > 0: the window index of windows of this many ids (exclusive, shared)
  bool json = false;
};
absl::Status LedgerShow(const LedgerShowFlags& f);

struct ProbeFlags {
  CommonFlags common;                     // the tokenizer and watermark window of --windows-from
  std::vector<std::string> windows_from;  // window probes from this (suspected training) data
  size_t windows = 20000;
  std::string endpoint;
  std::string model;
  std::string api_key_env;
  std::string suite;                    // empty: the built-in suite
  std::string prompt_field = "prompt";  // "prompt" (chat) or "prefix" (continuation models)
  std::string out;
  int concurrency = 4;
  double rate = 0;
  int attempts = 6;
  double timeout = 120;
  int samples = 1;
  int max_tokens = 256;
  double temperature = 1.0;
  int logprobs = -1;
  size_t limit = 0;
  bool no_progress = false;
};
absl::Status Probe(const ProbeFlags& f);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_COMMANDS_H_
