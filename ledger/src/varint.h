// LEB128 varints and length-prefixed fields for the ledger's encodings (internal).
#ifndef TRACEMARK_LEDGER_SRC_VARINT_H_
#define TRACEMARK_LEDGER_SRC_VARINT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace tracemark::ledger::internal {

inline void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads one varint from the front of `*in` and advances it. False for a truncated or overlong
// varint (more than 10 bytes, or bits beyond 64).
inline bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && byte > 1) return false;
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace tracemark::ledger::internal

#endif  // TRACEMARK_LEDGER_SRC_VARINT_H_
