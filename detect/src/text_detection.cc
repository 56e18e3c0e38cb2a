#include "tracemark/detect/text_detection.h"

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/detect/verifier.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::detect {

absl::StatusOr<TextDetection> DetectIds(const watermark::Key& master,
                                        const watermark::Config& config,
                                        const std::vector<int32_t>& ids, size_t score_from,
                                        const DetectOptions& options) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Verifier> v,
                             Verifier::Create(master, config, options.epochs));
  return v->DetectIds(ids, score_from, options);
}

absl::StatusOr<TextDetection> DetectText(const watermark::Key& master,
                                         const watermark::Config& config,
                                         const tokenizer::Tokenizer& tok, absl::string_view text,
                                         const DetectOptions& options) {
  if (tok.vocab_size() != config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer vocabulary (", tok.vocab_size(),
                                                   ") differs from the watermark configuration's (",
                                                   config.vocab_size, ")"));
  }
  for (const auto& [what, s] :
       {std::pair<const char*, absl::string_view>{"prompt", options.prompt}, {"text", text}}) {
    const size_t bad = tokenizer::FindInvalidUtf8(std::string_view(s.data(), s.size()));
    if (bad != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the ", what, " is not valid UTF-8 (first ill-formed byte at offset ", bad, ")"));
    }
  }
  std::vector<int32_t> ids;
  if (!options.prompt.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(ids, tok.Encode(options.prompt));
  }
  const size_t score_from = ids.size();
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> body, tok.Encode(std::string(text)));
  ids.insert(ids.end(), body.begin(), body.end());
  return DetectIds(master, config, ids, score_from, options);
}

}  // namespace tracemark::detect
