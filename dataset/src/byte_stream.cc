#include "tracemark/dataset/byte_stream.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::dataset {
namespace {

constexpr size_t kBufferBytes = 1 << 18;

// The file as it is on disk.
class RawFile {
 public:
  RawFile(std::FILE* f, std::string path, std::atomic<uint64_t>* counter)
      : f_(f), path_(std::move(path)), counter_(counter) {}
  ~RawFile() { std::fclose(f_); }
  absl::StatusOr<size_t> Read(char* buf, size_t n) {
    const size_t got = std::fread(buf, 1, n, f_);
    if (got < n && std::ferror(f_)) {
      return absl::InternalError(absl::StrCat(path_, ": read error: ", std::strerror(errno)));
    }
    if (counter_ != nullptr) counter_->fetch_add(got, std::memory_order_relaxed);
    return got;
  }
  const std::string& path() const { return path_; }

 private:
  std::FILE* f_;
  std::string path_;
  std::atomic<uint64_t>* counter_;
};

class PlainStream : public ByteStream {
 public:
  explicit PlainStream(std::unique_ptr<RawFile> f) : f_(std::move(f)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override { return f_->Read(buf, n); }

 private:
  std::unique_ptr<RawFile> f_;
};

// Compressed input: refills `in_` from the file and lets the subclass decode it.
class CompressedStream : public ByteStream {
 public:
  explicit CompressedStream(std::unique_ptr<RawFile> f) : f_(std::move(f)), in_(kBufferBytes) {}

 protected:
  // Ensures unread input is available unless the file is exhausted; returns false at its end.
  absl::StatusOr<bool> Refill() {
    if (in_pos_ < in_len_) return true;
    TRACEMARK_ASSIGN_OR_RETURN(in_len_, f_->Read(in_.data(), in_.size()));
    in_pos_ = 0;
    return in_len_ > 0;
  }
  absl::Status Corrupt(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(f_->path(), ": ", what));
  }
  std::unique_ptr<RawFile> f_;
  std::vector<char> in_;
  size_t in_pos_ = 0, in_len_ = 0;
};

class GzipStream : public CompressedStream {
 public:
  explicit GzipStream(std::unique_ptr<RawFile> f) : CompressedStream(std::move(f)) {
    std::memset(&z_, 0, sizeof(z_));
    ok_ = inflateInit2(&z_, 15 + 32) == Z_OK;  // gzip or zlib header, detected
  }
  ~GzipStream() override { inflateEnd(&z_); }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (!ok_) return Corrupt("cannot initialise zlib");
    size_t out = 0;
    while (out < n) {
      TRACEMARK_ASSIGN_OR_RETURN(const bool more, Refill());
      if (!more) {
        if (in_member_) return Corrupt("truncated gzip data");
        break;
      }
      z_.next_in = reinterpret_cast<Bytef*>(in_.data() + in_pos_);
      z_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      z_.next_out = reinterpret_cast<Bytef*>(buf + out);
      z_.avail_out = static_cast<uInt>(n - out);
      const int rc = inflate(&z_, Z_NO_FLUSH);
      in_pos_ = in_len_ - z_.avail_in;
      out = n - z_.avail_out;
      in_member_ = true;
      if (rc == Z_STREAM_END) {
        in_member_ = false;  // another member may follow
        if (inflateReset(&z_) != Z_OK) return Corrupt("zlib reset failed");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Corrupt(absl::StrCat("corrupt gzip data (", z_.msg ? z_.msg : "zlib error", ")"));
      }
    }
    return out;
  }

 private:
  z_stream z_;
  bool ok_ = false;
  bool in_member_ = false;
};

class ZstdStream : public CompressedStream {
 public:
  explicit ZstdStream(std::unique_ptr<RawFile> f)
      : CompressedStream(std::move(f)), d_(ZSTD_createDStream()) {}
  ~ZstdStream() override { ZSTD_freeDStream(d_); }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (d_ == nullptr) return Corrupt("cannot initialise zstd");
    ZSTD_outBuffer o{buf, n, 0};
    while (o.pos < o.size) {
      TRACEMARK_ASSIGN_OR_RETURN(const bool more, Refill());
      if (!more) {
        if (in_frame_) return Corrupt("truncated zstd data");
        break;
      }
      ZSTD_inBuffer i{in_.data(), in_len_, in_pos_};
      const size_t rc = ZSTD_decompressStream(d_, &o, &i);
      in_pos_ = i.pos;
      if (ZSTD_isError(rc)) {
        return Corrupt(absl::StrCat("corrupt zstd data (", ZSTD_getErrorName(rc), ")"));
      }
      in_frame_ = rc != 0;  // 0: a frame just ended
    }
    return o.pos;
  }

 private:
  ZSTD_DStream* d_;
  bool in_frame_ = false;
};

}  // namespace

std::string ContentName(const std::string& path) {
  for (absl::string_view ext : {".gz", ".zst"}) {
    if (absl::EndsWith(path, ext)) return path.substr(0, path.size() - ext.size());
  }
  return path;
}

absl::StatusOr<std::unique_ptr<ByteStream>> OpenByteStream(const std::string& path,
                                                           std::atomic<uint64_t>* raw_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    const std::string msg = absl::StrCat(path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }
  auto raw = std::make_unique<RawFile>(f, path, raw_bytes);
  if (absl::EndsWith(path, ".gz")) return std::make_unique<GzipStream>(std::move(raw));
  if (absl::EndsWith(path, ".zst")) return std::make_unique<ZstdStream>(std::move(raw));
  return std::make_unique<PlainStream>(std::move(raw));
}

LineReader::LineReader(std::unique_ptr<ByteStream> in, size_t max_line_bytes)
    : in_(std::move(in)), max_line_bytes_(max_line_bytes) {}

absl::Status LineReader::Fill() {
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  const size_t old = buf_.size();
  buf_.resize(old + kBufferBytes);
  absl::StatusOr<size_t> got = in_->Read(buf_.data() + old, kBufferBytes);
  if (!got.ok()) {
    buf_.resize(old);
    return got.status();
  }
  buf_.resize(old + *got);
  if (*got == 0) eof_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> LineReader::Next(std::string* line, bool* too_long) {
  line->clear();
  *too_long = false;
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      const size_t len = nl - pos_;
      if (!*too_long) line->assign(buf_, pos_, std::min(len, max_line_bytes_));
      if (len > max_line_bytes_) *too_long = true;
      pos_ = nl + 1;
      break;
    }
    if (buf_.size() - pos_ > max_line_bytes_) {
      // Keep the first max_line_bytes bytes, drop the rest of the line as it streams by.
      if (!*too_long) line->assign(buf_, pos_, max_line_bytes_);
      *too_long = true;
      pos_ = buf_.size();
    }
    if (eof_) {
      if (pos_ >= buf_.size() && line->empty() && !*too_long) return false;
      if (!*too_long) line->assign(buf_, pos_, std::string::npos);
      pos_ = buf_.size();
      break;
    }
    TRACEMARK_RETURN_IF_ERROR(Fill());
  }
  if (!*too_long && !line->empty() && line->back() == '\r') line->pop_back();
  ++line_number_;
  return true;
}

}  // namespace tracemark::dataset
