#include "tracemark/watermark/digest.h"

#include <sodium.h>

#include <cstdint>

namespace tracemark::watermark {

std::string Sha256Hex(std::string_view data) {
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(hash));
  for (uint8_t b : hash) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace tracemark::watermark
