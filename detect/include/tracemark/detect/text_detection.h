// Detection in one text: re-tokenise it with the provider's tokenizer, score it under every epoch
// tried, and report the provider layer, the account layer for a named account, and the account
// the text's id payload names (decoded in one pass, then confirmed on the fingerprint positions).
// Every p-value that results from trying several epochs or candidates is corrected for them
// (Bonferroni); the method strings say so.
//
//   DetectOptions opt;
//   opt.account = 42;
//   absl::StatusOr<TextDetection> d = DetectText(master_key, config, *tok, text, opt);
//   d->provider_p_value.ToString();
//
// Thread-safe (a pure function of its arguments). Each call derives the epoch keys afresh; to
// test many texts, create a Verifier (verifier.h) once.
#ifndef TRACEMARK_DETECT_TEXT_DETECTION_H_
#define TRACEMARK_DETECT_TEXT_DETECTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::detect {

// The attribution rule, one for `tracemark detect`, `tracemark scan`, the service and the Python
// binding (docs/cli.md): the id payload's most likely candidate is confirmed by its fingerprint
// test, and the text is attributed to it at a p-value, corrected for the epochs x candidates
// tried, of at most this.
inline constexpr double kDefaultAttributionAlpha = 1e-6;
inline constexpr size_t kDefaultMaxCandidates = 1;

struct DetectOptions {
  std::vector<uint32_t> epochs = {0};  // epochs tried by DetectText/DetectIds (each one counts in
                                       // the corrections); a Verifier has its own
  std::optional<uint64_t> account;     // the account to test, if any
  std::string prompt;                  // context for the first tokens; never scored
  uint64_t account_limit = 0;          // accounts issued (payload ids at or above are rejected)
  // The accounts issued as an explicit list, if given (payload ids outside it are rejected).
  // Not owned; must outlive the call.
  const watermark::IssuedAccounts* issued = nullptr;
  // A decoded id counts as confirmed at this (corrected) p-value or below.
  double confirm_alpha = kDefaultAttributionAlpha;
  // Payload candidates confirmed at most (each one counts in the correction and costs its
  // account's keys).
  size_t max_candidates = kDefaultMaxCandidates;
};

struct EpochDetection {
  uint32_t epoch = 0;
  std::string key_id;
  watermark::ProviderResult provider;
  std::optional<watermark::AccountResult> account;  // the named account, if any
  watermark::PayloadResult payload;
  std::vector<watermark::AccountResult> confirmations;  // one per payload candidate
};

struct TextDetection {
  size_t tokens = 0;         // tokens in the text (after re-tokenisation)
  size_t prompt_tokens = 0;  // tokens of the prompt context
  std::vector<EpochDetection> epochs;
  // Best over epochs, Bonferroni-corrected for the epochs tried.
  size_t best_provider_epoch = 0;
  stats::PValue provider_p_value;
  stats::PValue account_p_value;  // for options.account; 1 if none
  // The decoded account that the fingerprint confirmed, corrected for epochs x candidates.
  std::optional<uint64_t> attributed_account;
  stats::PValue attributed_p_value;
  uint64_t attribution_tests = 0;  // epochs x candidates confirmed
  std::string method;
};

// Tokenises `text` (and options.prompt as its context) and runs every test under each epoch key
// derived from `master`. InvalidArgument for invalid UTF-8 or a tokenizer/config vocabulary
// mismatch.
absl::StatusOr<TextDetection> DetectText(const watermark::Key& master,
                                         const watermark::Config& config,
                                         const tokenizer::Tokenizer& tok, absl::string_view text,
                                         const DetectOptions& options);

// The same on token ids (prompt ids first; ids before `score_from` are context only).
absl::StatusOr<TextDetection> DetectIds(const watermark::Key& master,
                                        const watermark::Config& config,
                                        const std::vector<int32_t>& ids, size_t score_from,
                                        const DetectOptions& options);

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_TEXT_DETECTION_H_
