#include "tracemark/engine/serving_chain.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/canary_key.h"
#include "tracemark/watermark/logits.h"

namespace tracemark::engine {
namespace {

// A batch row's history: the ids after the last negative one (negatives mark positions before
// the start of a short history).
absl::Span<const int32_t> RowHistory(absl::Span<const int32_t> histories, size_t width,
                                     size_t row) {
  absl::Span<const int32_t> h = histories.subspan(row * width, width);
  size_t start = h.size();
  while (start > 0 && h[start - 1] >= 0) --start;
  return h.subspan(start);
}

Step FromWatermark(const watermark::StepResult& r, int canary_moves) {
  return Step{r.layer, r.token_chosen, r.token, canary_moves};
}

}  // namespace

absl::StatusOr<ServingChain> ServingChain::Create(const watermark::Watermarker* watermarker,
                                                  const canary::CanaryProcessor* canary,
                                                  const LedgerStage* ledger) {
  if (watermarker == nullptr && canary == nullptr) {
    return absl::InvalidArgumentError("the chain needs a watermarker, canary phrasings or both");
  }
  if (watermarker != nullptr && canary != nullptr &&
      canary->vocab_size() != watermarker->config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("canary built for a vocabulary of ",
                                                   canary->vocab_size(), " ids, the watermark for ",
                                                   watermarker->config().vocab_size));
  }
  if (ledger != nullptr && ledger->writer == nullptr) {
    return absl::InvalidArgumentError("the chain's ledger stage has no writer");
  }
  return ServingChain(watermarker, canary, ledger);
}

absl::Status ServingChain::EndResponse(const watermark::AccountKeys* account,
                                       absl::Span<const int32_t> prompt,
                                       absl::Span<const int32_t> response_ids,
                                       Response* response) const {
  if (response != nullptr) response->Reset();
  if (ledger_ == nullptr) return absl::OkStatus();
  ledger::Record r;
  if (account != nullptr) r.account = account->account();
  r.epoch = ledger_->epoch;
  if (watermarker_ != nullptr) r.epoch_key_id = watermarker_->key_id();
  r.time_us = ledger::NowMicros();
  r.tokenizer = ledger_->tokenizer;
  const size_t keep = ledger_->prompt_ids == 0 ? history_width() : ledger_->prompt_ids;
  const absl::Span<const int32_t> kept =
      prompt.subspan(prompt.size() - std::min(keep, prompt.size()));
  r.prompt_ids.assign(kept.begin(), kept.end());
  r.response_ids.assign(response_ids.begin(), response_ids.end());
  return ledger_->writer->Append(r);
}

int32_t ServingChain::vocab_size() const {
  return watermarker_ != nullptr ? watermarker_->config().vocab_size : canary_->vocab_size();
}

size_t ServingChain::history_width() const {
  const auto h =
      watermarker_ == nullptr ? 0 : static_cast<size_t>(watermarker_->config().context_width);
  return canary_ == nullptr ? h : std::max(h, canary::CanaryProcessor::kHistoryIds);
}

absl::Status ServingChain::CheckStep(const watermark::AccountKeys* account,
                                     absl::Span<const int32_t> history,
                                     std::string_view where) const {
  absl::Status s = watermarker_ != nullptr ? watermarker_->CheckAccount(account) : absl::OkStatus();
  if (s.ok() && canary_ != nullptr && account != nullptr) {
    const size_t n = std::min(history.size(), canary::CanaryProcessor::kHistoryIds);
    s = watermark::CheckIds(history.last(n), vocab_size(), "history: ");
  }
  if (s.ok() || where.empty()) return s;
  return absl::Status(s.code(),
                      absl::StrCat(absl::string_view(where.data(), where.size()), s.message()));
}

