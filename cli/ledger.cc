// tracemark ledger import, tracemark ledger show (docs/ledger.md).
#include <filesystem>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "commands.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/dataset/byte_stream.h"
#include "tracemark/ledger/import.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/summary.h"
#include "tracemark/ledger/window_index.h"
#include "tracemark/ledger/writer.h"

namespace tracemark::cli {
namespace {

constexpr size_t kErrorsListed = 10;
constexpr size_t kMaxLineBytes = 64u << 20;  // a record's bound (a served answer is far smaller)

// The import's defaults: the epoch, its key id when a key is given, the tokenizer, now.
absl::StatusOr<ledger::ImportDefaults> ImportDefaultsFrom(const LedgerImportFlags& f) {
  ledger::ImportDefaults d;
  d.epoch = f.epoch;
  d.tokenizer = f.common.encoding;
  d.time_us = ledger::NowMicros();
  if (!f.common.key_file.empty() || !f.common.key_env.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key epoch_key,
                               watermark::DeriveEpochKey(master, f.epoch));
    d.epoch_key_id = epoch_key.Id();
  }
  return d;
}

struct ImportCounts {
  uint64_t lines = 0, records = 0, bad = 0;
  std::vector<std::string> errors;  // the first kErrorsListed, as FILE:LINE: reason
};

// One log line (numbered `n` in `path`): a record appended, or a bad line counted.
absl::Status ImportLine(const std::string& path, uint64_t n, const std::string& line, bool too_long,
                        const ledger::ImportDefaults& d, const tokenizer::Tokenizer& tok,
                        ledger::Writer* writer, ImportCounts* counts) {
  ++counts->lines;
  if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) return absl::OkStatus();
  absl::StatusOr<ledger::Record> r =
      too_long ? absl::InvalidArgumentError(absl::StrCat("a line over ", kMaxLineBytes, " bytes"))
               : ledger::ParseImportLine(line, d, tok);
  if (!r.ok()) {
    if (++counts->bad <= kErrorsListed) {
      counts->errors.push_back(absl::StrCat(path, ":", n, ": ", r.status().message()));
    }
    return absl::OkStatus();
  }
  TRACEMARK_RETURN_IF_ERROR(writer->Append(*r));
  ++counts->records;
  return absl::OkStatus();
}

// The lines of one log file (".gz" and ".zst" decompressed), or of standard input ("-").
absl::Status ImportFile(const std::string& path, const ledger::ImportDefaults& d,
                        const tokenizer::Tokenizer& tok, ledger::Writer* writer,
                        ImportCounts* counts) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<dataset::ByteStream> in,
                             dataset::OpenByteStream(path == "-" ? "/dev/stdin" : path));
  dataset::LineReader lines(std::move(in), kMaxLineBytes);
  std::string line;
  bool too_long = false;
  while (true) {
    TRACEMARK_ASSIGN_OR_RETURN(const bool more, lines.Next(&line, &too_long));
    if (!more) return absl::OkStatus();
    TRACEMARK_RETURN_IF_ERROR(
        ImportLine(path, lines.line_number(), line, too_long, d, tok, writer, counts));
  }
}

// A refused import: its unpublished segment is removed (a failure to is said, not hidden), and so
// is the ledger directory when this import made it and nothing else is in it.
absl::Status Refuse(ledger::Writer* writer, const std::string& dir, bool made_dir,
                    absl::Status why) {
  if (absl::Status a = writer->Abandon(); !a.ok()) {
    std::cerr << "tracemark: warning: " << a.message() << "\n";
  }
  std::error_code ec;
  if (made_dir && std::filesystem::is_empty(dir, ec)) std::filesystem::remove(dir, ec);
  return why;
}

}  // namespace

