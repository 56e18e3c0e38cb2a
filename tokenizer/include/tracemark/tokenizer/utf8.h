// UTF-8 validation and repair, as used at the tokenizer boundary.
//
// A sequence is valid when it is well-formed per the Unicode Standard, table 3-7: no overlong
// forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
//
//   if (!IsValidUtf8(input)) input = ReplaceInvalidUtf8(input);
//   TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.Encode(input));
//
// Free functions without state; thread-safe.
#ifndef TRACEMARK_TOKENIZER_UTF8_H_
#define TRACEMARK_TOKENIZER_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tracemark::tokenizer {

// Returns the byte offset of the first ill-formed sequence in `text`, or std::string_view::npos
// if `text` is entirely valid UTF-8.
size_t FindInvalidUtf8(std::string_view text);

inline bool IsValidUtf8(std::string_view text) {
  return FindInvalidUtf8(text) == std::string_view::npos;
}

// Returns `text` with every maximal ill-formed subpart replaced by U+FFFD (EF BF BD): the
// "substitution of maximal subparts" practice of the Unicode Standard (section 3.9), which is
// what WHATWG TextDecoder and Python's errors="replace" do. Valid input is returned unchanged.
std::string ReplaceInvalidUtf8(std::string_view text);

// OK for valid UTF-8; otherwise the InvalidArgument every Tokenizer::Encode returns, naming the
// offset of the first ill-formed sequence.
absl::Status CheckEncodableUtf8(std::string_view text);

}  // namespace tracemark::tokenizer

#endif  // TRACEMARK_TOKENIZER_UTF8_H_
