// Decode-time canary choice: where the next token can begin a lexicon member, the account's key
// picks, per context, the member that receives the whole set's probability mass.
//
// Built once per lexicon and tokenizer. Each member is tokenised in four surface forms (" word",
// " Word", "word", "Word"; the forms without a space apply only after a non-word byte or at the
// start). Within a set and form, the members' token sequences must be one shared prefix (possibly
// empty) followed by exactly one token that differs between members — " for example" and " for
// instance" share " for" and differ in " example" / " instance". A set whose lower-case spaced
// form fits this shape for the tokenizer is *active*; other forms of it are used where they fit.
// Detection counts only active sets (active_sets()), a function of lexicon and tokenizer alone.
//
// At a step whose history ends with a form's prefix, the candidates among that form's distinct
// tokens are the set's present members; their total probability p is given to the keyed member
// (its logit becomes log-sum-exp of theirs) and the others get -inf, so the set's mass and every
// other token's probability are unchanged. In a sparse list where the keyed member is not a
// candidate, the best present member's id is replaced by the keyed member's. Apply the canary
// before the watermark layers; they then work on the redistributed logits.
//
//   auto proc = CanaryProcessor::Create(&Lexicon::BuiltIn(), *tokenizer);   // once
//   auto key = CanaryKey::Derive(epoch_key, account);                       // once per request
//   auto n = (*proc)->ProcessSparse(&*key, history, absl::MakeSpan(cands));  // per step
//
// `history` is every id before the position (prompt included); the choice reads back only as far
// as the previous word. InvalidArgument (nothing modified) for ids outside the vocabulary, NaN or
// +inf logits, or a dense row of the wrong length. Immutable and thread-safe.
#ifndef TRACEMARK_CANARY_PROCESSOR_H_
#define TRACEMARK_CANARY_PROCESSOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/canary/canary_key.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/tokenizer/tokenizer.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::canary {

class CanaryProcessor {
 public:
  // `lexicon` is not owned and must outlive the processor.
  static absl::StatusOr<std::unique_ptr<CanaryProcessor>> Create(const Lexicon* lexicon,
                                                                 const tokenizer::Tokenizer& tok);

  const Lexicon& lexicon() const { return *lexicon_; }
  int32_t vocab_size() const { return vocab_size_; }
  // One flag per lexicon set: whether the decode-time choice applies to it with this tokenizer.
  const std::vector<bool>& active_sets() const { return active_; }
  size_t active_count() const;

  // Each returns the number of sets whose mass was moved at this step (0 when `key` is null).
  absl::StatusOr<int> ProcessSparse(const CanaryKey* key, absl::Span<const int32_t> history,
                                    absl::Span<watermark::Candidate> candidates) const;
  absl::StatusOr<int> ProcessDense(const CanaryKey* key, absl::Span<const int32_t> history,
                                   absl::Span<float> logits) const;
  // Row b of `logits` (B x vocab_size) with histories[b] and keys[b] (may be null); counts[b]
  // receives the number of sets moved. All rows are validated before any is modified.
  absl::Status ProcessBatch(absl::Span<const CanaryKey* const> keys,
                            absl::Span<const absl::Span<const int32_t>> histories,
                            absl::Span<float> logits, absl::Span<int> counts) const;

 private:
  // One (set, surface form): the shared prefix and each member's distinct token.
  struct Form {
    uint32_t set = 0;
    bool needs_boundary = false;  // forms without a leading space
    std::vector<int32_t> prefix;
    std::vector<int32_t> tokens;  // by member index
  };
  struct Context;
  CanaryProcessor() = default;
  absl::Status CheckHistory(absl::Span<const int32_t> history) const;
  bool Applies(const Form& form, absl::Span<const int32_t> history, Context* ctx) const;
  uint64_t ContextFor(const Form& form, absl::Span<const int32_t> history, Context* ctx) const;
  // Forms whose prefix could match the history's end (empty prefix, or last token indexed).
  template <typename Fn>
  void ForEachForm(absl::Span<const int32_t> history, Fn&& fn) const;
  absl::StatusOr<int> DenseRow(const CanaryKey* key, absl::Span<const int32_t> history,
                               absl::Span<float> logits) const;

  const Lexicon* lexicon_ = nullptr;
  int32_t vocab_size_ = 0;
  std::vector<std::string> token_bytes_;
  std::vector<Form> forms_;
  std::vector<bool> active_;
  std::vector<uint32_t> unprefixed_;                                  // forms with empty prefix
  absl::flat_hash_map<int32_t, std::vector<uint32_t>> by_last_prefix_;  // prefix's last token
  absl::flat_hash_map<int32_t, std::vector<uint32_t>> by_token_;        // member token -> forms
};

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_PROCESSOR_H_
