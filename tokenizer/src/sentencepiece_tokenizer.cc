#include "tracemark/tokenizer/sentencepiece_tokenizer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "spm_shim.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::tokenizer {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 '▁'

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<internal::SpmModel> model,
                                               std::string name)
    : model_(std::move(model)), name_(std::move(name)) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& path, std::string_view name) {
  TRACEMARK_ASSIGN_OR_RETURN(const std::string contents,
                             base::ReadFile(path, "SentencePiece model"));
  return Create(contents, path, name);
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Create(
    std::string_view serialized_model, std::string_view source, std::string_view name) {
  if (serialized_model.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": empty SentencePiece model"));
  }
  std::string error;
  std::unique_ptr<internal::SpmModel> model =
      internal::SpmModel::FromSerialized(serialized_model, &error);
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(source), ": not a valid SentencePiece model: ", error));
  }
  if (model->size() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": model has no pieces"));
  }
  return std::unique_ptr<SentencePieceTokenizer>(
      new SentencePieceTokenizer(std::move(model), std::string(name.empty() ? source : name)));
}

absl::Status SentencePieceTokenizer::CheckId(int32_t id, size_t position) const {
  if (id < 0 || id >= model_->size()) {
    return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", position,
                                                   " is outside [0, ", model_->size(), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> SentencePieceTokenizer::Encode(std::string_view text) const {
  TRACEMARK_RETURN_IF_ERROR(CheckEncodableUtf8(text));
  // SentencePiece writes spaces as U+2581 before it segments, so a literal U+2581 in the text
  // comes back from Decode as a space: refuse it rather than break the round trip (found by
  // fuzz_tokenizer; tests/fuzz/corpus/fuzz_tokenizer/metaspace is the input).
  if (const size_t at = text.find(kMetaspace); at != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("U+2581 (SentencePiece's space symbol) at byte ", at,
                     " cannot be encoded so that it decodes back to itself"));
  }
  std::vector<int> ids;
  std::string error;
  if (!model_->Encode(text, &ids, &error)) {
    return absl::InternalError(absl::StrCat("SentencePiece Encode failed: ", error));
  }
  return std::vector<int32_t>(ids.begin(), ids.end());
}

absl::StatusOr<std::string> SentencePieceTokenizer::Decode(absl::Span<const int32_t> ids) const {
  for (size_t i = 0; i < ids.size(); ++i) TRACEMARK_RETURN_IF_ERROR(CheckId(ids[i], i));
  std::string text;
  std::string error;
  if (!model_->Decode(std::vector<int>(ids.begin(), ids.end()), &text, &error)) {
    return absl::InternalError(absl::StrCat("SentencePiece Decode failed: ", error));
  }
  return text;
}

int32_t SentencePieceTokenizer::vocab_size() const { return model_->size(); }

std::string_view SentencePieceTokenizer::name() const { return name_; }

absl::StatusOr<std::string> SentencePieceTokenizer::TokenBytes(int32_t id) const {
  TRACEMARK_RETURN_IF_ERROR(CheckId(id, 0));
  const std::string& piece = model_->Piece(id);
  if (model_->IsByte(id) && piece.size() == 6) {
    int value = 0;
    for (char c : piece.substr(3, 2)) {
      value = value * 16 + (c <= '9' ? c - '0' : (c & ~0x20) - 'A' + 10);
    }
    return std::string(1, static_cast<char>(value));
  }
  if (model_->IsUnknown(id)) return std::string(" \xE2\x81\x87 ");  // " ⁇ ", as Decode gives.
  if (model_->IsControl(id)) return piece;
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (std::string_view(piece).substr(i, kMetaspace.size()) == kMetaspace) {
      out.push_back(' ');
      i += kMetaspace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

absl::StatusOr<std::string> SentencePieceTokenizer::Piece(int32_t id) const {
  TRACEMARK_RETURN_IF_ERROR(CheckId(id, 0));
  return model_->Piece(id);
}

bool SentencePieceTokenizer::IsSpecialToken(int32_t id) const {
  return id >= 0 && id < model_->size() && model_->IsControl(id);
}

}  // namespace tracemark::tokenizer
