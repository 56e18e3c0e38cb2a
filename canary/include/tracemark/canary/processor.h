// Decode-time canary choice: where the next token can begin a lexicon member, the account's key
// picks, per context, the member that receives the set's probability mass.
//
// Built once per lexicon and tokenizer. Each member is tokenised in four surface forms (" word",
// " Word", "word", "Word"; the forms without a space apply only after a non-word byte or at the
// start). Within a set and form, the members' token sequences are a shared prefix (possibly empty)
// followed by each member's own first token, distinct between members, and its continuation:
// " for example" / " for instance" share " for"; " labor" / " lab"+"our" share nothing. A member
// whose own part is one token is *exact*: that token's probability is the member's. Only sets whose
// lower-case spaced form has this shape and at least one exact member are considered; of those,
// each form that fits is used unless one of its tokens already serves an earlier set's form under
// the same prefix. A set with at least one form used is *active*. Detection counts only occurrences
// in the forms used (active_forms()), a function of the lexicon and tokenizer alone.
//
// At a step whose history ends with a form's prefix, the exact members among the candidates give
// up their mass p (their logits become -inf) to the keyed member:
//  - an exact keyed member's logit becomes log p;
//  - a keyed member of several tokens gets p added to its first token's mass q (logit
//    log(p + q)); if that token is then sampled, the continuation is forced at the next steps with
//    probability p / (p + q), decided by the keyed PRF, so that exactly the moved mass turns into
//    the member (this needs a CanaryState; without one such sets are left alone at that step).
// Every other token keeps its probability. In a sparse list where the keyed member's first token
// is not a candidate, the best exact member's slot takes its id. In a dense row, a set whose exact
// members are all more than 14 below the row's largest logit (each under 8e-7 of probability) is
// left alone: that saves the work for almost every set at every step. Apply the canary before the
// watermark layers; they then work on the redistributed logits.
//
//   auto proc = CanaryProcessor::Create(&Lexicon::BuiltIn(), *tokenizer);     // once
//   auto key = CanaryKey::Derive(epoch_key, account);                         // once per request
//   CanaryState state;                                                        // once per response
//   auto n = (*proc)->ProcessSparse(&*key, history, absl::MakeSpan(cands), &state);  // per step
//
// `history` is every id before the position (prompt included); the choice reads back only as far
// as the previous word. InvalidArgument (nothing modified) for ids outside the vocabulary, NaN or
// +inf logits, or a dense row of the wrong length. CanaryProcessor is immutable and thread-safe; a
// CanaryState belongs to one response at a time.
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

namespace tracemark::engine {
class ServingChain;
}  // namespace tracemark::engine

namespace tracemark::canary {

// A multi-token member in progress in one response.
class CanaryState {
 public:
  void Reset() { *this = CanaryState(); }
  bool busy() const { return pending_ || forcing_; }

 private:
  friend class CanaryProcessor;
  uint64_t steps_ = 0;    // steps this state has followed (the position within the response)
  bool pending_ = false;  // waiting to see whether the member's first token is sampled
  bool forcing_ = false;  // forcing the continuation
  uint64_t at_ = 0;       // the step at which `expect_` must be the last id
  int32_t expect_ = -1;
  bool force_ = false;  // the keyed draw: force the continuation if the first token is sampled
  std::vector<int32_t> rest_;
  size_t next_ = 0;
};

class CanaryProcessor {
 public:
  // The most trailing ids of the history a choice reads (the longest prefix and the look-back for
  // the previous word before it): a history cut to its last kHistoryIds ids gives the same result.
  static constexpr size_t kHistoryIds = 78;

  // `lexicon` is not owned and must outlive the processor.
  static absl::StatusOr<std::unique_ptr<CanaryProcessor>> Create(const Lexicon* lexicon,
                                                                 const tokenizer::Tokenizer& tok);

  const Lexicon& lexicon() const { return *lexicon_; }
  int32_t vocab_size() const { return vocab_size_; }
  // One flag per lexicon set: whether the decode-time choice applies to it with this tokenizer
  // (some form of it is used; derived from active_forms()).
  std::vector<bool> active_sets() const;
  // One bit mask per set of the surface forms used (kFormSpaceLower ... in events.h): what
  // ExtractEvents must count.
  const std::vector<uint8_t>& active_forms() const { return active_forms_; }
  size_t active_count() const;

