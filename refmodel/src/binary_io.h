// Little-endian byte encoding, a 64-bit checksum and atomic file writes for model files.
// Internal to the refmodel module.
//
// ByteReader never reads past its buffer: the caller checks the total size first, and a read
// past the end yields zeros (so a logic error cannot turn into an out-of-bounds access).
// Thread-safety: the classes are not thread-safe; the free functions are.
#ifndef TRACEMARK_REFMODEL_SRC_BINARY_IO_H_
#define TRACEMARK_REFMODEL_SRC_BINARY_IO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tracemark::refmodel::internal {

class ByteWriter {
 public:
  void PutBytes(const void* data, size_t size);
  void PutU32(uint32_t x);
  void PutU64(uint64_t x);
  void PutF64(double x);
  void PutU32s(const std::vector<uint32_t>& xs);
  void PutI32s(const std::vector<int32_t>& xs);
  void PutF32s(const std::vector<float>& xs);
  std::string_view data() const { return buffer_; }

 private:
  std::string buffer_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}
  void Skip(size_t n);
  uint32_t GetU32();
  uint64_t GetU64();
  double GetF64();
  // Reads n values into *out (resized to n).
  void GetU32s(uint64_t n, std::vector<uint32_t>& out);
  void GetI32s(uint64_t n, std::vector<int32_t>& out);
  void GetF32s(uint64_t n, std::vector<float>& out);

 private:
  // Copies n bytes to dst, or zeros if fewer than n remain.
  void Read(void* dst, size_t n);
  std::string_view data_;
  size_t pos_ = 0;
};

// A 64-bit checksum of `data`: a multiply-rotate hash over little-endian 8-byte words with a
// SplitMix64 finaliser. Every step is a bijection of the running state, so any change confined
// to one 8-byte word is always detected.
uint64_t Checksum64(std::string_view data);

// Writes `data` to `path` through a temporary file in the same directory (flushed, fsync'ed,
// then renamed over `path`). On failure the temporary file is removed.
absl::Status WriteFileAtomically(const std::string& path, std::string_view data);

// Reads the whole file. NotFound if it does not exist, another error if it cannot be read.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace tracemark::refmodel::internal

#endif  // TRACEMARK_REFMODEL_SRC_BINARY_IO_H_
