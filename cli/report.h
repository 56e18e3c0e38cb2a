// Signed evidence reports (docs/reports.md): what `scan --report` writes, and the `report`
// subcommands that print a signing key's public key and verify a report.
#ifndef TRACEMARK_CLI_REPORT_H_
#define TRACEMARK_CLI_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "tracemark/verifier/envelope.h"

namespace tracemark::cli {

struct ReportContext {
  std::string command;               // "scan"
  std::vector<std::string> inputs;   // every input file, in reading order
  std::vector<std::string> seen_in;  // the suspected training data, if any
  std::string master_key_id, master_key_commitment;
  nlohmann::json options;  // every option that shaped the result
};

// Builds the report (inputs' SHA-256 digests, software version, options, key ids and commitments,
// the result, the time), signs it and writes the envelope to `path` (atomically).
absl::Status WriteSignedReport(const ReportContext& ctx, const nlohmann::json& result,
                               const verifier::EnvelopeSigner& signer, const std::string& path);

struct ReportKeyFlags {
  std::string signing_key;
  bool json = false;
};
absl::Status ReportPublicKey(const ReportKeyFlags& f);

struct ReportVerifyFlags {
  std::string report;
  std::string public_key;           // 64 hex digits, or a file holding them
  std::vector<std::string> inputs;  // files to check against the report's digests
  bool json = false;
};
absl::Status ReportVerify(const ReportVerifyFlags& f);

struct ReportRenderFlags {
  std::string report;
  std::string public_key;  // the report is rendered only once its signature is checked
  std::string out;         // Markdown file (default: standard output)
};
// A Markdown rendering for a non-technical reader: what was tested, what was found, the error
// rates behind it, and how to check and reproduce it.
absl::Status ReportRender(const ReportRenderFlags& f);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_REPORT_H_
