#include "tracemark/evidence/report.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/dataset/input.h"
#include "tracemark/watermark/digest.h"

#ifndef TRACEMARK_VERSION
#define TRACEMARK_VERSION "unknown"
#endif

namespace tracemark::evidence {
namespace {

using nlohmann::json;

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

// A p-value as the report holds it (a number, or a decimal string when below double's range).
std::string P(const json& p) {
  if (p.is_string()) return p.get<std::string>();
  if (p.is_number()) return absl::StrFormat("%.2g", p.get<double>());
  return "n/a";
}

// -log10 of a p-value as the report holds it; 0 when absent or malformed.
double MinusLog10(const json& p) { return -detect::PValueLog10(p).value_or(0); }

// The rendering's content, written once and emitted as Markdown or HTML. Text uses Markdown's
// inline **bold** and `code`, which the HTML emitter translates.
struct Bar {
  std::string label;
  double value = 0;
};
struct Plot {
  std::string title, x_label, y_label;
  std::vector<Bar> bars;
  std::string note;  // what the Markdown rendering shows instead
};
struct Block {
  enum Kind { kHeading, kParagraph, kBullet, kTable, kCode, kPlot, kDetails } kind;
  std::string text;
  std::vector<std::vector<std::string>> rows;  // kTable: header first
  Plot plot;
};

// The inputs by name (as uploaded, when a service stored them under another path), size and
// digest; where they were read from when that differs from the name.
Block InputsTable(const json& inputs) {
  const bool named =
      std::any_of(inputs.begin(), inputs.end(), [](const json& in) { return in.contains("name"); });
  Block t{Block::kTable, "", {{"file", "bytes", "SHA-256"}}, {}};
  if (named) t.rows[0].push_back("stored as");
  for (const json& in : inputs) {
    const std::string path = in.value("path", "?");
    t.rows.push_back({in.value("name", path), std::to_string(in.value("bytes", 0)),
                      absl::StrCat("`", in.value("sha256", "?"), "`")});
    if (named) t.rows.back().push_back(path);
  }
  return t;
}

// The documents attributed to an account, most significant first (at most `limit` shown).
std::vector<Block> AttributedDocuments(const json& documents, size_t limit) {
  std::vector<const json*> hits;
  for (const json& d : documents) {
    if (d.contains("account") && d["account"].is_number()) hits.push_back(&d);
  }
  if (hits.empty()) return {};
  std::stable_sort(hits.begin(), hits.end(), [](const json* a, const json* b) {
    return MinusLog10(a->value("account_p_value", json(1.0))) >
           MinusLog10(b->value("account_p_value", json(1.0)));
  });
  Block t{Block::kTable,
          "",
          {{"document", "source", "account", "p-value (corrected for the candidates tried)"}},
          {}};
  for (size_t i = 0; i < hits.size() && i < limit; ++i) {
    const json& d = *hits[i];
    t.rows.push_back({d.value("id", "?"), d.value("source", "?"),
                      std::to_string(d["account"].get<uint64_t>()),
                      P(d.value("account_p_value", json()))});
  }
  Block intro{Block::kParagraph,
              absl::StrCat("Documents attributed to an account (", hits.size(),
                           hits.size() > limit ? absl::StrCat("; the ", limit,
                                                              " strongest shown, all are in the "
                                                              "signed report")
                                               : std::string(),
                           "):"),
              {},
              {}};
  return {std::move(intro), std::move(t)};
}

// The blocks of a rendering, appended in reading order.
struct Page {
  std::vector<Block> blocks;
  void Heading(std::string t) { blocks.push_back({Block::kHeading, std::move(t), {}, {}}); }
  void Para(std::string t) { blocks.push_back({Block::kParagraph, std::move(t), {}, {}}); }
  void Bullet(std::string t) { blocks.push_back({Block::kBullet, std::move(t), {}, {}}); }
  void Add(Block b) { blocks.push_back(std::move(b)); }
};

// Who signed the report, and that the page is only a rendering of the signed envelope.
void AddSignature(const OpenedReport& opened, Page* page) {
  const json& r = opened.report;
  page->Heading("Evidence report");
  page->Para(absl::StrCat("**Signature: valid.** Signed by key id `", opened.envelope.key_id,
                          "` on ", r.value("created", "?"), ", with tracemark ",
                          r["tool"].value("version", "?"),
                          ". Any change to this report after signing would have made the check "
                          "fail."));
  page->Para(absl::StrCat(
      "This page is an unsigned rendering of the signed envelope whose SHA-256 is `",
      opened.envelope_sha256, "`, verified with the public key `", opened.public_key_hex,
      "`. The envelope is the evidence: an edited page would not match it, and `tracemark "
      "report verify` checks the envelope itself."));
}

// The scan's settings, one row each (the inputs have their own table).
Block SettingsTable(const json& opts) {
  Block settings{Block::kTable, "", {{"setting", "value"}}, {}};
  for (const auto& [key, value] : opts.items()) {
    if (key == "inputs") continue;  // the table above
    std::string shown;
    if (value.is_array() && value.empty()) {
      shown = "(none)";
    } else if (value.is_string()) {
      shown = value.get<std::string>().empty() ? "(default)"
                                               : absl::StrCat("`", value.get<std::string>(), "`");
    } else {
      shown = absl::StrCat("`", value.dump(), "`");
    }
    settings.rows.push_back({key, shown});
  }
  return settings;
}

// The command, its input files, the watermark key's identity and the settings.
void AddWhatWasTested(const json& r, const json& opts, Page* page) {
  page->Heading("What was tested");
  page->Para(absl::StrCat("The command `tracemark ", r.value("command", "?"), "` read ",
                          r["inputs"].size(),
                          " file(s). Each is identified by its SHA-256 digest, so anyone holding "
                          "the same files can confirm that this report is about them:"));
  page->Add(InputsTable(r["inputs"]));
  page->Para(absl::StrCat("The watermark key is identified by id `",
                          r["keys"].value("master_key_id", "?"), "` and commitment `",
                          r["keys"].value("master_key_commitment", "?"),
                          "`; the key itself is not in this report. The scan's settings:"));
  page->Add(SettingsTable(opts));
}

// The dataset's provider test and the document counts.
void AddDatasetFindings(const json& res, Page* page) {
  if (res.contains("provider")) {
    page->Bullet(absl::StrCat("**Provider watermark over the whole dataset: p = ",
                              P(res["provider"].value("p_value", json())), "** (",
                              res["provider"].value("tuples_scored", 0),
                              " distinct scored positions). This is the probability of a result "
                              "at least this extreme if the text had not come from the "
                              "provider's watermarked model."));
  }
  if (res.contains("totals")) {
    const json& t = res["totals"];
    page->Bullet(absl::StrCat(
        t.value("documents", 0), " documents scanned; ", t.value("documents_flagged", 0),
        " carry the watermark individually at the report's threshold, and ",
        t.value("documents_attributed", 0), " are attributed to an account."));
  }
}

// The accounts whose combined p-value reaches `alpha` (the first 20 of them), as a table and a
// plot; or a bullet saying that none does.
void AddAccounts(const json& accounts, double alpha, Page* page) {
  Block rows{
      Block::kTable,
      "",
      {{"account", "documents", "attributed", "p-value (corrected for every account tested)"}},
      {}};
  Plot plot{"Accounts: strength of evidence", "account", "-log10 p (corrected)", {}, ""};
  size_t n = 0;
  for (const json& a : accounts) {
    const json p = a.value("combined_p_value", json(1.0));
    if (!(p.is_string() || (p.is_number() && p.get<double>() <= alpha)) || ++n > 20) continue;
    rows.rows.push_back({std::to_string(a.value("account", 0)),
                         std::to_string(a.value("documents", 0)),
                         std::to_string(a.value("attributed", 0)), P(p)});
    plot.bars.push_back({std::to_string(a.value("account", 0)), MinusLog10(p)});
  }
  if (n == 0) {
    page->Bullet(absl::StrCat("No account's documents reach the threshold p <= ", alpha, "."));
    return;
  }
  page->Para(absl::StrCat("Accounts at p <= ", alpha, " (most significant first",
                          n > 20 ? "; 20 shown" : "", "):"));
  page->Add(std::move(rows));
  plot.note = "the HTML rendering plots these accounts";
  page->Add({Block::kPlot, "", {}, std::move(plot)});
}

// Documents (a non-empty array) by the strength of their own provider test, plotted and tabled.
void AddDocumentStrengths(const json& documents, Page* page) {
  const std::vector<std::pair<double, std::string>> edges = {
      {1, "p > 0.1"},     {2, "0.01 - 0.1"},    {3, "1e-3 - 0.01"},
      {6, "1e-6 - 1e-3"}, {10, "1e-10 - 1e-6"}, {1e300, "p < 1e-10"}};
  Plot plot{"Documents by their provider p-value", "p-value", "documents", {}, ""};
  for (const auto& e : edges) plot.bars.push_back({e.second, 0});
  for (const json& d : documents) {
    const double s = MinusLog10(d.value("p_value", json(1.0)));
    for (size_t i = 0; i < edges.size(); ++i) {
      if (s <= edges[i].first) {
        plot.bars[i].value += 1;
        break;
      }
    }
  }
  Block table{Block::kTable, "", {{"provider p-value", "documents"}}, {}};
  for (const Bar& bar : plot.bars) {
    table.rows.push_back({bar.label, absl::StrCat(static_cast<long>(bar.value))});
  }
  plot.note = "";
  page->Para("How strongly each document carries the watermark on its own:");
  page->Add({Block::kPlot, "", {}, plot});
  page->Add(std::move(table));
}

// The canary attribution (significant at `alpha` or not) and the named cohort's test.
void AddCanary(const json& c, double alpha, Page* page) {
  const json& at = c["attribution"];
  if (at.contains("top") && !at["top"].empty() && at.value("accounts_tried", 0) > 0) {
    const json p = at.value("corrected_p_value", json(1.0));
    const bool significant = p.is_string() || (p.is_number() && p.get<double>() <= alpha);
    page->Bullet(significant
                     ? absl::StrCat("**Canary phrasings:** of ", at.value("accounts_tried", 0),
                                    " accounts tested, account ", at["top"][0].value("account", 0),
                                    " matches best, p = ", P(p),
                                    " after correcting for every account tried.")
                     : absl::StrCat("**Canary phrasings:** no account of the ",
                                    at.value("accounts_tried", 0),
                                    " tested stands out (the best, after correcting for every "
                                    "account tried, has p = ",
                                    P(p), ")."));
  }
  if (c.contains("cohort")) {
    page->Bullet(absl::StrCat("**Named cohort** of ", c["cohort"].value("accounts", 0),
                              " accounts: p = ", P(c["cohort"].value("p_value", json())), "."));
  }
}

// Every result the report holds, at the report's threshold `alpha` where one applies.
void AddWhatWasFound(const json& res, double alpha, Page* page) {
  page->Heading("What was found");
  AddDatasetFindings(res, page);
  if (res.contains("accounts") && res["accounts"].is_array()) {
    AddAccounts(res["accounts"], alpha, page);
  }
  if (res.contains("documents") && res["documents"].is_array() && !res["documents"].empty()) {
    AddDocumentStrengths(res["documents"], page);
  }
  if (res.contains("documents") && res["documents"].is_array()) {
    for (Block& blk : AttributedDocuments(res["documents"], 50)) page->Add(std::move(blk));
  }
  if (res.contains("canary") && res["canary"].contains("attribution")) {
    AddCanary(res["canary"], alpha, page);
  }
  if (res.contains("white_box")) {
    page->Bullet(absl::StrCat("**The suspect's own log-probabilities** (white-box): p = ",
                              P(res["white_box"].value("p_value", json())), " over ",
                              res["white_box"].value("tuples", 0), " positions."));
  }
  if (res.contains("seen_windows")) {
    page->Bullet(absl::StrCat("**At the windows of the suspected training data:** p = ",
                              P(res["seen_windows"].value("provider_p_value", json())), "."));
  }
}

// Which figures are exact and which are bounds, and the report's own validity statement.
void AddErrorRates(const json& r, Page* page) {
  page->Heading("Error rates");
  page->Para(absl::StrCat(
      "Which figures are exact and which are bounds. **Exact:** the provider-watermark p-values "
      "(the whole dataset's and each document's), the canary-phrasing tests and the white-box "
      "test are exact tail probabilities (not approximations) over distinct positions. "
      "**Bounds:** the account p-values, each attributed document's confirmation and each "
      "account group's combined p-value, are Chernoff upper bounds on the exact tail: the true "
      "probability is never larger than the figure given, so account evidence is at least as "
      "strong as stated. Every figure is corrected (Bonferroni) for every key epoch, candidate "
      "and account tried. ",
      r.value("validity", ""),
      " A p-value of 1e-9 means that, if the text were unrelated to the provider, a result this "
      "strong would arise by chance at most once in a billion such tests."));
}

// The commands that check the report and rerun its scan, then the method in full.
void AddHowToCheck(const json& res, Page* page) {
  page->Heading("How to check and reproduce it");
  page->Add({Block::kCode,
             "tracemark report verify REPORT --public-key PUBLIC_KEY --inputs FILES...\n"
             "tracemark report verify REPORT --public-key PUBLIC_KEY --inputs FILES... "
             "--key WATERMARK_KEY",
             {},
             {}});
  page->Para(
      "The first command checks the signature and that FILES are exactly the files above. The "
      "second, run by whoever holds the provider's watermark key (its id and commitment above "
      "must match), also reruns the scan with the settings above and requires the result to be "
      "identical.");
  page->Add({Block::kDetails, res.value("method", ""), {}, {}});
}

std::vector<Block> Content(const OpenedReport& opened) {
  const json& r = opened.report;
  const json& res = r["result"];
  const json opts = r.value("options", json::object());
  Page page;
  AddSignature(opened, &page);
  AddWhatWasTested(r, opts, &page);
  AddWhatWasFound(res, opts.value("alpha", 1e-6), &page);
  AddErrorRates(r, &page);
  AddHowToCheck(res, &page);
  return std::move(page.blocks);
}

std::string EscapeHtml(std::string_view s) {
  return absl::StrReplaceAll(absl::string_view(s.data(), s.size()),
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// Escapes `s` and turns **bold** and `code` into tags.
std::string InlineHtml(std::string_view s) {
  std::string e = EscapeHtml(s), out;
  bool bold = false, code = false;
  for (size_t i = 0; i < e.size(); ++i) {
    if (!code && e.compare(i, 2, "**") == 0) {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else if (e[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else {
      out += e[i];
    }
  }
  if (code) out += "</code>";
  if (bold) out += "</strong>";
  return out;
}

std::string Svg(const Plot& p) {
  constexpr double kW = 640, kH = 260, kLeft = 60, kBottom = 60, kTop = 30;
  double max = 0;
  for (const Bar& b : p.bars) max = std::max(max, b.value);
  if (max <= 0) max = 1;
  const double plot_h = kH - kBottom - kTop;
  const double slot = (kW - kLeft - 10) / static_cast<double>(std::max<size_t>(1, p.bars.size()));
  std::string s = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" role=\"img\">"
      "<title>%s</title><text x=\"%.0f\" y=\"18\" font-weight=\"bold\">%s</text>"
      "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>"
      "<text x=\"12\" y=\"%.0f\" transform=\"rotate(-90 12 %.0f)\" font-size=\"12\">%s</text>"
      "<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"end\">%.3g</text>",
      kW, kH, EscapeHtml(p.title), kLeft, EscapeHtml(p.title), kLeft, kH - kBottom, kW - 10,
      kH - kBottom, kTop + plot_h, kTop + plot_h, EscapeHtml(p.y_label), kLeft - 4, kTop + 4, max);
  for (size_t i = 0; i < p.bars.size(); ++i) {
    const double h = plot_h * p.bars[i].value / max;
    const double x = kLeft + slot * static_cast<double>(i) + slot * 0.15;
    s += absl::StrFormat(
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3b6ea8\">"
        "<title>%s: %.3g</title></rect>"
        "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"middle\">%s</text>",
        x, kH - kBottom - h, slot * 0.7, h, EscapeHtml(p.bars[i].label), p.bars[i].value,
        x + slot * 0.35, kH - kBottom + 14, EscapeHtml(p.bars[i].label));
  }
  s += absl::StrFormat("<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">%s</text></svg>",
                       kLeft + (kW - kLeft) / 2 - 30, kH - 20, EscapeHtml(p.x_label));
  return s;
}

}  // namespace

std::string SoftwareVersion() { return TRACEMARK_VERSION; }
std::string SoftwareBuild() { return absl::StrCat("gcc ", __VERSION__, ", built ", __DATE__); }

absl::StatusOr<json> BuildReport(const detect::ScanJobSpec& spec, const detect::ScanJobOutput& out,
                                 std::string_view command) {
  TRACEMARK_ASSIGN_OR_RETURN(json inputs, Digests(out.input_files));
  TRACEMARK_ASSIGN_OR_RETURN(json seen_in, Digests(out.seen_in_files));
  return json{
      {"format", kReportFormat},
      {"tool", {{"name", "tracemark"}, {"version", SoftwareVersion()}, {"build", SoftwareBuild()}}},
      {"created", UtcNow()},
      {"command", command},
      {"inputs", inputs},
      {"seen_in", seen_in},
      {"keys",
       {{"master_key_id", out.master_key_id},
        {"master_key_commitment", out.master_key_commitment},
        {"epochs", out.result.value("epochs", json::array())}}},
      {"options", spec.Options()},
      {"validity",
       "Exact tails over unique (context, token) tuples; the null is checked on 120,202 real clean "
       "documents and under wrong keys in docs/validity.md, and for canaries in docs/canary.md."},
      {"result", out.result}};
}

absl::StatusOr<std::string> SignReport(const json& report, const EnvelopeSigner& signer) {
  return signer.Sign(kReportPayloadType, report.dump(2));
}

absl::StatusOr<OpenedReport> OpenReport(std::string_view envelope,
                                        std::string_view public_key_hex) {
  TRACEMARK_ASSIGN_OR_RETURN(VerifiedEnvelope v, VerifyEnvelope(envelope, public_key_hex));
  std::string key_hex = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(public_key_hex.data(), public_key_hex.size())));
  if (v.payload_type != kReportPayloadType) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed, but not a tracemark report (payload type ", v.payload_type, ")"));
  }
  json report = json::parse(v.payload, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object() || report.value("format", "") != kReportFormat ||
      !report.contains("inputs") || !report["inputs"].is_array() || !report.contains("result") ||
      !report["result"].is_object() || !report.contains("keys") || !report["keys"].is_object() ||
      !report.contains("tool") || !report["tool"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed, but the report inside is not ", kReportFormat));
  }
  OpenedReport opened{std::move(v), std::move(report), watermark::Sha256Hex(envelope),
                      std::move(key_hex)};
  // Every field the checks, the renderings and the recomputation read must have its type: a
  // signed report with a number where a string belongs is refused here, not a crash later
  // (nlohmann::json throws on a mistyped read).
  try {
    const json& r = opened.report;
    (void)r.value("created", "");
    (void)r.value("command", "");
    (void)r["tool"].value("version", "");
    (void)r["keys"].value("master_key_id", "");
    (void)r["keys"].value("master_key_commitment", "");
    for (const char* list : {"inputs", "seen_in"}) {
      if (!r.contains(list)) continue;
      for (const json& in : r.at(list)) {
        (void)in.value("path", "");
        (void)in.value("name", "");
        (void)in.value("sha256", "");
        (void)in.value("bytes", uint64_t{0});
      }
    }
    if (r["result"].contains("provider")) {
      (void)r["result"]["provider"].value("tuples_scored", uint64_t{0});
    }
    (void)Content(opened);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed, but the report's fields are not of the types ", kReportFormat,
                     " has: ", e.what()));
  }
  return opened;
}

absl::StatusOr<InputMatch> MatchInputs(const json& report,
                                       const std::vector<std::string>& given_paths) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<dataset::DocumentReader> reader,
                             dataset::DocumentReader::Open(given_paths));
  absl::flat_hash_map<std::string, std::string> given;  // sha256 -> path
  for (const std::string& p : reader->paths()) {
    TRACEMARK_ASSIGN_OR_RETURN(std::string sha, watermark::Sha256HexOfFile(p));
    given.emplace(sha, p);
  }
  InputMatch m;
  m.checked = json::array();
  for (const char* list : {"inputs", "seen_in"}) {
    if (!report.contains(list) || !report[list].is_array()) continue;
    const bool seen = std::string_view(list) == "seen_in";
    for (const json& in : report[list]) {
      const std::string sha = in.value("sha256", "");
      const auto it = given.find(sha);
      const bool ok = it != given.end();
      m.checked.push_back({{"report_path", in.value("path", "")},
                           {"sha256", sha},
                           {"seen_in", seen},
                           {"given_path", ok ? json(it->second) : json(nullptr)}});
      if (!ok) {
        m.missing.push_back(in.value("path", "?"));
      } else {
        (seen ? m.seen_in : m.inputs).push_back(it->second);
      }
    }
  }
  return m;
}

