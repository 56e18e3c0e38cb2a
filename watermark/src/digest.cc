#include "tracemark/watermark/digest.h"

#include <sodium.h>

#include <cstdint>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tracemark::watermark {

namespace {

std::string HexOf(const uint8_t (&hash)[crypto_hash_sha256_BYTES]) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(hash));
  for (uint8_t b : hash) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return HexOf(hash);
}

absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path, uint64_t* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<char> buf(size_t{1} << 20);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    crypto_hash_sha256_update(&st, reinterpret_cast<const uint8_t*>(buf.data()), n);
    total += n;
  }
  if (in.bad()) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, hash);
  if (bytes != nullptr) *bytes = total;
  return HexOf(hash);
}

}  // namespace tracemark::watermark
