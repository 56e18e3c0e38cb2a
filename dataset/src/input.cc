#include "tracemark/dataset/input.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::dataset {
namespace fs = std::filesystem;
namespace {

enum class Kind { kJsonl, kJson, kText };

Kind KindOf(const std::string& path) {
  const std::string name = ContentName(path);
  if (absl::EndsWith(name, ".jsonl") || absl::EndsWith(name, ".ndjson")) return Kind::kJsonl;
  if (absl::EndsWith(name, ".json")) return Kind::kJson;
  return Kind::kText;
}

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence.
size_t Utf8Prefix(const std::string& s, size_t n) {
  size_t cut = n;
  // Step back over continuation bytes to the lead byte; keep it only if its sequence is whole.
  size_t i = n;
  while (i > 0 && n - i < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) {
    const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
    const size_t len = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : 4;
    if (lead >= 0x80 && (i - 1) + len > n) cut = i - 1;
  }
  return cut;
}

// A text file in pieces cut after a newline (or, failing one, at a UTF-8 boundary).
class TextFileSegments : public SegmentSource {
 public:
  TextFileSegments(std::string path, size_t piece_bytes,
                   std::shared_ptr<std::atomic<uint64_t>> counter)
      : path_(std::move(path)), piece_bytes_(piece_bytes), counter_(std::move(counter)) {}

  absl::StatusOr<bool> Next(Segment* segment) override {
    if (in_ == nullptr) {
      if (done_) return false;
      TRACEMARK_ASSIGN_OR_RETURN(in_, OpenByteStream(path_, counter_.get()));
    }
    while (!eof_ && carry_.size() < piece_bytes_) {
      char buf[1 << 16];
      TRACEMARK_ASSIGN_OR_RETURN(const size_t got, in_->Read(buf, sizeof(buf)));
      carry_.append(buf, got);
      if (got == 0) eof_ = true;
      if (first_ && carry_.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError("binary file (it contains NUL bytes)");
      }
    }
    if (carry_.empty()) {
      in_.reset();
      done_ = true;
      return false;
    }
    size_t cut = carry_.size();
    if (!eof_ || cut > piece_bytes_) {
      const size_t nl = carry_.rfind('\n', std::min(piece_bytes_, carry_.size()) - 1);
      cut = nl != std::string::npos ? nl + 1 : Utf8Prefix(carry_, piece_bytes_);
      if (cut == 0) cut = std::min(piece_bytes_, carry_.size());
    }
    segment->context.clear();
    segment->text.assign(carry_, 0, cut);
    segment->continues = !first_;
    carry_.erase(0, cut);
    first_ = false;
    return true;
  }

 private:
  std::string path_;
  size_t piece_bytes_;
  std::shared_ptr<std::atomic<uint64_t>> counter_;
  std::unique_ptr<ByteStream> in_;
  std::string carry_;
  bool eof_ = false, first_ = true, done_ = false;
};

}  // namespace

DocumentReader::DocumentReader(ReaderOptions options)
    : options_(options), bytes_read_(std::make_shared<std::atomic<uint64_t>>(0)) {}

absl::StatusOr<std::unique_ptr<DocumentReader>> DocumentReader::Open(std::vector<std::string> paths,
                                                                     ReaderOptions options) {
  if (paths.empty()) return absl::InvalidArgumentError("no input given");
  if (options.text_piece_bytes == 0 || options.max_record_bytes == 0) {
    return absl::InvalidArgumentError("reader sizes must be positive");
  }
  std::unique_ptr<DocumentReader> r(new DocumentReader(options));
  for (const std::string& p : paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) return absl::NotFoundError(absl::StrCat(p, ": no such file"));
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec);
      if (ec) return absl::InternalError(absl::StrCat(p, ": ", ec.message()));
      for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) return absl::InternalError(absl::StrCat(p, ": ", ec.message()));
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file()) found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      r->files_.insert(r->files_.end(), found.begin(), found.end());
    } else {
      r->files_.push_back(p);
    }
  }
  for (const std::string& f : r->files_) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (!ec) r->total_bytes_ += size;
  }
  return r;
}

