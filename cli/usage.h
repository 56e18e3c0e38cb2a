// Usage errors of the tracemark command: one documented shape ("tracemark: error: ...", exit 2),
// and a suggestion for a mistyped subcommand ("did you mean 'scan'?").
#ifndef TRACEMARK_CLI_USAGE_H_
#define TRACEMARK_CLI_USAGE_H_

#include <string>

#include "CLI/CLI.hpp"

namespace tracemark::cli {

// The closest name among `app`'s subcommands to `word` (at most two edits, or a third of its
// letters for a long word), or "" when none is that close.
std::string ClosestSubcommand(const CLI::App& app, const std::string& word);

// The message for a parse error of `argv` against `app`: for a word where a subcommand was
// expected, names it and the closest subcommand; otherwise CLI11's reason. One line, without
// the "tracemark: error: " prefix.
std::string UsageMessage(const CLI::App& app, const CLI::ParseError& e, int argc,
                         const char* const* argv);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_USAGE_H_
