// Internal: SentencePiece behind an interface that uses only the standard library.
//
// libsentencepiece is reached only through a loadable module (spm_module.cc, the one translation
// unit that includes <sentencepiece_processor.h>), for two reasons:
//  - that header declares `namespace absl { using std::string_view; }`, which clashes with
//    Debian's Abseil (built with its own absl::string_view class);
//  - Debian's libsentencepiece carries its own copy of protobuf-lite with exported symbols, which
//    clash with libprotobuf's in a process that also uses gRPC (the verifier service): whichever
//    loads first serves both, and the other crashes. The module is opened with RTLD_DEEPBIND, so
//    libsentencepiece binds to its own copy and the rest of the process to libprotobuf.
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
  // failure, including when the module cannot be loaded (its path is in the message; the
  // environment variable TRACEMARK_SPM_MODULE overrides where it is looked for).
  static std::unique_ptr<SpmModel> FromSerialized(std::string_view serialized, std::string* error);

  virtual ~SpmModel() = default;

  // False with *error set on failure.
  virtual bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const = 0;
  virtual bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const = 0;

  virtual int size() const = 0;
  virtual const std::string& Piece(int id) const = 0;
  virtual bool IsControl(int id) const = 0;
  virtual bool IsUnknown(int id) const = 0;
  virtual bool IsByte(int id) const = 0;
  virtual bool IsUnused(int id) const = 0;
};

// The module's one entry point (extern "C", looked up by name): a new model, or null with *error.
using SpmFactory = SpmModel* (*)(const char* serialized, size_t size, std::string* error);
inline constexpr char kSpmFactorySymbol[] = "tracemark_spm_model_from_serialized";

}  // namespace tracemark::tokenizer::internal

#endif  // TRACEMARK_TOKENIZER_SRC_SPM_SHIM_H_