absl::Status LedgerImport(const LedgerImportFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(const ledger::ImportDefaults d, ImportDefaultsFrom(f));
  std::error_code ec;
  const bool made_dir = !std::filesystem::exists(f.ledger, ec);
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<ledger::Writer> writer,
                             ledger::Writer::Open(f.ledger, {.publish_on_close = true}));
  ImportCounts counts;
  for (const std::string& input : f.inputs) {
    absl::Status st = ImportFile(input, d, *tok, writer.get(), &counts);
    if (!st.ok()) return Refuse(writer.get(), f.ledger, made_dir, st);
  }
  for (const std::string& e : counts.errors) std::cerr << "tracemark: " << e << "\n";
  if (counts.bad > kErrorsListed) {
    std::cerr << "tracemark: ... and " << counts.bad - kErrorsListed << " more bad lines\n";
  }
  if (counts.bad > 0 && !f.skip_bad) {
    return Refuse(writer.get(), f.ledger, made_dir,
                  absl::InvalidArgumentError(absl::StrCat(
                      counts.bad, " of ", counts.lines,
                      " lines are not log records; nothing was imported (--skip-bad imports the "
                      "others)")));
  }
  if (counts.records == 0) {
    return Refuse(writer.get(), f.ledger, made_dir,
                  absl::InvalidArgumentError("no records to import: nothing was imported"));
  }
  TRACEMARK_RETURN_IF_ERROR(writer->Close());
  const ledger::WriterStats s = writer->stats();
  std::cerr << absl::StrFormat(
      "imported %d records (%d response ids) into %s: %d bytes, %.2f bytes per response id%s\n",
      s.records, s.response_ids, writer->path(), s.bytes,
      s.response_ids ? static_cast<double>(s.bytes) / static_cast<double>(s.response_ids) : 0.0,
      counts.bad ? absl::StrCat("; ", counts.bad, " bad lines skipped") : "");
  return absl::OkStatus();
}

