// SentencePiece models (.model files: BPE or unigram) through libsentencepiece, the reference
// implementation itself, so ids are exactly those of SentencePieceProcessor::Encode.
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<SentencePieceTokenizer> tok,
//                              SentencePieceTokenizer::Load("data/spm/sotu-bpe8k.model"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode("Fellow citizens"));
//
// Control symbols (<s>, </s>) are never produced by Encode; user-defined symbols are matched in
// the text as SentencePiece does. The model's normalizer runs inside Encode, so
// Decode(*Encode(text)) == text only for models trained without normalization and with byte
// fallback (as the built-in SOTU model is: identity rule, extra whitespace kept); for others it
// gives the normalized text, with " ⁇ " for unknown pieces.
//
// Thread-safety: immutable after Load/Create; all const methods may run concurrently.
#ifndef TRACEMARK_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
#define TRACEMARK_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::tokenizer {

namespace internal {
class SpmModel;
}  // namespace internal

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Reads the model at `path`. NotFound if it cannot be read, InvalidArgument (naming the file)
  // if it is not a SentencePiece model. The name is `name` if given, else the path.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& path,
                                                                      std::string_view name = "");

  // From the bytes of a .model file (a serialized ModelProto). `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Create(
      std::string_view serialized_model, std::string_view source = "<memory>",
      std::string_view name = "");

  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // Requires valid UTF-8 without U+2581, the model's space symbol, which would decode as a space
  // (InvalidArgument naming the byte offset otherwise).
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  // SentencePiece's own decoding: "▁" becomes a space, the first piece's leading space is
  // dropped, byte pieces are joined into bytes, control symbols give nothing.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override;
  std::string_view name() const override;
  // The piece with "▁" as a space (no space dropped), the byte of a <0xXX> piece, a control
  // symbol's text, or " ⁇ " for the unknown piece.
  absl::StatusOr<std::string> TokenBytes(int32_t id) const override;

  // The piece string of `id` as stored in the model ("▁the", "<0x0A>", "<s>").
  absl::StatusOr<std::string> Piece(int32_t id) const;
  // True for control symbols such as <s> and </s>.
  bool IsSpecialToken(int32_t id) const;

 private:
  SentencePieceTokenizer(std::unique_ptr<internal::SpmModel> model, std::string name);
  absl::Status CheckId(int32_t id, size_t position) const;

  std::unique_ptr<internal::SpmModel> model_;
  std::string name_;
};

}  // namespace tracemark::tokenizer

#endif  // TRACEMARK_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
