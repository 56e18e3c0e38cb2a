#include "report.h"

#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

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

// A verified report's payload, parsed; InvalidArgument when it is not a tracemark report.
absl::StatusOr<std::pair<verifier::VerifiedEnvelope, json>> OpenReport(
    const std::string& path, const std::string& public_key_arg) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string envelope, ReadInput(path));
  TRACEMARK_ASSIGN_OR_RETURN(std::string public_key, PublicKeyArg(public_key_arg));
  TRACEMARK_ASSIGN_OR_RETURN(verifier::VerifiedEnvelope v,
                             verifier::VerifyEnvelope(envelope, public_key));
  if (v.payload_type != verifier::kReportPayloadType) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed, but not a tracemark report (payload type ", v.payload_type, ")"));
  }
  json report = json::parse(v.payload, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object() || report.value("format", "") != kFormat ||
      !report.contains("inputs") || !report["inputs"].is_array() || !report.contains("result") ||
      !report["result"].is_object()) {
    return absl::InvalidArgumentError("signed, but the report inside is not " +
                                      std::string(kFormat));
  }
  return std::make_pair(std::move(v), std::move(report));
}

// A p-value as the report holds it (a number, or a decimal string when below double's range).
std::string P(const json& p) {
  if (p.is_string()) return p.get<std::string>();
  if (p.is_number()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2g", p.get<double>());
    return buf;
  }
  return "n/a";
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
  return WriteFileAtomically(path, envelope);
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
  TRACEMARK_ASSIGN_OR_RETURN(auto opened, OpenReport(f.report, f.public_key));
  const verifier::VerifiedEnvelope& v = opened.first;
  const json& report = opened.second;
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

absl::Status ReportRender(const ReportRenderFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(auto opened, OpenReport(f.report, f.public_key));
  const json& r = opened.second;
  const json& res = r["result"];
  const json opts = r.value("options", json::object());
  std::ostringstream md;
  md << "# Evidence report\n\n"
     << "**Signature: valid.** Signed by key id `" << opened.first.key_id << "` on "
     << r.value("created", "?") << ", with tracemark " << r["tool"].value("version", "?")
     << ". Any change to this report after signing would have made the check fail.\n\n";
  md << "## What was tested\n\n"
     << "The command `tracemark " << r.value("command", "?") << "` read " << r["inputs"].size()
     << " file(s). Each is identified by its SHA-256 digest, so anyone holding the same files can "
        "confirm that this report is about them:\n\n| file | bytes | SHA-256 |\n|---|---|---|\n";
  for (const json& in : r["inputs"]) {
    md << "| " << in.value("path", "?") << " | " << in.value("bytes", 0) << " | `"
       << in.value("sha256", "?") << "` |\n";
  }
  md << "\nThe watermark key is identified by id `" << r["keys"].value("master_key_id", "?")
     << "` and commitment `" << r["keys"].value("master_key_commitment", "?")
     << "`; the key itself is not in this report. Settings: `" << opts.dump() << "`.\n\n";
  md << "## What was found\n\n";
  if (res.contains("provider")) {
    md << "- **Provider watermark over the whole dataset: p = " << P(res["provider"]["p_value"])
       << "** (" << res["provider"].value("tuples_scored", 0)
       << " distinct scored positions). This is the probability of a result at least this "
          "extreme if the text had not come from the provider's watermarked model.\n";
  }
  if (res.contains("totals")) {
    const json& t = res["totals"];
    md << "- " << t.value("documents", 0) << " documents scanned; "
       << t.value("documents_flagged", 0)
       << " carry the watermark individually at the report's threshold, and "
       << t.value("documents_attributed", 0) << " are attributed to an account.\n";
  }
  if (res.contains("accounts")) {
    // Accounts at the report's threshold only (a p-value below double's range is a string).
    const double alpha = opts.value("alpha", 1e-6);
    auto significant = [alpha](const json& p) {
      return p.is_string() || (p.is_number() && p.get<double>() <= alpha);
    };
    std::ostringstream rows;
    size_t n = 0;
    for (const json& a : res["accounts"]) {
      if (!significant(a.value("combined_p_value", json(1.0))) || ++n > 20) continue;
      rows << "| " << a.value("account", 0) << " | " << a.value("documents", 0) << " | "
           << a.value("attributed", 0) << " | " << P(a["combined_p_value"]) << " |\n";
    }
    if (n == 0) {
      md << "- No account's documents reach the threshold p <= " << alpha << ".\n";
    } else {
      md << "\nAccounts at p <= " << alpha << " (most significant first"
         << (n > 20 ? "; 20 shown" : "")
         << "):\n\n| account | documents | attributed | p-value (corrected for every account "
            "tested) |\n|---|---|---|---|\n"
         << rows.str() << "\n";
    }
  }
  if (res.contains("canary") && res["canary"].contains("attribution")) {
    const json& c = res["canary"];
    const json& at = c["attribution"];
    if (at.contains("top") && !at["top"].empty() && at.value("accounts_tried", 0) > 0) {
      md << "\n- **Canary phrasings:** of " << at.value("accounts_tried", 0)
         << " accounts tested, account " << at["top"][0].value("account", 0)
         << " matches best, p = " << P(at["corrected_p_value"])
         << " after correcting for every account tried.\n";
    }
    if (c.contains("cohort")) {
      md << "- **Named cohort** of " << c["cohort"].value("accounts", 0)
         << " accounts: p = " << P(c["cohort"]["p_value"]) << ".\n";
    }
  }
  if (res.contains("white_box")) {
    md << "- **The suspect's own log-probabilities** (white-box): p = "
       << P(res["white_box"]["p_value"]) << " over " << res["white_box"].value("tuples", 0)
       << " positions.\n";
  }
  if (res.contains("seen_windows")) {
    md << "- **At the windows of the suspected training data:** p = "
       << P(res["seen_windows"]["provider_p_value"]) << ".\n";
  }
  md << "\n## Error rates\n\n"
     << "Every p-value above is an exact tail probability (not an approximation) over distinct "
        "positions, corrected for every key epoch and account tried. "
     << r.value("validity", "")
     << " A p-value of 1e-9 means that, if the text were unrelated to "
        "the provider, a result this strong would arise by chance at most once in a billion "
        "such tests.\n\n"
     << "## How to check and reproduce it\n\n"
     << "```sh\ntracemark report verify REPORT --public-key PUBLIC_KEY --inputs FILES...\n```\n\n"
     << "checks the signature and that FILES are exactly the files above. Rerunning `tracemark "
     << r.value("command", "scan") << "` with the settings above and the provider's key gives "
     << "the same result.\n\n<details><summary>Method</summary>\n\n"
     << res.value("method", "") << "\n\n</details>\n";
  if (f.out.empty()) {
    std::cout << md.str();
    return absl::OkStatus();
  }
  std::ofstream out(f.out, std::ios::trunc);
  out << md.str();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", f.out));
  return absl::OkStatus();
}

}  // namespace tracemark::cli
