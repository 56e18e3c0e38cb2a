// Sequential reading of an input file, decompressed by its name: ".gz" (gzip, concatenated members
// too) and ".zst" (Zstandard, concatenated frames too); anything else is read as it is. Memory is
// bounded whatever the file's size.
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<ByteStream> in, OpenByteStream("a.jsonl.zst"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<LineReader> lines, ...);
//
// Not thread-safe (one reader per stream).
#ifndef TRACEMARK_DATASET_BYTE_STREAM_H_
#define TRACEMARK_DATASET_BYTE_STREAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tracemark::dataset {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to `n` decompressed bytes into `buf`; 0 at the end. DataLoss for corrupt or truncated
  // compressed data, Internal for an I/O error; both name the file.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

// NotFound / PermissionDenied naming the path when it cannot be opened. Each byte read from the
// file itself (before decompression) is added to *raw_bytes, if given, for progress reports.
absl::StatusOr<std::unique_ptr<ByteStream>> OpenByteStream(
    const std::string& path, std::atomic<uint64_t>* raw_bytes = nullptr);

// The file name without a ".gz" or ".zst" suffix (what the content is).
std::string ContentName(const std::string& path);

// Lines of a stream, without their "\n" (and "\r\n"). A line longer than `max_line_bytes` is
// consumed but not returned whole: Next sets *too_long and returns its first max_line_bytes bytes.
class LineReader {
 public:
  LineReader(std::unique_ptr<ByteStream> in, size_t max_line_bytes);
  // False at the end of the stream; the stream's errors are returned as they are.
  absl::StatusOr<bool> Next(std::string* line, bool* too_long);
  uint64_t line_number() const { return line_number_; }  // of the line last returned, from 1

 private:
  absl::Status Fill();
  std::unique_ptr<ByteStream> in_;
  size_t max_line_bytes_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  uint64_t line_number_ = 0;
};

}  // namespace tracemark::dataset

#endif  // TRACEMARK_DATASET_BYTE_STREAM_H_
