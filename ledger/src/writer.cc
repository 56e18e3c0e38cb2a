#include "tracemark/ledger/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "segment_format.h"
#include "tracemark/base/file_io.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::ledger {
namespace {

using internal::kSegmentMagic;

// A name no other writer of this ledger picks: the time, the process and a counter.
std::string SegmentName() {
  static std::atomic<uint64_t> counter{0};
  const int64_t now = NowMicros();
  const std::time_t secs = static_cast<std::time_t>(now / 1000000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%S", &utc);
  return absl::StrFormat("segment-%s.%06dZ-%d-%d", when, now % 1000000, getpid(),
                         counter.fetch_add(1));
}

absl::Status MakeDirectory(const std::string& dir) {
  if (mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0) {
      return base::ErrnoStatus(errno, absl::StrCat("cannot open ledger directory ", dir));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat("ledger ", dir, " is not a directory"));
    }
    return absl::OkStatus();
  }
  return base::ErrnoStatus(errno, absl::StrCat("cannot create ledger directory ", dir));
}

// Makes the names just created in `dir` durable. Best effort, as a segment's own fsync is what
// Append and Close promise: a directory that cannot be flushed is not an error here.
void SyncDirectory(const std::string& dir) {
  base::SyncDirectory(dir, absl::StrCat("cannot flush ledger directory ", dir)).IgnoreError();
}

}  // namespace

struct Writer::State {
  std::mutex mu;
  WriterOptions options;
  std::string directory, path, write_path;
  std::string write_error;  // "cannot write WRITE_PATH", made once
  int fd = -1;
  ZSTD_CCtx* cctx = nullptr;
  std::string frame, out;
  WriterStats stats;
  absl::Status failed;  // the first write failure; refused after it
  bool closed = false;

  ~State() {
    if (fd >= 0) close(fd);
    ZSTD_freeCCtx(cctx);
  }

  // Compresses `in` into the file with `mode` (flush: a block boundary; end: the stream's end).
  absl::Status Compress(std::string_view in, ZSTD_EndDirective mode) {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    out.resize(ZSTD_CStreamOutSize());
    size_t left = 0;
    do {
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      left = ZSTD_compressStream2(cctx, &output, &input, mode);
      if (ZSTD_isError(left)) {
        return absl::InternalError(absl::StrCat("ledger compression: ", ZSTD_getErrorName(left)));
      }
      TRACEMARK_RETURN_IF_ERROR(
          base::WriteAll(fd, std::string_view(out.data(), output.pos), write_error));
      stats.bytes += output.pos;
    } while (left != 0 || input.pos < input.size);
    return absl::OkStatus();
  }

  absl::Status Finish() {
    if (closed) return failed;
    closed = true;
    if (!failed.ok()) return failed;
    TRACEMARK_RETURN_IF_ERROR(Compress({}, ZSTD_e_end));
    if (fsync(fd) != 0) return base::ErrnoStatus(errno, absl::StrCat("cannot flush ", write_path));
    close(fd);
    fd = -1;
    if (write_path != path && rename(write_path.c_str(), path.c_str()) != 0) {
      return base::ErrnoStatus(errno, absl::StrCat("cannot publish ", path));
    }
    SyncDirectory(directory);
    return absl::OkStatus();
  }
};

Writer::Writer(std::unique_ptr<State> state) : state_(std::move(state)) {}

Writer::~Writer() { Close().IgnoreError(); }

absl::StatusOr<std::unique_ptr<Writer>> Writer::Open(const std::string& directory,
                                                     const WriterOptions& options) {
  if (options.compression_level < 1 || options.compression_level > 19) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger compression level ", options.compression_level, " is not 1..19"));
  }
  TRACEMARK_RETURN_IF_ERROR(MakeDirectory(directory));
  auto s = std::make_unique<State>();
  s->options = options;
  s->directory = directory;
  const std::string base = absl::StrCat(directory, "/", SegmentName());
  s->path = absl::StrCat(base, internal::kSegmentSuffix);
  s->write_path =
      options.publish_on_close ? absl::StrCat(base, internal::kUnpublishedSuffix) : s->path;
  s->write_error = absl::StrCat("cannot write ", s->write_path);
  s->fd = open(s->write_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (s->fd < 0) return base::ErrnoStatus(errno, absl::StrCat("cannot create ", s->write_path));
  s->cctx = ZSTD_createCCtx();
  if (s->cctx == nullptr) return absl::ResourceExhaustedError("ledger: no memory for Zstandard");
  ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, options.compression_level);
  ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1);
  TRACEMARK_RETURN_IF_ERROR(base::WriteAll(s->fd, kSegmentMagic, s->write_error));
  s->stats.bytes = kSegmentMagic.size();
  if (fsync(s->fd) != 0) return base::ErrnoStatus(errno, absl::StrCat("cannot flush ", s->path));
  SyncDirectory(directory);  // the segment exists before its first record is acknowledged
  return std::unique_ptr<Writer>(new Writer(std::move(s)));
}

absl::Status Writer::Append(const Record& record) {
  TRACEMARK_RETURN_IF_ERROR(CheckRecord(record));
  const std::string bytes = EncodeRecord(record);
  std::lock_guard<std::mutex> lock(state_->mu);
  State& s = *state_;
  if (s.closed) return absl::FailedPreconditionError(absl::StrCat("ledger ", s.path, " is closed"));
  if (!s.failed.ok()) return s.failed;
  s.frame.clear();
  internal::AppendFrame(bytes, &s.frame);
  absl::Status st = s.Compress(s.frame, ZSTD_e_flush);
  if (st.ok() && s.options.sync_each_record && fdatasync(s.fd) != 0) {
    st = base::ErrnoStatus(errno, absl::StrCat("cannot flush ", s.write_path));
  }
  if (!st.ok()) {
    s.failed = st;
    return st;
  }
  ++s.stats.records;
  s.stats.prompt_ids += record.prompt_ids.size();
  s.stats.response_ids += record.response_ids.size();
  return absl::OkStatus();
}

absl::Status Writer::Close() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->Finish();
}

absl::Status Writer::Abandon() {
  std::lock_guard<std::mutex> lock(state_->mu);
  State& s = *state_;
  if (s.write_path == s.path) return s.Finish();
  s.closed = true;
  if (s.fd >= 0) close(s.fd);
  s.fd = -1;
  if (unlink(s.write_path.c_str()) != 0 && errno != ENOENT) {
    return base::ErrnoStatus(errno, absl::StrCat("cannot remove ", s.write_path));
  }
  return absl::OkStatus();
}

const std::string& Writer::path() const { return state_->path; }

WriterStats Writer::stats() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->stats;
}

}  // namespace tracemark::ledger
