// SHA-256 of public data (lexicons, inputs, reports), as 64 lowercase hex digits.
//
//   std::string d = Sha256Hex("abc");  // "ba7816bf..."
//
// Thread-safe.
#ifndef TRACEMARK_WATERMARK_DIGEST_H_
#define TRACEMARK_WATERMARK_DIGEST_H_

#include <string>
#include <string_view>

namespace tracemark::watermark {

std::string Sha256Hex(std::string_view data);

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_DIGEST_H_
