// Internal: the PCRE2 plumbing shared by the tokenizers that split text with a regex (tiktoken
// split patterns, Hugging Face Split and ByteLevel pre-tokenizers).
//
// Not part of the public API.
#ifndef TRACEMARK_TOKENIZER_SRC_SPLIT_REGEX_H_
#define TRACEMARK_TOKENIZER_SRC_SPLIT_REGEX_H_

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tracemark::tokenizer::internal {

struct PcreCodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using PcreCode = std::unique_ptr<pcre2_code, PcreCodeDeleter>;

// The text of a PCRE2 error code.
std::string PcreErrorMessage(int code);

// Unicode White_Space as a character-class body: what Rust's regex crate (tiktoken) and
// Oniguruma (Hugging Face tokenizers) both mean by \s. PCRE2's \s under UCP differs (it includes
// U+180E), so patterns are rewritten with WithWhiteSpaceClass before compiling.
extern const std::string_view kWhiteSpaceSet;

// Replaces \s with the White_Space set (bare inside a character class, bracketed outside) and \S
// outside a class with its complement. Other escapes are copied unchanged.
std::string WithWhiteSpaceClass(std::string_view pattern);

// Compiles `pattern` with PCRE2_UTF | PCRE2_UCP and JIT when available. InvalidArgument, naming
// `what` and the offset, if it does not compile or can match the empty string (a splitter that
// matches nothing would loop).
absl::StatusOr<PcreCode> CompileSplitPattern(const std::string& pattern, std::string_view what);

// Finds the leftmost match of `code` in `text` at or after `offset`. Returns false when there is
// none; *begin/*end receive the match. Requires valid UTF-8 (not checked again). Errors (e.g.
// the match limit) are Internal.
absl::StatusOr<bool> FindNext(const pcre2_code* code, std::string_view text, size_t offset,
                              size_t* begin, size_t* end);

}  // namespace tracemark::tokenizer::internal

#endif  // TRACEMARK_TOKENIZER_SRC_SPLIT_REGEX_H_
