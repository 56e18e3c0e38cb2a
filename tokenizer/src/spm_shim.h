// Internal: the only translation unit that includes <sentencepiece_processor.h>.
//
// That header declares `namespace absl { using std::string_view; }`, which clashes with Debian's
// Abseil (built with its own absl::string_view class), so libsentencepiece is reached through
// this small wrapper whose interface uses only the standard library.
#ifndef TRACEMARK_TOKENIZER_SRC_SPM_SHIM_H_
#define TRACEMARK_TOKENIZER_SRC_SPM_SHIM_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tracemark::tokenizer::internal {

class SpmModel {
 public:
  // Parses a serialized ModelProto (the bytes of a .model file). Null with *error set on
  // failure.
  static std::unique_ptr<SpmModel> FromSerialized(std::string_view serialized, std::string* error);

  ~SpmModel();
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  // False with *error set on failure.
  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const;
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const;

  int size() const;
  const std::string& Piece(int id) const;
  bool IsControl(int id) const;
  bool IsUnknown(int id) const;
  bool IsByte(int id) const;
  bool IsUnused(int id) const;

 private:
  struct Impl;
  explicit SpmModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracemark::tokenizer::internal

#endif  // TRACEMARK_TOKENIZER_SRC_SPM_SHIM_H_
