// SHA-256 of public data (lexicons, inputs, reports), as 64 lowercase hex digits.
//
//   std::string d = Sha256Hex("abc");  // "ba7816bf..."
//
// Thread-safe.
#ifndef TRACEMARK_WATERMARK_DIGEST_H_
#define TRACEMARK_WATERMARK_DIGEST_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tracemark::watermark {

std::string Sha256Hex(std::string_view data);

// The SHA-256 of a file's bytes, read in pieces (any size). NotFound or Unavailable when it cannot
// be read; `bytes`, if given, receives its size.
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path, uint64_t* bytes = nullptr);

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_DIGEST_H_