Step ServingChain::Sparse(const watermark::AccountKeys* account, absl::Span<const int32_t> history,
                          absl::Span<watermark::Candidate> candidates, Response* response) const {
  int moved = 0;
  if (canary_ != nullptr && account != nullptr) {
    const canary::CanaryKey key = canary::CanaryKey::FromAccountKeys(*account);
    moved = canary_->SparseChecked(&key, history, candidates,
                                   response != nullptr ? &response->canary_ : nullptr);
  }
  if (watermarker_ == nullptr) return Step{.canary_moves = moved};
  return FromWatermark(
      watermarker_->SparseChecked(account, history, candidates,
                                  response != nullptr ? &response->sequence_ : nullptr),
      moved);
}

Step ServingChain::Dense(const watermark::AccountKeys* account, absl::Span<const int32_t> history,
                         absl::Span<float> logits, float row_max, Response* response) const {
  int moved = 0;
  if (canary_ != nullptr && account != nullptr) {
    const canary::CanaryKey key = canary::CanaryKey::FromAccountKeys(*account);
    moved = canary_->DenseChecked(&key, history, logits, row_max,
                                  response != nullptr ? &response->canary_ : nullptr);
  }
  if (watermarker_ == nullptr) return Step{.canary_moves = moved};
  return FromWatermark(
      watermarker_->DenseChecked(account, history, logits,
                                 response != nullptr ? &response->sequence_ : nullptr),
      moved);
}

absl::StatusOr<Step> ServingChain::ProcessSparse(const watermark::AccountKeys* account,
                                                 absl::Span<const int32_t> history,
                                                 absl::Span<watermark::Candidate> candidates,
                                                 Response* response) const {
  TRACEMARK_RETURN_IF_ERROR(watermark::CheckCandidates(candidates, vocab_size()));
  TRACEMARK_RETURN_IF_ERROR(CheckStep(account, history, ""));
  return Sparse(account, history, candidates, response);
}

absl::StatusOr<Step> ServingChain::ProcessDense(const watermark::AccountKeys* account,
                                                absl::Span<const int32_t> history,
                                                absl::Span<float> logits,
                                                Response* response) const {
  TRACEMARK_ASSIGN_OR_RETURN(const float row_max, watermark::CheckRow(logits, vocab_size()));
  TRACEMARK_RETURN_IF_ERROR(CheckStep(account, history, ""));
  return Dense(account, history, logits, row_max, response);
}

absl::Status ServingChain::ProcessBatch(absl::Span<const watermark::AccountKeys* const> accounts,
                                        absl::Span<const int32_t> histories, size_t width,
                                        absl::Span<float> logits,
                                        absl::Span<Response* const> responses,
                                        absl::Span<Step> results) const {
  const size_t b = accounts.size();
  const auto v = static_cast<size_t>(vocab_size());
  if (width < history_width()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch histories of ", width, " ids; this chain reads the last ", history_width()));
  }
  if (histories.size() != b * width || logits.size() != b * v || results.size() != b ||
      (!responses.empty() && responses.size() != b)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch shapes disagree: ", b, " accounts, ", histories.size(), " history ids (want ",
        b * width, "), ", logits.size(), " logits (want ", b * v, "), ", results.size(),
        " results, ", responses.size(), " responses (want ", b, " or none)"));
  }
  std::vector<float> row_max(b);
  for (size_t row = 0; row < b; ++row) {
    const std::string where = absl::StrCat("row ", row, ": ");
    TRACEMARK_ASSIGN_OR_RETURN(
        row_max[row], watermark::CheckRow(logits.subspan(row * v, v), vocab_size(), where));
    TRACEMARK_RETURN_IF_ERROR(CheckStep(accounts[row], RowHistory(histories, width, row), where));
  }
  for (size_t row = 0; row < b; ++row) {
    results[row] =
        Dense(accounts[row], RowHistory(histories, width, row), logits.subspan(row * v, v),
              row_max[row], responses.empty() ? nullptr : responses[row]);
  }
  return absl::OkStatus();
}

}  // namespace tracemark::engine