  // Each returns the number of sets whose mass was moved, plus one for a forced continuation
  // token, at this step (0 when `key` is null). `state` may be null (see above).
  absl::StatusOr<int> ProcessSparse(const CanaryKey* key, absl::Span<const int32_t> history,
                                    absl::Span<watermark::Candidate> candidates,
                                    CanaryState* state = nullptr) const;
  absl::StatusOr<int> ProcessDense(const CanaryKey* key, absl::Span<const int32_t> history,
                                   absl::Span<float> logits, CanaryState* state = nullptr) const;
  // Row b of `logits` (B x vocab_size) with histories[b], keys[b] (may be null) and states[b]
  // (may be null; `states` may be empty); counts[b] receives ProcessDense's count. All rows are
  // validated before any is modified.
  absl::Status ProcessBatch(absl::Span<const CanaryKey* const> keys,
                            absl::Span<const absl::Span<const int32_t>> histories,
                            absl::Span<float> logits, absl::Span<int> counts,
                            absl::Span<CanaryState* const> states = {}) const;

 private:
  // One (set, surface form): the shared prefix, each member's first own token and continuation.
  struct Form {
    uint32_t set = 0;
    bool needs_boundary = false;  // forms without a leading space
    std::vector<int32_t> prefix;
    std::vector<int32_t> tokens;             // by member index
    std::vector<std::vector<int32_t>> rest;  // continuation by member (empty: exact member)
    bool shared = false;                     // a token of it also belongs to another form
  };
  // A member's first token in one step: its logit, and its id in a sparse list (null in dense).
  struct Slot {
    uint32_t member;
    float* logit;
    int32_t* id;
  };
  struct Context;
  // Moves the exact members' mass to the keyed member; true if it moved. `list` is the sparse
  // candidate list (empty in dense) for the check that a rewritten id is not already there.
  bool MoveMass(const Form& form, absl::Span<Slot> slots, const CanaryKey& key,
                absl::Span<const int32_t> history, Context* ctx, CanaryState* state,
                absl::Span<const watermark::Candidate> list) const;
  // Forces the next continuation token if `state` says so; true when it did.
  static bool Continue(absl::Span<const int32_t> history, CanaryState* state,
                       absl::Span<watermark::Candidate> candidates, absl::Span<float> logits);
  // The serving chain validates a step once (watermark/logits.h), then calls these; each advances
  // `state` by one step.
  friend class engine::ServingChain;
  int SparseChecked(const CanaryKey* key, absl::Span<const int32_t> history,
                    absl::Span<watermark::Candidate> candidates, CanaryState* state) const;
  int DenseChecked(const CanaryKey* key, absl::Span<const int32_t> history,
                   absl::Span<float> logits, float row_max, CanaryState* state) const;
  int SparseStep(const CanaryKey* key, absl::Span<const int32_t> history,
                 absl::Span<watermark::Candidate> candidates, CanaryState* state) const;
  int DenseStep(const CanaryKey* key, absl::Span<const int32_t> history, absl::Span<float> logits,
                float row_max, CanaryState* state) const;
  CanaryProcessor() = default;
  // Create() steps. AddForms adds each surface form of set `s` that MakeForm accepts and that
  // Clashes with no form already added (none when the space-lower form does not fit).
  absl::Status AddForms(uint32_t s, const tokenizer::Tokenizer& tok);
  // Fills *form from the members' ids `seqs` in surface form `kind`; false if the form does not
  // fit (prefix or own part too long, first own tokens not distinct, or no exact member).
  static bool MakeForm(uint32_t set, int kind, const std::vector<std::vector<int32_t>>& seqs,
                       Form* form);
  // Whether a first own token of `form` already serves a form with the same prefix.
  bool Clashes(const Form& form) const;
  void AddForm(Form form, int kind);
  // Fills is_member_token_ and marks the forms that share a token.
  void IndexMemberTokens();
  absl::Status CheckHistory(absl::Span<const int32_t> history) const;
  bool Applies(const Form& form, absl::Span<const int32_t> history, Context* ctx) const;
  uint64_t ContextFor(const Form& form, absl::Span<const int32_t> history, Context* ctx) const;
  // Forms whose prefix could match the history's end (empty prefix, or last token indexed).
  template <typename Fn>
  void ForEachForm(absl::Span<const int32_t> history, Fn&& fn) const;

  const Lexicon* lexicon_ = nullptr;
  int32_t vocab_size_ = 0;
  std::vector<std::string> token_bytes_;
  std::vector<Form> forms_;
  std::vector<uint8_t> active_forms_;
  std::vector<uint32_t> unprefixed_;                                    // forms with empty prefix
  absl::flat_hash_map<int32_t, std::vector<uint32_t>> by_last_prefix_;  // prefix's last token
  absl::flat_hash_map<int32_t, std::vector<uint32_t>> by_token_;        // first own token -> forms
  std::vector<uint8_t> is_member_token_;  // by token id: whether by_token_ has it
};

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_PROCESSOR_H_
