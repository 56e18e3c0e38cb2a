#include "tracemark/ledger/reader.h"

#include <zstd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "segment_format.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::ledger {
namespace {

namespace fs = std::filesystem;
using internal::kSegmentMagic;

struct DctxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Splits a segment's decompressed stream into frames and checks and decodes each.
class FrameSplitter {
 public:
  FrameSplitter(const std::string& path, const std::function<absl::Status(const Record&)>& visit,
                SegmentReport* report)
      : path_(path), visit_(visit), report_(report) {}

  // Takes the next decompressed bytes; visits every whole frame in what it holds.
  absl::Status Take(std::string_view bytes) {
    buffer_.append(bytes);
    std::string_view rest(buffer_);
    while (!rest.empty()) {
      std::string_view in = rest;
      uint64_t n = 0;
      if (!internal::GetVarint(&in, &n)) {
        if (in.empty() && rest.size() < 10) break;  // the varint continues in the next bytes
        return Damage("a frame length is not a varint");
      }
      if (n > internal::kMaxRecordBytes) return Damage(absl::StrCat("a frame of ", n, " bytes"));
      if (in.size() < n + 4) break;
      const std::string_view bytes_of_record = in.substr(0, n);
      uint32_t crc = 0;
      for (int i = 0; i < 4; ++i)
        crc |= static_cast<uint32_t>(static_cast<uint8_t>(in[n + i])) << (8 * i);
      if (crc != internal::Crc32(bytes_of_record)) return Damage("a record fails its checksum");
      absl::StatusOr<Record> record = DecodeRecord(bytes_of_record);
      if (!record.ok()) return Damage(std::string(record.status().message()));
      TRACEMARK_RETURN_IF_ERROR(visit_(*record));
      ++report_->records;
      const size_t used = rest.size() - in.size() + n + 4;
      offset_ += used;
      rest.remove_prefix(used);
    }
    buffer_.erase(0, buffer_.size() - rest.size());
    return absl::OkStatus();
  }

  size_t pending() const { return buffer_.size(); }

  absl::Status Damage(std::string_view what) const {
    return absl::DataLossError(
        absl::StrCat("ledger segment ", path_, ": at byte ", offset_,
                     " of its records: ", absl::string_view(what.data(), what.size())));
  }

 private:
  const std::string& path_;
  const std::function<absl::Status(const Record&)>& visit_;
  SegmentReport* report_;
  std::string buffer_;
  uint64_t offset_ = 0;
};

absl::Status CheckMagic(std::ifstream& in, const std::string& path) {
  std::string magic(kSegmentMagic.size(), '\0');
  in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  if (static_cast<size_t>(in.gcount()) != magic.size() || magic != kSegmentMagic) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a tracemark ledger segment"));
  }
  return absl::OkStatus();
}

// Reads one segment into `report`. Damage is returned as DataLoss; an unfinished stream is not.
absl::Status ReadSegment(const std::string& path,
                         const std::function<absl::Status(const Record&)>& visit,
                         SegmentReport* report) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ledger segment ", path));
  TRACEMARK_RETURN_IF_ERROR(CheckMagic(in, path));
  report->file_bytes = kSegmentMagic.size();
  std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(ZSTD_createDCtx());
  if (!dctx) return absl::ResourceExhaustedError("ledger: no memory for Zstandard");
  FrameSplitter frames(path, visit, report);
  std::string input(ZSTD_DStreamInSize(), '\0'), output(ZSTD_DStreamOutSize(), '\0');
  size_t hint = 1;  // 0 once a frame ended and nothing more came
  while (in) {
    in.read(input.data(), static_cast<std::streamsize>(input.size()));
    ZSTD_inBuffer buf{input.data(), static_cast<size_t>(in.gcount()), 0};
    report->file_bytes += buf.size;
    while (buf.pos < buf.size) {
      ZSTD_outBuffer out{output.data(), output.size(), 0};
      hint = ZSTD_decompressStream(dctx.get(), &out, &buf);
      if (ZSTD_isError(hint)) {
        return frames.Damage(absl::StrCat("compressed data: ", ZSTD_getErrorName(hint)));
      }
      TRACEMARK_RETURN_IF_ERROR(frames.Take(std::string_view(output.data(), out.pos)));
    }
  }
  // Output the decoder still holds for input it has (a full output buffer).
  for (;;) {
    ZSTD_inBuffer none{nullptr, 0, 0};
    ZSTD_outBuffer out{output.data(), output.size(), 0};
    const size_t more = ZSTD_decompressStream(dctx.get(), &out, &none);
    if (ZSTD_isError(more) || out.pos == 0) break;
    hint = more;
    TRACEMARK_RETURN_IF_ERROR(frames.Take(std::string_view(output.data(), out.pos)));
  }
  report->finished = hint == 0 && frames.pending() == 0;
  report->dropped_bytes = frames.pending();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SegmentFiles(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return absl::NotFoundError(absl::StrCat("no ledger at ", path));
  if (!fs::is_directory(st)) return std::vector<std::string>{path};
  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    if (absl::EndsWith(name, internal::kSegmentSuffix) && e.is_regular_file()) {
      files.push_back(e.path().string());
    }
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", path, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status ReadLedger(const std::string& path,
                        const std::function<absl::Status(const Record&)>& visit, ReadReport* report,
                        const ReadOptions& options) {
  ReadReport local;
  ReadReport& r = report != nullptr ? *report : local;
  r = ReadReport();
  TRACEMARK_ASSIGN_OR_RETURN(const std::vector<std::string> files, SegmentFiles(path));
  for (const std::string& file : files) {
    SegmentReport& seg = r.segments.emplace_back();
    seg.path = file;
    absl::Status st = ReadSegment(file, visit, &seg);
    r.records += seg.records;
    r.file_bytes += seg.file_bytes;
    if (!st.ok()) {
      if (st.code() != absl::StatusCode::kDataLoss || !options.skip_damaged) return st;
      seg.damage = std::string(st.message());
    }
  }
  return absl::OkStatus();
}

}  // namespace tracemark::ledger
