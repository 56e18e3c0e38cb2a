#include "common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/tokenizer/tiktoken.h"

namespace tracemark::cli {

std::string DefaultDataDir() {
  const char* env = std::getenv("TRACEMARK_DATA_DIR");
  return env != nullptr && *env != '\0' ? env : "data";
}

absl::StatusOr<watermark::Key> LoadMasterKey(const CommonFlags& f) {
  if (!f.key_file.empty() && !f.key_env.empty()) {
    return absl::InvalidArgumentError("give --key or --key-env, not both");
  }
  if (!f.key_env.empty()) return watermark::ReadMasterKeyFromEnv(f.key_env.c_str());
  if (f.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a master key is required: --key FILE (make one with 'tracemark keygen --out FILE') or "
        "--key-env VAR");
  }
  return watermark::ReadMasterKeyFile(f.key_file);
}

absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(const CommonFlags& f) {
  return tokenizer::LoadTokenizer(f.encoding, f.data_dir.empty() ? DefaultDataDir() : f.data_dir);
}

absl::StatusOr<watermark::Config> LoadConfig(const CommonFlags& f, int32_t vocab_size) {
  return verifier::WatermarkConfig(f.scheme, f.watermark_spec, vocab_size);
}

absl::StatusOr<refmodel::KneserNeyModel> LoadModel(const CommonFlags& f, const std::string& path) {
  const std::string p =
      path.empty() ? reference::DefaultModelPath(f.data_dir.empty() ? DefaultDataDir() : f.data_dir)
                   : path;
  absl::StatusOr<refmodel::KneserNeyModel> m = refmodel::KneserNeyModel::Load(p);
  if (m.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("reference model ", p, " not found: train it with 'tracemark model train'"));
  }
  return m;
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading '", path, "'"));
  return ss.str();
}

int Report(const absl::Status& s) {
  if (s.ok()) return 0;
  std::cerr << "tracemark: error: " << s.message() << "\n";
  return 1;
}

}  // namespace tracemark::cli
