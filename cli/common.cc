#include "common.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tracemark/base/data_dir.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/tokenizer/tiktoken.h"

namespace tracemark::cli {

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
  return tokenizer::LoadTokenizer(f.encoding, DataDir(f.data_dir));
}

absl::StatusOr<watermark::Config> LoadConfig(const CommonFlags& f, int32_t vocab_size) {
  return detect::WatermarkConfig(f.scheme, f.watermark_spec, vocab_size);
}

absl::StatusOr<refmodel::KneserNeyModel> LoadModel(const CommonFlags& f, const std::string& path) {
  const std::string p = path.empty() ? reference::DefaultModelPath(DataDir(f.data_dir)) : path;
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
  return base::ReadFile(path, "input");
}

absl::StatusOr<IssuedAccountsFlag> ParseAccounts(const std::string& spec) {
  IssuedAccountsFlag out;
  if (spec.empty()) return out;
  if (absl::SimpleAtoi(spec, &out.limit)) {
    if (out.limit == 0) {
      return absl::InvalidArgumentError("--accounts: the number of accounts must be > 0");
    }
    return out;
  }
  absl::StatusOr<absl::flat_hash_set<uint64_t>> ids = detect::ReadAccountIds(spec, "--accounts");
  if (absl::IsNotFound(ids.status())) {
    return absl::NotFoundError(
        absl::StrCat("--accounts: '", spec, "' is neither a number nor a readable file"));
  }
  if (!ids.ok()) return ids.status();
  out.ids.assign(ids->begin(), ids->end());
  std::sort(out.ids.begin(), out.ids.end());
  return out;
}

absl::Status CheckAttributionFlags(const AttributionFlags& f) {
  if (!(f.alpha > 0 && f.alpha < 1)) return absl::InvalidArgumentError("--alpha must be in (0, 1)");
  if (f.max_candidates == 0) return absl::InvalidArgumentError("--max-candidates must be >= 1");
  return absl::OkStatus();
}

int Report(const absl::Status& s) {
  if (s.ok()) return 0;
  std::cerr << "tracemark: error: " << s.message() << "\n";
  return 1;
}

}  // namespace tracemark::cli
