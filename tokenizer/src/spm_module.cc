// The SentencePiece module (spm_shim.h): the one translation unit that includes
// <sentencepiece_processor.h>, built as a loadable module that links libsentencepiece.
#include <sentencepiece_processor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spm_shim.h"

namespace tracemark::tokenizer::internal {
namespace {

class ProcessorModel final : public SpmModel {
 public:
  bool Load(std::string_view serialized, std::string* error) {
    const sentencepiece::util::Status status = processor_.LoadFromSerializedProto(serialized);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }

  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const override {
    const sentencepiece::util::Status status = processor_.Encode(text, ids);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }

  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const override {
    const sentencepiece::util::Status status = processor_.Decode(ids, text);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }

  int size() const override { return processor_.GetPieceSize(); }
  const std::string& Piece(int id) const override { return processor_.IdToPiece(id); }
  bool IsControl(int id) const override { return processor_.IsControl(id); }
  bool IsUnknown(int id) const override { return processor_.IsUnknown(id); }
  bool IsByte(int id) const override { return processor_.IsByte(id); }
  bool IsUnused(int id) const override { return processor_.IsUnused(id); }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace
}  // namespace tracemark::tokenizer::internal

extern "C" __attribute__((visibility("default"))) tracemark::tokenizer::internal::SpmModel*
tracemark_spm_model_from_serialized(const char* serialized, size_t size, std::string* error) {
  auto model = std::make_unique<tracemark::tokenizer::internal::ProcessorModel>();
  if (!model->Load(std::string_view(serialized, size), error)) return nullptr;
  return model.release();
}
