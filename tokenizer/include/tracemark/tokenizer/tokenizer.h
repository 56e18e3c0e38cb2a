// The interface every tracemark tokenizer implements: text (UTF-8 bytes) to token ids and back.
//
// Watermark embedding and detection both run on token ids, so a verifier must re-tokenise text
// exactly as the generator did; implementations are therefore deterministic and bit-exact with
// their reference (see tiktoken.h).
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok,
//                              LoadTiktokenFromDataDir(data_dir, "cl100k_base"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode("Hello, world!"));
//   TRACEMARK_ASSIGN_OR_RETURN(std::string text, tok->Decode(ids));  // "Hello, world!"
//
// Thread-safety: implementations are immutable after construction; every const method may be
// called concurrently from any number of threads.
#ifndef TRACEMARK_TOKENIZER_TOKENIZER_H_
#define TRACEMARK_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tracemark::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes `text` as ordinary text: special-token strings such as "<|endoftext|>" are encoded
  // like any other text and never produce a special-token id. Returns InvalidArgument if the
  // implementation cannot accept `text` (the tiktoken implementation requires valid UTF-8; see
  // ReplaceInvalidUtf8 in utf8.h to sanitise untrusted input first). On success,
  // Decode(*Encode(text)) == text.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const = 0;

  // Concatenates the bytes of `ids`. Returns InvalidArgument, naming the offending position, if
  // an id is outside [0, vocab_size()) or is a hole in the id space that no token occupies.
  // The result is arbitrary bytes: a prefix of a valid encoding may end inside a UTF-8 sequence.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const = 0;

  // One plus the largest id the tokenizer can produce or decode, special tokens included.
  virtual int32_t vocab_size() const = 0;

  // The encoding's name, e.g. "cl100k_base".
  virtual std::string_view name() const = 0;

  // The bytes of one token (for streaming decode and debugging); for a special token, its text.
  // Errors as for Decode.
  virtual absl::StatusOr<std::string> TokenBytes(int32_t id) const = 0;
};

}  // namespace tracemark::tokenizer

#endif  // TRACEMARK_TOKENIZER_TOKENIZER_H_
