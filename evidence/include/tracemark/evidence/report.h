// Signed evidence reports (docs/reports.md). A report is a JSON payload of format
// "tracemark-report/1" in a DSSE envelope signed with Ed25519 (envelope.h). It holds the SHA-256
// and size of every input, the software version and build, every option of the scan (enough to
// rerun it), the watermark key's id and commitment (never the key), the validity studies it relies
// on, the time and the full result.
//
//   TRACEMARK_ASSIGN_OR_RETURN(ScanJobOutput out, RunScanJob(spec, master));
//   TRACEMARK_ASSIGN_OR_RETURN(nlohmann::json report, BuildReport(spec, out, "scan"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::string envelope, SignReport(report, signer));
//   ...
//   TRACEMARK_ASSIGN_OR_RETURN(OpenedReport r, OpenReport(envelope, public_key_hex));
//   TRACEMARK_ASSIGN_OR_RETURN(Recomputation c, Recompute(r.report, files, master, "data", 0));
//   if (!c.identical) ... c.first_difference ...
#ifndef TRACEMARK_EVIDENCE_REPORT_H_
#define TRACEMARK_EVIDENCE_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::evidence {

inline constexpr char kReportFormat[] = "tracemark-report/1";

// The software version and build this library was compiled as ("0.1.0", "gcc 12.2.0, ...").
std::string SoftwareVersion();
std::string SoftwareBuild();

// The report of a finished scan: digests the files `out` read (DataLoss when one cannot be read).
absl::StatusOr<nlohmann::json> BuildReport(const detect::ScanJobSpec& spec,
                                           const detect::ScanJobOutput& out,
                                           std::string_view command);

// The report in a signed envelope.
absl::StatusOr<std::string> SignReport(const nlohmann::json& report, const EnvelopeSigner& signer);

struct OpenedReport {
  VerifiedEnvelope envelope;
  nlohmann::json report;
  std::string envelope_sha256;  // of the envelope's bytes as given: which signed file this is
  std::string public_key_hex;   // the key its signature verified with (64 hex digits)
};

// Checks the envelope's signature against `public_key_hex` (a bad one fails with only "signature
// verification failed", envelope.h) and that it holds a tracemark report (InvalidArgument if not).
absl::StatusOr<OpenedReport> OpenReport(std::string_view envelope, std::string_view public_key_hex);

// Which given files are which of the report's inputs, by SHA-256.
struct InputMatch {
  nlohmann::json checked;            // [{report_path, sha256, seen_in, given_path|null}]
  std::vector<std::string> missing;  // report paths no given file matches
  std::vector<std::string> inputs;   // given files in the report's input order (when complete)
  std::vector<std::string> seen_in;  // likewise for the suspected training data
};
absl::StatusOr<InputMatch> MatchInputs(const nlohmann::json& report,
                                       const std::vector<std::string>& given_paths);

struct Recomputation {
  bool identical = false;
  std::string first_difference;  // a JSON pointer into the result, "" when identical
  nlohmann::json recomputed;     // the rerun's canonical result
};

// Reruns the report's scan on `match`'s files (every input must be matched) with `master`, whose
// id and commitment must be the report's (FailedPrecondition otherwise), and compares the
// canonical results (scan_job.h CanonicalResult).
absl::StatusOr<Recomputation> Recompute(const nlohmann::json& report, const InputMatch& match,
                                        const watermark::Key& master, const std::string& data_dir,
                                        int threads);

// For a non-technical reader: what was tested, what was found (the attributed documents among
// it), the error rates (which figures are exact and which bounds), how to check and reproduce it.
// A rendering is not signed: it names the envelope it renders by SHA-256 and the signer's public
// key, so that an edited page cannot pass for the signed report. The HTML page is
// self-contained, with its plots as inline SVG.
std::string RenderReportMarkdown(const OpenedReport& r);
std::string RenderReportHtml(const OpenedReport& r);

}  // namespace tracemark::evidence

#endif  // TRACEMARK_EVIDENCE_REPORT_H_
