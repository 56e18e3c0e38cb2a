// An interpolated modified Kneser–Ney n-gram language model over token ids.
//
// KneserNeyModel is tracemark's reference "model": a real smoothed language model that a decode
// loop can sample from, so that watermarking can be exercised end to end without neural weights.
// It works on int32 token ids in [0, vocab_size) and knows nothing about tokenisers; turning text
// into ids is the caller's job.
//
// Smoothing follows Chen & Goodman (1998), "interpolated modified Kneser–Ney": every order n has
// three discounts D1, D2, D3+ estimated from that order's count-of-counts; the highest order uses
// raw counts and every lower order uses continuation counts (the number of distinct left
// extensions); the unigram level is interpolated with the uniform distribution over the whole
// vocabulary, so every id has a non-zero probability in every context.
//
// Documents and the start of a sequence. There is no BOS symbol. Documents are separate
// sequences: no n-gram crosses a document boundary, and the token at position i of a document is
// predicted from the min(i, order-1) tokens before it. When counting continuations, the start of
// a document counts as one extra distinct left context (as if an unseen <s> preceded every
// document), so the n-grams that open documents are not starved of mass. At query time a context
// shorter than order-1 ids is simply a shorter history: scoring the first tokens of a text with
// the empty or short context reproduces the training convention.
//
// Example:
//
//   std::vector<std::vector<int32_t>> docs = ...;  // tokenised corpus
//   TRACEMARK_ASSIGN_OR_RETURN(KneserNeyModel lm,
//                              KneserNeyModel::Train(docs, /*vocab_size=*/100277, /*order=*/4));
//   std::vector<float> logprobs(lm.vocab_size());
//   lm.LogProbs(history, absl::MakeSpan(logprobs));  // natural logs, sum(exp) == 1
//   TRACEMARK_RETURN_IF_ERROR(lm.Save("/tmp/lm.tmkn"));
//   TRACEMARK_ASSIGN_OR_RETURN(KneserNeyModel again, KneserNeyModel::Load("/tmp/lm.tmkn"));
//
// Thread-safety: a KneserNeyModel is immutable after Train() or Load(); all const methods may be
// called concurrently from any number of threads.
#ifndef TRACEMARK_REFMODEL_KNESER_NEY_H_
#define TRACEMARK_REFMODEL_KNESER_NEY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tracemark::refmodel {

class KneserNeyModel {
 public:
  static constexpr int kMinOrder = 2;
  static constexpr int kMaxOrder = 6;
  static constexpr int kDefaultOrder = 4;
  // Upper bound on vocab_size (the model keeps a few dense arrays of this length).
  static constexpr int32_t kMaxVocabSize = int32_t{1} << 27;

  // Trains a model of the given order on `documents`, each a sequence of ids in
  // [0, vocab_size). Empty documents are allowed and ignored.
  //
  // Returns InvalidArgument if order is outside [kMinOrder, kMaxOrder], vocab_size is outside
  // [1, kMaxVocabSize], an id is out of range, the corpus has no tokens, or it has 2^32 - 1
  // tokens or more. Time is O(T log T * order) and memory O(T * order) for T tokens
  // (about 1.5 s and 170 MB peak for T = 2.5 M, V = 100 k, order 4 on one core).
  //
  // Discounts: with n_k the number of n-grams of an order whose (raw or continuation) count is
  // exactly k, Y = n1 / (n1 + 2 n2) and Dk = k - (k + 1) Y n_{k+1} / n_k for k = 1, 2, 3.
  // Degenerate cases: if n1 + 2 n2 == 0 then Y = 0; if n_k == 0 then Dk = k / 2; finally every
  // Dk is clamped to [0.1, k].
  static absl::StatusOr<KneserNeyModel> Train(const std::vector<std::vector<int32_t>>& documents,
                                              int32_t vocab_size, int order = kDefaultOrder);

  // Reads a model written by Save(). Returns NotFound if the file does not exist, DataLoss if it
  // is truncated or its checksum does not match, InvalidArgument if it is not a tracemark
  // Kneser–Ney model, has an unsupported version, or its contents are inconsistent. Never crashes
  // on malformed input.
  static absl::StatusOr<KneserNeyModel> Load(const std::string& path);