namespace {

std::string Utc(int64_t us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

nlohmann::json RecordJson(const ledger::Record& r) {
  nlohmann::json j;
  j["account"] = r.account.has_value() ? nlohmann::json(*r.account) : nlohmann::json(nullptr);
  j["epoch"] = r.epoch;
  j["epoch_key_id"] = r.epoch_key_id;
  j["time"] = Utc(r.time_us);
  j["tokenizer"] = r.tokenizer;
  j["prompt_ids"] = r.prompt_ids;
  j["response_ids"] = r.response_ids;
  return j;
}

nlohmann::json SummaryJson(const ledger::Summary& s) {
  nlohmann::json segments = nlohmann::json::array();
  for (const ledger::SegmentReport& seg : s.read.segments) {
    segments.push_back(
        {{"path", seg.path},
         {"records", seg.records},
         {"bytes", seg.file_bytes},
         {"finished", seg.finished},
         {"dropped_bytes", seg.dropped_bytes},
         {"damage", seg.damage.empty() ? nlohmann::json(nullptr) : nlohmann::json(seg.damage)}});
  }
  nlohmann::json epochs = nlohmann::json::object(), tokenizers = nlohmann::json::object();
  for (const auto& [e, n] : s.records_per_epoch) epochs[std::to_string(e)] = n;
  for (const auto& [t, n] : s.records_per_tokenizer) tokenizers[t] = n;
  return {{"records", s.records},
          {"anonymous_records", s.anonymous},
          {"accounts", s.accounts},
          {"records_per_epoch", epochs},
          {"records_per_tokenizer", tokenizers},
          {"prompt_ids", s.prompt_ids},
          {"response_ids", s.response_ids},
          {"first_time", s.records ? nlohmann::json(Utc(s.first_time_us)) : nlohmann::json()},
          {"last_time", s.records ? nlohmann::json(Utc(s.last_time_us)) : nlohmann::json()},
          {"bytes", s.read.file_bytes},
          {"bytes_per_response_id", s.bytes_per_response_id()},
          {"segments", segments}};
}

void PrintSummary(const ledger::Summary& s) {
  size_t unfinished = 0, damaged = 0;
  for (const ledger::SegmentReport& seg : s.read.segments) {
    unfinished += !seg.finished && seg.damage.empty();
    damaged += !seg.damage.empty();
  }
  std::cout << absl::StrFormat("%d records, %d accounts (%d anonymous records)\n", s.records,
                               s.accounts, s.anonymous);
  std::cout << absl::StrFormat("%d response ids, %d prompt ids kept\n", s.response_ids,
                               s.prompt_ids);
  if (s.records > 0) {
    std::cout << "from " << Utc(s.first_time_us) << " to " << Utc(s.last_time_us) << "\n";
  }
  std::vector<std::string> epochs, tokenizers;
  for (const auto& [e, n] : s.records_per_epoch) epochs.push_back(absl::StrCat(e, " (", n, ")"));
  for (const auto& [t, n] : s.records_per_tokenizer) {
    tokenizers.push_back(absl::StrCat(t, " (", n, ")"));
  }
  std::cout << "epochs: " << (epochs.empty() ? "none" : absl::StrJoin(epochs, ", "))
            << "; tokenizers: " << (tokenizers.empty() ? "none" : absl::StrJoin(tokenizers, ", "))
            << "\n";
  std::cout << absl::StrFormat(
      "%d segments (%d unfinished, %d damaged), %d bytes, %.2f bytes per "
      "response id\n",
      s.read.segments.size(), unfinished, damaged, s.read.file_bytes, s.bytes_per_response_id());
  for (const ledger::SegmentReport& seg : s.read.segments) {
    if (!seg.damage.empty()) std::cout << "damaged: " << seg.damage << "\n";
  }
}

nlohmann::json WindowsJson(const ledger::WindowIndex& index) {
  const ledger::WindowIndex::Stats& w = index.stats();
  return {{"h", index.h()},
          {"positions", w.positions},
          {"positions_skipped", w.positions_skipped},
          {"windows", w.windows},
          {"exclusive_windows", w.exclusive_windows},
          {"shared_windows", w.shared_windows()},
          {"anonymous_only_windows", w.anonymous_only}};
}

void PrintWindows(const ledger::WindowIndex& index) {
  const ledger::WindowIndex::Stats& w = index.stats();
  const double share =
      w.windows ? 100.0 * static_cast<double>(w.exclusive_windows) / static_cast<double>(w.windows)
                : 0.0;
  std::cout << absl::StrFormat(
      "windows of %d ids: %d distinct over %d served positions (%d without %d ids before them); "
      "%d exclusive to one account (%.1f %%), %d shared, %d served to anonymous requests only\n",
      index.h(), w.windows, w.positions, w.positions_skipped, index.h(), w.exclusive_windows, share,
      w.shared_windows(), w.anonymous_only);
}

}  // namespace

absl::Status LedgerShow(const LedgerShowFlags& f) {
  std::vector<ledger::Record> shown;
  const size_t limit = f.records.value_or(f.account.has_value() ? 20 : 0);
  std::optional<ledger::WindowIndex::Builder> windows;
  if (f.windows > 0) {
    TRACEMARK_ASSIGN_OR_RETURN(windows, ledger::WindowIndex::Builder::Create(f.windows));
  }
  TRACEMARK_ASSIGN_OR_RETURN(
      const ledger::Summary s,
      ledger::Summarize(f.ledger, {.skip_damaged = f.skip_damaged}, [&](const ledger::Record& r) {
        if (shown.size() < limit && (!f.account.has_value() || r.account == f.account)) {
          shown.push_back(r);
        }
        if (windows) windows->Add(r);
      }));
  std::optional<ledger::WindowIndex> index;
  if (windows) index.emplace(std::move(*windows).Finish());
  if (f.json) {
    nlohmann::json j = SummaryJson(s);
    if (index) j["windows"] = WindowsJson(*index);
    j["shown"] = nlohmann::json::array();
    for (const ledger::Record& r : shown) j["shown"].push_back(RecordJson(r));
    std::cout << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  PrintSummary(s);
  if (index) PrintWindows(*index);
  for (const ledger::Record& r : shown) std::cout << RecordJson(r).dump() << "\n";
  return absl::OkStatus();
}

}  // namespace tracemark::cli
