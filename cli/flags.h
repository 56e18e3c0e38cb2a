// The flag tables the subcommands share, so that one option reads and defaults the same wherever
// it appears: the data directory and tokenizer, the key, the watermark scheme, the attribution
// rule.
#ifndef TRACEMARK_CLI_FLAGS_H_
#define TRACEMARK_CLI_FLAGS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "common.h"

namespace tracemark::cli {

// --data-dir alone.
void AddDataDirFlag(CLI::App* cmd, std::string* data_dir);
// --data-dir and --tokenizer (alias --encoding) into `f`.
void AddDataFlags(CLI::App* cmd, CommonFlags* f);
// --tokenizer (alias --encoding) alone.
void AddTokenizerFlag(CLI::App* cmd, std::string* encoding);
// --key and --key-env.
void AddKeyFlags(CLI::App* cmd, CommonFlags* f);
// --scheme and --watermark.
void AddSchemeFlags(CLI::App* cmd, std::string* scheme, std::string* watermark);
// --json: one JSON object instead of the summary.
void AddJsonFlag(CLI::App* cmd, bool* json);
// --scheme, --watermark and --json into `f`.
void AddWatermarkFlags(CLI::App* cmd, CommonFlags* f);
// --accounts, --alpha and --max-candidates: one attribution rule for detect, scan and remote
// submit.
void AddAttributionFlags(CLI::App* cmd, AttributionFlags* f);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_FLAGS_H_
