#include "binary_io.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace tracemark::refmodel::internal {
namespace {

template <typename T>
T ToLittle(T x) {
  if constexpr (std::endian::native == std::endian::little) {
    return x;
  } else {
    T y;
    const auto* s = reinterpret_cast<const unsigned char*>(&x);
    auto* d = reinterpret_cast<unsigned char*>(&y);
    for (size_t i = 0; i < sizeof(T); ++i) d[i] = s[sizeof(T) - 1 - i];
    return y;
  }
}

template <typename T>
void PutArray(std::string& buffer, const std::vector<T>& xs) {
  static_assert(sizeof(T) == 4);
  if constexpr (std::endian::native == std::endian::little) {
    buffer.append(reinterpret_cast<const char*>(xs.data()), xs.size() * sizeof(T));
  } else {
    for (T x : xs) {
      const uint32_t u = ToLittle(std::bit_cast<uint32_t>(x));
      buffer.append(reinterpret_cast<const char*>(&u), sizeof(u));
    }
  }
}

uint64_t LoadWord(const char* p, size_t n) {
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i)
    x |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return x;
}

absl::Status ErrnoError(int error, const char* what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

}  // namespace

void ByteWriter::PutBytes(const void* data, size_t size) {
  buffer_.append(static_cast<const char*>(data), size);
}
void ByteWriter::PutU32(uint32_t x) {
  x = ToLittle(x);
  PutBytes(&x, sizeof(x));
}
void ByteWriter::PutU64(uint64_t x) {
  x = ToLittle(x);
  PutBytes(&x, sizeof(x));
}
void ByteWriter::PutF64(double x) { PutU64(std::bit_cast<uint64_t>(x)); }
void ByteWriter::PutU32s(const std::vector<uint32_t>& xs) { PutArray(buffer_, xs); }
void ByteWriter::PutI32s(const std::vector<int32_t>& xs) { PutArray(buffer_, xs); }
void ByteWriter::PutF32s(const std::vector<float>& xs) { PutArray(buffer_, xs); }

void ByteReader::Read(void* dst, size_t n) {
  if (data_.size() - pos_ < n) {
    std::memset(dst, 0, n);
    pos_ = data_.size();
    return;
  }
  std::memcpy(dst, data_.data() + pos_, n);
  pos_ += n;
}
void ByteReader::Skip(size_t n) { pos_ += std::min(n, data_.size() - pos_); }
uint32_t ByteReader::GetU32() {
  uint32_t x;
  Read(&x, sizeof(x));
  return ToLittle(x);
}
uint64_t ByteReader::GetU64() {
  uint64_t x;
  Read(&x, sizeof(x));
  return ToLittle(x);
}
double ByteReader::GetF64() { return std::bit_cast<double>(GetU64()); }

void ByteReader::GetU32s(uint64_t n, std::vector<uint32_t>& out) {
  out.assign(n, 0);
  Read(out.data(), n * 4);
  for (auto& x : out) x = ToLittle(x);
}
void ByteReader::GetI32s(uint64_t n, std::vector<int32_t>& out) {
  out.assign(n, 0);
  Read(out.data(), n * 4);
  for (auto& x : out) x = std::bit_cast<int32_t>(ToLittle(std::bit_cast<uint32_t>(x)));
}
void ByteReader::GetF32s(uint64_t n, std::vector<float>& out) {
  out.assign(n, 0.0f);
  Read(out.data(), n * 4);
  for (auto& x : out) x = std::bit_cast<float>(ToLittle(std::bit_cast<uint32_t>(x)));
}

uint64_t Checksum64(std::string_view data) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t h = 0x243f6a8885a308d3ULL ^ (static_cast<uint64_t>(data.size()) * kMul);
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    h = std::rotl((h ^ LoadWord(data.data() + i, 8)) * kMul, 29);
  }
  if (i < data.size()) h = std::rotl((h ^ LoadWord(data.data() + i, data.size() - i)) * kMul, 29);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view data) {
  const std::string tmp = absl::StrCat(path, ".tmp.", static_cast<long>(getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return ErrnoError(errno, "cannot create", tmp);
  const bool written = std::fwrite(data.data(), 1, data.size(), f) == data.size() &&
                       std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  const int write_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    return ErrnoError(written ? errno : write_errno, "cannot write", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(tmp.c_str());
    return ErrnoError(rename_errno, "cannot rename onto", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoError(errno, "cannot open", path);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return absl::DataLossError(absl::StrCat("error reading ", path));
  return out;
}

}  // namespace tracemark::refmodel::internal