absl::Status DocumentReader::OpenNextFile() {
  current_ = files_[next_file_++];
  const Kind kind = KindOf(current_);
  if (kind == Kind::kJsonl) {
    absl::StatusOr<std::unique_ptr<ByteStream>> in = OpenByteStream(current_, bytes_read_.get());
    if (!in.ok()) return in.status();
    lines_ = std::make_unique<LineReader>(*std::move(in), options_.max_record_bytes);
    return absl::OkStatus();
  }
  if (kind == Kind::kJson) {
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<ByteStream> in,
                               OpenByteStream(current_, bytes_read_.get()));
    std::string text;
    char buf[1 << 16];
    for (;;) {
      TRACEMARK_ASSIGN_OR_RETURN(const size_t got, in->Read(buf, sizeof(buf)));
      if (got == 0) break;
      text.append(buf, got);
      if (text.size() > options_.max_json_file_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("a .json file is read whole and this one exceeds ",
                         options_.max_json_file_bytes, " bytes; convert it to JSONL"));
      }
    }
    // As a JSONL line's (document.h): invalid UTF-8 is repaired, and every record of the file
    // is flagged as repaired.
    const bool repaired = !tokenizer::IsValidUtf8(text);
    if (repaired) text = tokenizer::ReplaceInvalidUtf8(text);
    nlohmann::json all = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (all.is_discarded()) return absl::InvalidArgumentError("invalid JSON");
    if (!all.is_array()) all = nlohmann::json::array({std::move(all)});
    for (size_t i = 0; i < all.size(); ++i) {
      Document d;
      d.source = absl::StrCat(current_, "#", i + 1);
      const absl::Status st = ParseRecord(all[i], &d);
      d.repaired_utf8 = repaired;
      if (!st.ok()) {
        skipped_.push_back({d.source, std::string(st.message())});
        continue;
      }
      if (d.id.empty()) d.id = d.source;
      pending_.push_back(std::move(d));
    }
    return absl::OkStatus();
  }
  Document d;
  d.source = d.id = current_;
  d.more = std::make_unique<TextFileSegments>(current_, options_.text_piece_bytes, bytes_read_);
  pending_.push_back(std::move(d));
  return absl::OkStatus();
}

absl::StatusOr<bool> DocumentReader::Next(Document* doc) {
  for (;;) {
    if (pending_pos_ < pending_.size()) {
      *doc = std::move(pending_[pending_pos_++]);
      doc->index = next_index_++;
      if (pending_pos_ == pending_.size()) {
        pending_.clear();
        pending_pos_ = 0;
      }
      return true;
    }
    if (lines_ != nullptr) {
      std::string line;
      bool too_long = false;
      absl::StatusOr<bool> more = lines_->Next(&line, &too_long);
      if (!more.ok()) {
        skipped_.push_back(
            {absl::StrCat(current_, ":", lines_->line_number() + 1),
             absl::StrCat("the rest of the file is unreadable: ", more.status().message())});
        lines_.reset();
        continue;
      }
      if (!*more) {
        lines_.reset();
        continue;
      }
      const std::string source = absl::StrCat(current_, ":", lines_->line_number());
      if (too_long) {
        skipped_.push_back(
            {source, absl::StrCat("record longer than ", options_.max_record_bytes, " bytes")});
        continue;
      }
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
      Document d;
      const absl::Status st = ParseRecordText(line, &d);
      if (!st.ok()) {
        skipped_.push_back({source, std::string(st.message())});
        continue;
      }
      d.source = source;
      if (d.id.empty()) d.id = source;
      d.index = next_index_++;
      *doc = std::move(d);
      return true;
    }
    if (next_file_ >= files_.size()) return false;
    const absl::Status st = OpenNextFile();
    if (!st.ok()) skipped_.push_back({current_, std::string(st.message())});
  }
}

}  // namespace tracemark::dataset
