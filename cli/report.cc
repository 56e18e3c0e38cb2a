#include "report.h"

#include <iostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/evidence/report.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::cli {
namespace {

using nlohmann::json;

// The public key from --public-key: 64 hex digits, or a file holding them.
absl::StatusOr<std::string> PublicKeyArg(const std::string& arg) {
  if (evidence::KeyIdOfPublicKey(arg).ok()) return arg;
  absl::StatusOr<std::string> text = base::ReadFile(arg, "public key file");
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--public-key: neither 64 hex digits nor a readable file holding them (",
                     text.status().message(), ")"));
  }
  std::string key(absl::StripAsciiWhitespace(*text));
  if (!evidence::KeyIdOfPublicKey(key).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--public-key: ", arg, " does not hold a 64-hex-digit public key"));
  }
  return key;
}

absl::StatusOr<evidence::OpenedReport> Open(const std::string& path,
                                            const std::string& public_key_arg) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string envelope, ReadInput(path));
  TRACEMARK_ASSIGN_OR_RETURN(std::string public_key, PublicKeyArg(public_key_arg));
  return evidence::OpenReport(envelope, public_key);
}

}  // namespace

absl::Status ReportPublicKey(const ReportKeyFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed, watermark::ReadMasterKeyFile(f.signing_key));
  TRACEMARK_ASSIGN_OR_RETURN(evidence::EnvelopeSigner signer,
                             evidence::EnvelopeSigner::FromSeed(seed));
  if (f.json) {
    std::cout << json{{"public_key", signer.public_key_hex()}, {"key_id", signer.key_id()}}.dump(2)
              << "\n";
  } else {
    std::cout << signer.public_key_hex() << "\n";
    std::cerr << "key id " << signer.key_id()
              << " (give the public key to whoever checks your reports)\n";
  }
  return absl::OkStatus();
}

absl::Status ReportVerify(const ReportVerifyFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(evidence::OpenedReport opened, Open(f.report, f.public_key));
  const json& report = opened.report;
  const bool recompute = !f.common.key_file.empty() || !f.common.key_env.empty();
  if (recompute && f.inputs.empty()) {
    return absl::InvalidArgumentError("recomputing a report (--key) needs its --inputs");
  }
  evidence::InputMatch match;
  if (!f.inputs.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(match, evidence::MatchInputs(report, f.inputs));
  }
  std::optional<evidence::Recomputation> rerun;
  if (recompute && match.missing.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    TRACEMARK_ASSIGN_OR_RETURN(
        rerun, evidence::Recompute(report, match, master, DataDir(f.common.data_dir), f.threads));
  }
  const json& result = report["result"];
  if (f.common.json) {
    json out = {{"signature", "valid"},
                {"signing_key_id", opened.envelope.key_id},
                {"report", report},
                {"inputs_checked", match.checked},
                {"inputs_missing", match.missing}};
    if (rerun.has_value()) {
      out["recomputed"] = {{"identical", rerun->identical},
                           {"first_difference", rerun->first_difference}};
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "signature valid: signed by key id " << opened.envelope.key_id << "\n"
              << "report: " << report.value("command", "?") << " of " << report["inputs"].size()
              << " input file(s), created " << report.value("created", "?") << " by tracemark "
              << report["tool"].value("version", "?") << "\n"
              << "watermark key id " << report["keys"].value("master_key_id", "?")
              << ", commitment " << report["keys"].value("master_key_commitment", "?") << "\n";
    if (result.contains("provider")) {
      std::cout << "dataset provider p-value: "
                << detect::PValueText(result["provider"].value("p_value", json())) << " over "
                << result["provider"].value("tuples_scored", 0) << " unique tuples\n";
    }
    if (!f.inputs.empty()) {
      std::cout << "inputs: " << match.checked.size() - match.missing.size() << " of "
                << match.checked.size() << " match the given files byte for byte\n";
    }
    if (rerun.has_value()) {
      std::cout << "recomputed from the inputs: "
                << (rerun->identical
                        ? "identical result"
                        : "DIFFERENT result (first at " + rerun->first_difference + ")")
                << "\n";
    }
  }
  if (!match.missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        match.missing.size(), " input(s) of the report are not among the given files (first: ",
        match.missing.front(), "): the report is about other data"));
  }
  if (rerun.has_value() && !rerun->identical) {
    return absl::DataLossError(absl::StrCat("the recomputed result differs from the report's at ",
                                            rerun->first_difference));
  }
  return absl::OkStatus();
}

absl::Status ReportRender(const ReportRenderFlags& f) {
  if (f.format != "markdown" && f.format != "html") {
    return absl::InvalidArgumentError("--format is markdown or html");
  }
  TRACEMARK_ASSIGN_OR_RETURN(evidence::OpenedReport opened, Open(f.report, f.public_key));
  const std::string text = f.format == "html" ? evidence::RenderReportHtml(opened)
                                              : evidence::RenderReportMarkdown(opened);
  if (f.out.empty()) {
    std::cout << text;
    return absl::OkStatus();
  }
  return WriteFileAtomically(f.out, text);
}

}  // namespace tracemark::cli