  KneserNeyModel(const KneserNeyModel&) = default;
  KneserNeyModel& operator=(const KneserNeyModel&) = default;
  KneserNeyModel(KneserNeyModel&&) = default;
  KneserNeyModel& operator=(KneserNeyModel&&) = default;

  // Writes the model to `path` in a versioned little-endian binary format with a checksum.
  // The bytes go to a temporary file beside `path` that is flushed, fsync'ed and renamed over
  // `path`, so `path` never holds a partial model. Returns an error status if any step fails
  // (the temporary file is removed).
  absl::Status Save(const std::string& path) const;

  // Fills out[w] with ln p(w | context) for every id w in [0, vocab_size()).
  // Only the last order()-1 ids of `context` are used; a shorter context is a shorter history
  // (see the file comment). Ids of `context` outside [0, vocab_size) are never-seen tokens: the
  // history is cut just after the last of them. All outputs are finite and sum(exp(out)) == 1
  // up to float rounding.
  //
  // Precondition: out.size() == vocab_size(); otherwise `out` is filled with NaN (and an assert
  // fires in debug builds). Cost: O(V) plus O(F * order) where F is the number of distinct ids
  // ever seen after the last context id; no allocation proportional to V.
  void LogProbs(absl::Span<const int32_t> context, absl::Span<float> out) const;

  // ln p(id | context) in double precision; LogProbs() agrees with it up to float rounding.
  // Returns -infinity if id is outside [0, vocab_size()).
  double LogProb(absl::Span<const int32_t> context, int32_t id) const;

  // Perplexity exp(-mean ln p(ids[i] | ids[max(0, i-order+1) .. i))) over i in
  // [score_from, ids.size()): the ids before score_from only serve as history. Returns NaN if
  // there is nothing to score (score_from >= ids.size()), +infinity if an id is out of range.
  double Perplexity(absl::Span<const int32_t> ids, size_t score_from = 0) const;

  int order() const { return order_; }
  int32_t vocab_size() const { return vocab_size_; }
  // Number of distinct n-grams of order n (1 <= n <= order()) stored; for n == 1 this is the
  // number of ids seen in training.
  size_t NumNgrams(int n) const;
  // The discounts {D1, D2, D3+} used at order n (1 <= n <= order()).
  std::array<double, 3> Discounts(int n) const;

 private:
  // One order n >= 2 of the trie. N-grams are sorted by (parent, last id), where the parent is
  // the (n-1)-gram of their first n-1 ids, so the children of a node are contiguous.
  struct Level {
    std::vector<int32_t> words;  // last id of each n-gram
    std::vector<float> alpha;    // max(c - D(c), 0) / (sum of c over siblings)
  };
  // Nodes of order n (1 <= n < order) seen as contexts for order n+1.
  struct ContextLevel {
    std::vector<uint32_t> child_begin;  // children in levels_[n+1]: [child_begin[i], [i+1])
    std::vector<float> backoff;         // gamma: weight of order n given this context
  };

  KneserNeyModel() = default;

  // Fills log_unigram_ from unigram_ (both Train and Load use it, so they agree bit for bit).
  void FinishUnigram();
  // Finds the nodes of the suffixes of `context` that have children: ctx[j-1] is the node of
  // order j for the last j ids. Returns how many were found.
  int FindContexts(absl::Span<const int32_t> context, std::array<uint32_t, kMaxOrder>& ctx) const;
  // Node of order `n` for the n-gram `ids` (ids.size() == n), or -1 if unseen.
  int64_t FindNode(absl::Span<const int32_t> ids) const;

  int order_ = 0;
  int32_t vocab_size_ = 0;
  uint64_t num_unigrams_ = 0;                     // ids seen in training
  std::vector<std::array<double, 3>> discounts_;  // [n-1] for order n
  std::vector<float> unigram_;                    // p_1(w), includes the uniform share
  std::vector<float> log_unigram_;                // ln unigram_[w]
  std::vector<Level> levels_;                     // [n-2] for order n >= 2
  std::vector<ContextLevel> contexts_;            // [n-1] for order n < order_
};

}  // namespace tracemark::refmodel

#endif  // TRACEMARK_REFMODEL_KNESER_NEY_H_