namespace {

// `j` without the object keys `like` lacks, recursively (arrays element by element).
json OnlyFieldsOf(const json& j, const json& like) {
  if (j.is_object() && like.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : j.items()) {
      if (like.contains(key)) out[key] = OnlyFieldsOf(value, like[key]);
    }
    return out;
  }
  if (j.is_array() && like.is_array() && j.size() == like.size()) {
    json out = json::array();
    for (size_t i = 0; i < j.size(); ++i) out.push_back(OnlyFieldsOf(j[i], like[i]));
    return out;
  }
  return j;
}

}  // namespace

absl::StatusOr<Recomputation> Recompute(const json& report, const InputMatch& match,
                                        const watermark::Key& master, const std::string& data_dir,
                                        int threads) {
  if (!match.missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot recompute: ", match.missing.size(),
                                                      " input(s) of the report are not among the "
                                                      "given files (first: ",
                                                      match.missing.front(), ")"));
  }
  const json& keys = report["keys"];
  if (master.Id() != keys.value("master_key_id", "") ||
      master.Commitment() != keys.value("master_key_commitment", "")) {
    return absl::FailedPreconditionError(absl::StrCat("the given watermark key (id ", master.Id(),
                                                      ") is not the report's (id ",
                                                      keys.value("master_key_id", "?"), ")"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(
      detect::ScanJobSpec spec,
      detect::ScanJobSpec::FromOptions(report.value("options", json::object())));
  spec.inputs = match.inputs;
  spec.seen_in = match.seen_in;
  spec.data_dir = data_dir;
  spec.threads = threads;
  TRACEMARK_ASSIGN_OR_RETURN(detect::ScanJobOutput out, detect::RunScanJob(spec, master));
  std::vector<std::string> report_paths;
  for (const json& in : report["inputs"]) report_paths.push_back(in.value("path", ""));
  Recomputation c;
  c.recomputed = detect::CanonicalResult(out.result, out.input_files);
  const json expected = detect::CanonicalResult(report["result"], report_paths);
  // Fields a later version added (warnings, log10 siblings) are not in an older report, and
  // not a difference from it; every field the report holds must be identical.
  const json diff = json::diff(expected, OnlyFieldsOf(c.recomputed, expected));
  c.identical = diff.empty();
  if (!c.identical) c.first_difference = diff[0].value("path", "/");
  return c;
}

std::string RenderReportMarkdown(const OpenedReport& r) {
  std::ostringstream md;
  bool first_heading = true;
  for (const Block& b : Content(r)) {
    switch (b.kind) {
      case Block::kHeading:
        md << (first_heading ? "# " : "\n## ") << b.text << "\n\n";
        first_heading = false;
        break;
      case Block::kParagraph:
        md << b.text << "\n\n";
        break;
      case Block::kBullet:
        md << "- " << b.text << "\n";
        break;
      case Block::kTable:
        md << "\n";
        for (size_t i = 0; i < b.rows.size(); ++i) {
          md << "|";
          for (const std::string& cell : b.rows[i]) md << " " << cell << " |";
          md << "\n";
          if (i == 0) {
            md << "|";
            for (size_t k = 0; k < b.rows[0].size(); ++k) md << "---|";
            md << "\n";
          }
        }
        md << "\n";
        break;
      case Block::kCode:
        md << "```sh\n" << b.text << "\n```\n\n";
        break;
      case Block::kPlot:
        if (!b.plot.note.empty()) md << "(" << b.plot.note << ")\n\n";
        break;
      case Block::kDetails:
        md << "<details><summary>Method</summary>\n\n" << b.text << "\n\n</details>\n";
        break;
    }
  }
  return md.str();
}

std::string RenderReportHtml(const OpenedReport& r) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<title>tracemark evidence report</title><style>body{font-family:sans-serif;max-width:"
       "52em;margin:2em auto;line-height:1.45}table{border-collapse:collapse}td,th{border:1px "
       "solid #bbb;padding:.25em .5em}code,pre{background:#f3f3f3}</style></head><body>\n";
  bool first_heading = true, in_list = false;
  for (const Block& b : Content(r)) {
    if (in_list && b.kind != Block::kBullet) {
      h << "</ul>\n";
      in_list = false;
    }
    switch (b.kind) {
      case Block::kHeading:
        h << (first_heading ? "<h1>" : "<h2>") << InlineHtml(b.text)
          << (first_heading ? "</h1>\n" : "</h2>\n");
        first_heading = false;
        break;
      case Block::kParagraph:
        h << "<p>" << InlineHtml(b.text) << "</p>\n";
        break;
      case Block::kBullet:
        if (!in_list) h << "<ul>\n";
        in_list = true;
        h << "<li>" << InlineHtml(b.text) << "</li>\n";
        break;
      case Block::kTable:
        h << "<table>\n";
        for (size_t i = 0; i < b.rows.size(); ++i) {
          h << "<tr>";
          for (const std::string& cell : b.rows[i]) {
            h << (i == 0 ? "<th>" : "<td>") << InlineHtml(cell) << (i == 0 ? "</th>" : "</td>");
          }
          h << "</tr>\n";
        }
        h << "</table>\n";
        break;
      case Block::kCode:
        h << "<pre><code>" << EscapeHtml(b.text) << "</code></pre>\n";
        break;
      case Block::kPlot:
        h << "<figure>" << Svg(b.plot) << "</figure>\n";
        break;
      case Block::kDetails:
        h << "<details><summary>Method</summary><p>" << InlineHtml(b.text) << "</p></details>\n";
        break;
    }
  }
  if (in_list) h << "</ul>\n";
  h << "</body></html>\n";
  return h.str();
}

}  // namespace tracemark::evidence
