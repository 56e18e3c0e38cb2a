#include "tracemark/tokenizer/utf8.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace tracemark::tokenizer {
namespace {

// Examines the sequence starting at p[0] (n >= 1 bytes available). Sets *valid and returns the
// length of the well-formed sequence, or, when ill-formed, the length of its maximal subpart
// (always >= 1): the longest prefix that could still begin a well-formed sequence.
size_t ScanSequence(const unsigned char* p, size_t n, bool* valid) {
  const unsigned char b0 = p[0];
  *valid = false;
  if (b0 < 0x80) {
    *valid = true;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80;  // Bounds on the second byte (table 3-7).
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 1;  // 80..C1, F5..FF never start a sequence.
  }
  if (n < 2 || p[1] < lo || p[1] > hi) return 1;
  for (size_t i = 2; i < len; ++i) {
    if (i >= n || p[i] < 0x80 || p[i] > 0xBF) return i;
  }
  *valid = true;
  return len;
}

// Length of the leading run of ASCII bytes, eight at a time.
size_t AsciiPrefix(const unsigned char* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, sizeof(word));
    if (word & 0x8080808080808080ull) break;
  }
  while (i < n && p[i] < 0x80) ++i;
  return i;
}

}  // namespace

size_t FindInvalidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    i += AsciiPrefix(p + i, n - i);
    if (i >= n) break;
    bool valid;
    const size_t len = ScanSequence(p + i, n - i, &valid);
    if (!valid) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string ReplaceInvalidUtf8(std::string_view text) {
  size_t first_bad = FindInvalidUtf8(text);
  if (first_bad == std::string_view::npos) return std::string(text);
  std::string out(text.substr(0, first_bad));
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = first_bad;
  while (i < text.size()) {
    bool valid;
    const size_t len = ScanSequence(p + i, text.size() - i, &valid);
    if (valid) {
      out.append(text.data() + i, len);
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += len;
  }
  return out;
}

absl::Status CheckEncodableUtf8(std::string_view text) {
  const size_t bad = FindInvalidUtf8(text);
  if (bad == std::string_view::npos) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("Encode: input is not valid UTF-8 (ill-formed sequence at byte ", bad,
                   "); sanitise it with ReplaceInvalidUtf8 first"));
}

}  // namespace tracemark::tokenizer
