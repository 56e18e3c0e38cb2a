#include "split_regex.h"

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace tracemark::tokenizer::internal {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct PcreMatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

const std::string_view kWhiteSpaceSet =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string PcreErrorMessage(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0) {
    return absl::StrCat("PCRE2 error ", code);
  }
  return reinterpret_cast<const char*>(buffer);
}

std::string WithWhiteSpaceClass(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        absl::StrAppend(&out, in_class ? "" : "[", Sv(kWhiteSpaceSet), in_class ? "" : "]");
      } else if (e == 'S' && !in_class) {
        absl::StrAppend(&out, "[^", Sv(kWhiteSpaceSet), "]");
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out.push_back(c);
      // A ']' or '^]' straight after '[' is literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<PcreCode> CompileSplitPattern(const std::string& pattern, std::string_view what) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  PcreCode code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr));
  if (code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(what), " does not compile at offset ",
                                                   error_offset, ": ",
                                                   PcreErrorMessage(error_code)));
  }
  uint32_t match_empty = 0;
  pcre2_pattern_info(code.get(), PCRE2_INFO_MATCHEMPTY, &match_empty);
  if (match_empty != 0) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(what), " can match the empty string"));
  }
  // Without JIT (unsupported platform) pcre2_match falls back to the interpreter.
  pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
  return code;
}

absl::StatusOr<bool> FindNext(const pcre2_code* code, std::string_view text, size_t offset,
                              size_t* begin, size_t* end) {
  // One ovector pair suffices (only the whole match is used); reused across calls on a thread.
  thread_local std::unique_ptr<pcre2_match_data, PcreMatchDataDeleter> match_data(
      pcre2_match_data_create(1, nullptr));
  if (match_data == nullptr) return absl::ResourceExhaustedError("pcre2_match_data_create");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc = pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match_data.get(),
                       nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    rc = pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                     match_data.get(), nullptr);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    return absl::InternalError(
        absl::StrCat("regex match failed at byte ", offset, ": ", PcreErrorMessage(rc)));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data.get());
  *begin = ovector[0];
  *end = ovector[1];
  if (*end <= offset) {  // Excluded by the MATCHEMPTY check; never loop forever regardless.
    return absl::InternalError("split pattern made no progress");
  }
  return true;
}

}  // namespace tracemark::tokenizer::internal
