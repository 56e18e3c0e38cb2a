// The sampling-loop interface: watermark every token a serving engine emits, per account.
//
// A Watermarker is built once per epoch key and configuration and shared by every request; an
// AccountKeys is derived once per request (about 20 microseconds) and reused for every token of
// it; a SequenceState (optional) follows one response. At each decode step the engine hands over
// its next-token logits, after temperature and any top-k/top-p truncation, as either
//  - a sparse candidate list (token id, logit): ProcessSparse, cost O(k);
//  - one dense row over the vocabulary: ProcessDense, cost O(V);
//  - B dense rows with B contexts and B accounts: ProcessBatch;
// together with the ids that precede the position (prompt ids included; only the last h are used).
// Bias schemes (KGW and the account layer) add their bias to the logits and leave sampling to the
// engine. Sampling schemes (Gumbel, SynthID) pick the token themselves from the keyed PRF: the
// result says so, and every other logit is set to -inf so that any downstream sampler returns it.
// Given key, configuration, context and logits, every decision is deterministic.
//
//   auto wm = Watermarker::Create(epoch_key, config);           // once
//   auto acct = (*wm)->ForAccount(account_id);                  // once per request
//   SequenceState seq;                                          // once per response
//   for (...) {
//     auto step = (*wm)->ProcessSparse(&*acct, history, absl::MakeSpan(cands), &seq);
//     if (!step.ok()) ...;  // invalid input: nothing was modified
//     token = step->token_chosen ? step->token : engine_sample(cands);
//   }
//
// Documented behaviours: a context shorter than h leaves the logits untouched (Layer::kNone);
// -inf logits are allowed (masked tokens); NaN or +inf logits, an empty candidate list, ids outside
// [0, vocab_size) and a row whose length is not vocab_size are InvalidArgument, with nothing
// modified. Watermarker and AccountKeys are immutable and thread-safe; a SequenceState belongs to
// one response at a time.
#ifndef TRACEMARK_WATERMARK_WATERMARKER_H_
#define TRACEMARK_WATERMARK_WATERMARKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/watermark/account_keys.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/layer.h"
#include "tracemark/watermark/logits.h"

namespace tracemark::watermark {

class Watermarker;
}  // namespace tracemark::watermark
namespace tracemark::engine {
class ServingChain;
}  // namespace tracemark::engine
namespace tracemark::watermark {
namespace internal {
class Layout;
struct KernelParams;
// The position decisions of `wm` as plain data, for the CUDA kernel (internal; secret).
const KernelParams& KernelParamsOf(const Watermarker& wm);
}  // namespace internal

struct StepResult {
  Layer layer = Layer::kNone;
  // True when the scheme picked the token (Gumbel, SynthID on provider positions).
  bool token_chosen = false;
  int32_t token = -1;
};

// Contexts already seen in one response, so that distortion-free schemes do not repeat a keyed
// choice. Create one per response; Reset() to reuse it.
class SequenceState {
 public:
  // True if `context_key` was seen before; records it either way.
  bool CheckAndInsert(uint64_t context_key) { return !seen_.insert(context_key).second; }
  void Reset() { seen_.clear(); }

 private:
  absl::flat_hash_set<uint64_t> seen_;
};

class Watermarker {
 public:
  // InvalidArgument when the configuration does not validate.
  static absl::StatusOr<std::unique_ptr<Watermarker>> Create(const Key& epoch_key,
                                                             const Config& config);
  ~Watermarker();

  const Config& config() const { return config_; }
  // Public id of the epoch key this watermarker was built from.
  const std::string& key_id() const { return key_id_; }

  // Keys and codewords of one account (about 0.1 ms: key derivation into secure memory and the
  // fingerprint codeword; once per request). InvalidArgument when the id does not fit the payload.
  absl::StatusOr<AccountKeys> ForAccount(uint64_t account) const;

  // `account` may be null: account-layer positions are then left untouched (anonymous traffic).
  // `state` may be null: repeated contexts are then watermarked like any other.
  absl::StatusOr<StepResult> ProcessSparse(const AccountKeys* account,
                                           absl::Span<const int32_t> context,
                                           absl::Span<Candidate> candidates,
                                           SequenceState* state) const;
  absl::StatusOr<StepResult> ProcessDense(const AccountKeys* account,
                                          absl::Span<const int32_t> context,
                                          absl::Span<float> logits, SequenceState* state) const;
  // Row b of `logits` (B x vocab_size, row-major) has context contexts[b*h .. b*h+h) (the last h
  // ids, oldest first; a negative id marks a context too short to use), account accounts[b] (may
  // be null) and state states[b] (may be null; `states` may be empty). Results go to results[b].
  // All rows are validated before any is modified.
  absl::Status ProcessBatch(absl::Span<const AccountKeys* const> accounts,
                            absl::Span<const int32_t> contexts, absl::Span<float> logits,
                            absl::Span<SequenceState* const> states,
                            absl::Span<StepResult> results) const;

 private:
  friend const internal::KernelParams& internal::KernelParamsOf(const Watermarker& wm);
  Watermarker(Config config, std::unique_ptr<internal::Layout> layout, std::string key_id);
  // The serving chain validates a step once (logits.h), then calls these.
  friend class engine::ServingChain;
  absl::Status CheckAccount(const AccountKeys* account) const;
  StepResult SparseChecked(const AccountKeys* account, absl::Span<const int32_t> context,
                           absl::Span<Candidate> candidates, SequenceState* state) const;
  StepResult DenseChecked(const AccountKeys* account, absl::Span<const int32_t> context,
                          absl::Span<float> logits, SequenceState* state) const;
  Config config_;
  std::unique_ptr<internal::Layout> layout_;
  std::string key_id_;
};

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_WATERMARKER_H_
