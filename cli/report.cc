#include "report.h"

#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/verifier/input.h"
#include "tracemark/watermark/digest.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::cli {
namespace {

using nlohmann::json;

constexpr char kFormat[] = "tracemark-report/1";

absl::StatusOr<json> Digests(const std::vector<std::string>& paths) {
  json out = json::array();
  for (const std::string& p : paths) {
    uint64_t bytes = 0;
    TRACEMARK_ASSIGN_OR_RETURN(std::string sha, watermark::Sha256HexOfFile(p, &bytes));
    out.push_back({{"path", p}, {"bytes", bytes}, {"sha256", sha}});
  }
  return out;
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The public key from --public-key: 64 hex digits, or a file holding them.
absl::StatusOr<std::string> PublicKeyArg(const std::string& arg) {
  if (verifier::KeyIdOfPublicKey(arg).ok()) return arg;
  std::ifstream in(arg);
  if (!in) {
    return absl::InvalidArgumentError(
        "--public-key: neither 64 hex digits nor a readable file holding them");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string key(absl::StripAsciiWhitespace(text));
  if (!verifier::KeyIdOfPublicKey(key).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--public-key: ", arg, " does not hold a 64-hex-digit public key"));
  }
  return key;
}

}  // namespace

absl::Status WriteSignedReport(const ReportContext& ctx, const json& result,
                               const verifier::EnvelopeSigner& signer, const std::string& path) {
  TRACEMARK_ASSIGN_OR_RETURN(json inputs, Digests(ctx.inputs));
  TRACEMARK_ASSIGN_OR_RETURN(json seen_in, Digests(ctx.seen_in));
  const json report = {
      {"format", kFormat},
      {"tool",
       {{"name", "tracemark"},
        {"version", TRACEMARK_VERSION},
        {"build", absl::StrCat("gcc ", __VERSION__, ", built ", __DATE__)}}},
      {"created", UtcNow()},
      {"command", ctx.command},
      {"inputs", inputs},
      {"seen_in", seen_in},
      {"keys",
       {{"master_key_id", ctx.master_key_id},
        {"master_key_commitment", ctx.master_key_commitment},
        {"epochs", result.value("epochs", json::array())}}},
      {"options", ctx.options},
      {"validity",
       "Exact tails over unique (context, token) tuples; the null is checked on 120,202 real clean "
       "documents and under wrong keys in docs/validity.md, and for canaries in docs/canary.md."},
      {"result", result}};
  TRACEMARK_ASSIGN_OR_RETURN(std::string envelope,
                             signer.Sign(verifier::kReportPayloadType, report.dump(2)));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << envelope;
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status ReportPublicKey(const ReportKeyFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed, watermark::ReadMasterKeyFile(f.signing_key));
  TRACEMARK_ASSIGN_OR_RETURN(verifier::EnvelopeSigner signer,
                             verifier::EnvelopeSigner::FromSeed(seed));
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
  TRACEMARK_ASSIGN_OR_RETURN(std::string envelope, ReadInput(f.report));
  TRACEMARK_ASSIGN_OR_RETURN(std::string public_key, PublicKeyArg(f.public_key));
  TRACEMARK_ASSIGN_OR_RETURN(verifier::VerifiedEnvelope v,
                             verifier::VerifyEnvelope(envelope, public_key));
  if (v.payload_type != verifier::kReportPayloadType) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed, but not a tracemark report (payload type ", v.payload_type, ")"));
  }
  const json report = json::parse(v.payload, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object() || report.value("format", "") != kFormat ||
      !report.contains("inputs") || !report["inputs"].is_array()) {
    return absl::InvalidArgumentError("signed, but the report inside is not " +
                                      std::string(kFormat));
  }
  json checked = json::array();
  std::vector<std::string> problems;
  if (!f.inputs.empty()) {
    // The given files, walked as a scan walks them, by digest.
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<verifier::DocumentReader> reader,
                               verifier::DocumentReader::Open(f.inputs));
    absl::flat_hash_map<std::string, std::string> given;  // sha256 -> path
    for (const std::string& p : reader->paths()) {
      TRACEMARK_ASSIGN_OR_RETURN(std::string sha, watermark::Sha256HexOfFile(p));
      given.emplace(sha, p);
    }
    for (const json& in : report["inputs"]) {
      const std::string sha = in.value("sha256", "");
      const auto it = given.find(sha);
      const bool ok = it != given.end();
      checked.push_back({{"report_path", in.value("path", "")},
                         {"sha256", sha},
                         {"given_path", ok ? json(it->second) : json(nullptr)}});
      if (!ok) problems.push_back(in.value("path", "?"));
    }
  }
  const json& result = report.value("result", json::object());
  if (f.json) {
    std::cout << json{{"signature", "valid"},
                      {"signing_key_id", v.key_id},
                      {"report", report},
                      {"inputs_checked", checked},
                      {"inputs_missing", problems}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "signature valid: signed by key id " << v.key_id << "\n"
              << "report: " << report.value("command", "?") << " of " << report["inputs"].size()
              << " input file(s), created " << report.value("created", "?") << " by tracemark "
              << report["tool"].value("version", "?") << "\n"
              << "watermark key id " << report["keys"].value("master_key_id", "?")
              << ", commitment " << report["keys"].value("master_key_commitment", "?") << "\n";
    if (result.contains("provider")) {
      std::cout << "dataset provider p-value: "
                << result["provider"].value("p_value", json()).dump() << " over "
                << result["provider"].value("tuples_scored", 0) << " unique tuples\n";
    }
    if (!f.inputs.empty()) {
      std::cout << "inputs: " << checked.size() - problems.size() << " of " << checked.size()
                << " match the given files byte for byte\n";
    }
  }
  if (!problems.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        problems.size(), " input(s) of the report are not among the given files (first: ",
        problems.front(), "): the report is about other data"));
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cli
