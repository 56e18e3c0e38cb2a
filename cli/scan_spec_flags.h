// The flags that shape a scan's result, shared by `tracemark scan` and `tracemark remote submit`:
// one flag table and one conversion into the scan's one spec type, detect::ScanJobSpec. The spec
// converts to and from JSON in one place (ScanJobSpec::Options/FromOptions, detect/scan_job.h) and
// to and from the service's proto in another (service::ToScanParameters, service/client.h; the
// server's FromProto). The result stays typed (detect::ScanJobOutput) until it is printed.
#ifndef TRACEMARK_CLI_SCAN_SPEC_FLAGS_H_
#define TRACEMARK_CLI_SCAN_SPEC_FLAGS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common.h"
#include "tracemark/detect/scan_job.h"

namespace tracemark::cli {

struct ScanSpecFlags {
  std::string encoding = kDefaultEncoding;
  std::string scheme = "kgw";
  std::string watermark;  // extra key=value parameters
  AttributionFlags attribution;
  std::string epochs = "0";
  bool independent_documents = false;  // test each document on its unshared tuples
  std::string family_control = "none";
  bool no_canary = false;
  std::string lexicon;               // empty: the built-in lexicon
  std::string cohort;                // file of account ids tested together for canary evidence
  std::vector<std::string> seen_in;  // suspected training data: also test at its windows
  std::vector<std::string> inputs;
};

// --tokenizer, --scheme, --watermark, the attribution flags, --epochs, --independent-documents,
// --family-control, --no-canary, --cohort and --seen-in (`seen_in_help` says what the paths are:
// local files, or files to upload). `tracemark scan` adds --lexicon and the inputs itself.
void AddScanSpecFlags(CLI::App* cmd, ScanSpecFlags* f, const std::string& seen_in_help);

// The spec the flags describe (data_dir and threads are the caller's). InvalidArgument naming
// the flag for a malformed value; NotFound for an --accounts or --cohort file that is missing.
absl::StatusOr<detect::ScanJobSpec> SpecFromFlags(const ScanSpecFlags& f);

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_SCAN_SPEC_FLAGS_H_
