// The `report` subcommands (docs/reports.md): print a signing key's public key, verify a report
// (and recompute it from its inputs), render it.
#ifndef TRACEMARK_CLI_REPORT_H_
#define TRACEMARK_CLI_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common.h"
#include "nlohmann/json.hpp"

namespace tracemark::cli {

struct ReportKeyFlags {
  std::string signing_key;
  bool json = false;
};
absl::Status ReportPublicKey(const ReportKeyFlags& f);

struct ReportVerifyFlags {
  CommonFlags common;  // --key/--key-env: also recompute the result from --inputs
  std::string report;
  std::string public_key;           // 64 hex digits, or a file holding them
  std::vector<std::string> inputs;  // files to check against the report's digests
  int threads = 0;
};
absl::Status ReportVerify(const ReportVerifyFlags& f);

struct ReportRenderFlags {
  std::string report;
  std::string public_key;           // the report is rendered only once its signature is checked
  std::string format = "markdown";  // or "html" (self-contained, with plots)
  std::string out;                  // default: standard output
};
// A rendering for a non-technical reader: what was tested, what was found, the error rates
// behind it, and how to check and reproduce it.
absl::Status ReportRender(const ReportRenderFlags& f);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_REPORT_H_
