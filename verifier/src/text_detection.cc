#include "tracemark/verifier/text_detection.h"

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::verifier {

using stats::Bonferroni;
using stats::PValue;

absl::StatusOr<TextDetection> DetectIds(const watermark::Key& master,
                                        const watermark::Config& config,
                                        const std::vector<int32_t>& ids, size_t score_from,
                                        const DetectOptions& options) {
  if (options.epochs.empty()) return absl::InvalidArgumentError("no epoch to try");
  TextDetection out;
  out.tokens = ids.size() - std::min(score_from, ids.size());
  out.prompt_tokens = std::min(score_from, ids.size());
  const uint64_t n_epochs = options.epochs.size();
  PValue best_provider, best_account;
  uint64_t candidates_total = 0;
  for (uint32_t epoch : options.epochs) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key epoch_key, watermark::DeriveEpochKey(master, epoch));
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<watermark::Detector> det,
                               watermark::Detector::Create(epoch_key, config));
    watermark::TextStatistics stats;
    TRACEMARK_RETURN_IF_ERROR(det->Score(ids, score_from, &stats));
    EpochDetection e;
    e.epoch = epoch;
    e.key_id = det->key_id();
    TRACEMARK_ASSIGN_OR_RETURN(e.provider, det->TestProvider(stats));
    if (options.account.has_value()) {
      TRACEMARK_ASSIGN_OR_RETURN(watermark::AccountKeys acct, det->ForAccount(*options.account));
      TRACEMARK_ASSIGN_OR_RETURN(e.account, det->TestAccount(stats, acct));
      if (e.account->p_value < best_account) best_account = e.account->p_value;
    }
    watermark::PayloadOptions popt;
    popt.account_limit = options.account_limit;
    TRACEMARK_ASSIGN_OR_RETURN(e.payload, det->DecodePayload(stats, popt));
    std::vector<watermark::AccountKeys> cands;
    for (uint64_t id : e.payload.candidates) {
      TRACEMARK_ASSIGN_OR_RETURN(watermark::AccountKeys acct, det->ForAccount(id));
      cands.push_back(std::move(acct));
    }
    TRACEMARK_ASSIGN_OR_RETURN(e.confirmations, det->TestAccounts(stats, cands));
    candidates_total += cands.size();
    if (e.provider.p_value < best_provider) {
      best_provider = e.provider.p_value;
      out.best_provider_epoch = out.epochs.size();
    }
    out.epochs.push_back(std::move(e));
  }
  out.provider_p_value = Bonferroni(best_provider, n_epochs);
  out.account_p_value = Bonferroni(best_account, n_epochs);
  out.attribution_tests = candidates_total;
  PValue best_attr;
  for (const EpochDetection& e : out.epochs) {
    for (const watermark::AccountResult& c : e.confirmations) {
      const PValue corrected = Bonferroni(c.p_value, std::max<uint64_t>(candidates_total, 1));
      if (corrected < best_attr) {
        best_attr = corrected;
        if (corrected.value() <= options.confirm_alpha) out.attributed_account = c.account;
      }
    }
  }
  out.attributed_p_value = best_attr;
  out.method = absl::StrCat(
      "unique (context, token) tuples; provider and named-account p-values are the smallest over ",
      n_epochs,
      " epoch(s), Bonferroni-corrected for them; the attributed account is decoded from "
      "the id payload and confirmed by its fingerprint test on disjoint positions, "
      "Bonferroni-corrected over the ",
      candidates_total, " candidate(s) confirmed across epochs");
  return out;
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

}  // namespace tracemark::verifier
