#include "tracemark/detect/white_box.h"

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::detect {

absl::StatusOr<WhiteBoxScorer> WhiteBoxScorer::Create(const tokenizer::Tokenizer& tokenizer) {
  absl::flat_hash_map<std::string, int32_t> ids;
  ids.reserve(static_cast<size_t>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    absl::StatusOr<std::string> b = tokenizer.TokenBytes(id);
    if (!b.ok() || b->empty()) continue;  // unused ids
    ids.emplace(*std::move(b), id);       // the first id wins for duplicated bytes
  }
  return WhiteBoxScorer(std::move(ids));
}

absl::StatusOr<int32_t> WhiteBoxScorer::IdOf(const std::string& bytes,
                                             std::string_view what) const {
  const auto it = ids_.find(bytes);
  if (it == ids_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        absl::string_view(what.data(), what.size()), " (", bytes.size(),
        " bytes) is not a token of the verifier's tokenizer: the suspect tokenizes differently"));
  }
  return it->second;
}

absl::StatusOr<uint64_t> WhiteBoxScorer::Score(const Verifier& verifier,
                                               absl::Span<const dataset::TokenChoice> choices,
                                               absl::Span<const int32_t> prompt_ids,
                                               std::vector<watermark::TextStatistics>* stats,
                                               const SeenWindows* only) const {
  const size_t h = static_cast<size_t>(verifier.config().context_width);
  if (stats->empty()) stats->resize(verifier.num_epochs());
  auto id_of = [&](const std::string& bytes, size_t i) {
    return IdOf(bytes, absl::StrCat("logprobs token ", i));
  };
  std::vector<int32_t> sampled(choices.size());
  for (size_t i = 0; i < choices.size(); ++i) {
    TRACEMARK_ASSIGN_OR_RETURN(sampled[i], id_of(choices[i].sampled, i));
  }
  absl::flat_hash_set<std::vector<int32_t>> prompt_windows;
  for (size_t i = h; i <= prompt_ids.size(); ++i) {
    prompt_windows.emplace(prompt_ids.begin() + static_cast<ptrdiff_t>(i - h),
                           prompt_ids.begin() + static_cast<ptrdiff_t>(i));
  }
  uint64_t scored = 0;
  std::vector<int32_t> one(h + 1);
  for (size_t i = h; i < choices.size(); ++i) {
    if (choices[i].top.empty()) continue;  // no alternatives reported here
    if (only != nullptr && !only->Contains(sampled, i)) continue;
    std::copy(sampled.begin() + static_cast<ptrdiff_t>(i - h),
              sampled.begin() + static_cast<ptrdiff_t>(i), one.begin());
    if (!prompt_windows.empty() &&
        prompt_windows.contains(std::vector<int32_t>(one.begin(), one.end() - 1))) {
      continue;
    }
    TRACEMARK_ASSIGN_OR_RETURN(one[h], id_of(choices[i].top, i));
    TRACEMARK_RETURN_IF_ERROR(verifier.ScoreInto(one, h, stats));
    ++scored;
  }
  return scored;
}

absl::StatusOr<uint64_t> WhiteBoxScorer::ScoreWindow(const Verifier& verifier,
                                                     absl::Span<const int32_t> window,
                                                     const dataset::TokenChoice& first,
                                                     std::vector<watermark::TextStatistics>* stats,
                                                     const SeenWindows* only) const {
  const size_t h = static_cast<size_t>(verifier.config().context_width);
  if (window.size() != h) {
    return absl::FailedPreconditionError(absl::StrCat("a window probe of ", window.size(),
                                                      " ids, but the watermark's window is ", h));
  }
  for (int32_t id : window) {
    if (id < 0 || id >= verifier.config().vocab_size) {
      return absl::FailedPreconditionError("a window probe's id is outside the vocabulary");
    }
  }
  if (stats->empty()) stats->resize(verifier.num_epochs());
  if (first.top.empty() || (only != nullptr && !only->Contains(window, h))) return 0;
  TRACEMARK_ASSIGN_OR_RETURN(const int32_t top, IdOf(first.top, "a window probe's answer"));
  std::vector<int32_t> one(window.begin(), window.end());
  one.push_back(top);
  TRACEMARK_RETURN_IF_ERROR(verifier.ScoreInto(one, h, stats));
  return 1;
}

}  // namespace tracemark::detect
