#include "spm_shim.h"

#include <sentencepiece_processor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tracemark::tokenizer::internal {

struct SpmModel::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SpmModel::SpmModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SpmModel::~SpmModel() = default;

std::unique_ptr<SpmModel> SpmModel::FromSerialized(std::string_view serialized,
                                                   std::string* error) {
  auto impl = std::make_unique<Impl>();
  const sentencepiece::util::Status status = impl->processor.LoadFromSerializedProto(serialized);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return std::unique_ptr<SpmModel>(new SpmModel(std::move(impl)));
}

bool SpmModel::Encode(std::string_view text, std::vector<int>* ids, std::string* error) const {
  const sentencepiece::util::Status status = impl_->processor.Encode(text, ids);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}

bool SpmModel::Decode(const std::vector<int>& ids, std::string* text, std::string* error) const {
  const sentencepiece::util::Status status = impl_->processor.Decode(ids, text);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}

int SpmModel::size() const { return impl_->processor.GetPieceSize(); }
const std::string& SpmModel::Piece(int id) const { return impl_->processor.IdToPiece(id); }
bool SpmModel::IsControl(int id) const { return impl_->processor.IsControl(id); }
bool SpmModel::IsUnknown(int id) const { return impl_->processor.IsUnknown(id); }
bool SpmModel::IsByte(int id) const { return impl_->processor.IsByte(id); }
bool SpmModel::IsUnused(int id) const { return impl_->processor.IsUnused(id); }

}  // namespace tracemark::tokenizer::internal
