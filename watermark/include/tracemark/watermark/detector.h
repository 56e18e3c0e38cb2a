// Detection: statistics of token ids under one epoch key and configuration, and the tests on them.
//
// Score() walks a token sequence once, recomputing each position's layer, slot and seed from its
// context exactly as the Watermarker did, and records one entry per unique scored tuple (the
// keyed-PRF input and the token), so repeated text never counts twice. Statistics from several
// documents, shards or machines merge exactly (a union of tuples). The tests then read them:
//  - TestProvider: the provider scheme's exact tail (binomial for KGW, Gamma for Gumbel sums,
//    binomial over g-values for SynthID);
//  - DecodePayload: the account id carried by a single-source text, one pass whatever the number of
//    accounts (to be confirmed with TestAccount of the decoded id);
//  - TestAccount(s): the fingerprint accusation score of named accounts, with a Chernoff bound on
//    its null that holds for every account not involved in producing the text, whatever the others
//    did (docs/detection.md).
//
//   auto det = Detector::Create(epoch_key, config);
//   TextStatistics stats;
//   (*det)->Score(ids, prompt_length, &stats);
//   ProviderResult p = (*det)->TestProvider(stats);
//   PayloadResult id = (*det)->DecodePayload(stats);
//   if (id.decoded) { auto acct = (*det)->ForAccount(id.account); ... TestAccount(stats, *acct) }
//
// Detector is immutable and thread-safe; a TextStatistics is thread-compatible.
#ifndef TRACEMARK_WATERMARK_DETECTOR_H_
#define TRACEMARK_WATERMARK_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/watermark/account_keys.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/issued_accounts.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/layer.h"

namespace tracemark::watermark {

namespace internal {
class Layout;
}  // namespace internal

// One entry per unique scored tuple: key = hash of (PRF input, token), value = what the tuple
// contributes. Merging is a union, so it is exact and order-independent.
// Statistics belong to the epoch key and configuration they were scored under (layout_id); the
// Detector refuses to mix them.
class TextStatistics {
 public:
  TextStatistics() = default;
  // Statistics rebuilt from their parts (layout_id() and tuples() of statistics scored before), as
  // a scan partition's serialized result carries them. Nothing checks the parts: a Detector
  // refuses them only when the layout id is not its own.
  TextStatistics(uint64_t layout_id, absl::flat_hash_map<uint64_t, uint64_t> tuples)
      : tuples_(std::move(tuples)), layout_id_(layout_id) {}

  // InvalidArgument when `other` was scored under another epoch key or configuration.
  absl::Status Merge(const TextStatistics& other);
  size_t size() const { return tuples_.size(); }
  uint64_t layout_id() const { return layout_id_; }  // 0 until first scored
  const absl::flat_hash_map<uint64_t, uint64_t>& tuples() const { return tuples_; }

 private:
  friend class Detector;
  void Add(uint64_t tuple_key, uint64_t contribution) {
    tuples_.try_emplace(tuple_key, contribution);
  }
  absl::flat_hash_map<uint64_t, uint64_t> tuples_;
  uint64_t layout_id_ = 0;
};

struct ProviderResult {
  Scheme scheme = Scheme::kKgw;
  uint64_t tuples = 0;  // unique scored tuples on provider positions
  double score = 0;     // green count, sum of -log(1 - r), or number of g-values equal to 1
  stats::PValue p_value;
  std::string method;
};

// List decoding of the id payload: symbol vectors are tried in best-first order of their distance
// from the per-slot majorities (count deficits summed over slots), and those whose keyed check
// bits match are returned. Each candidate must be confirmed with TestAccount on the independent
// fingerprint positions; confirming several calls for a Bonferroni correction over them.
struct PayloadResult {
  bool decoded = false;              // at least one candidate passed the check bits
  uint64_t account = 0;              // the first (most likely) candidate
  std::vector<uint64_t> candidates;  // all passing candidates, most likely first
  uint64_t candidates_tried = 0;     // symbol vectors whose check bits were tested
  uint32_t slots = 0, slots_covered = 0;
  uint64_t tuples = 0;
  std::vector<uint8_t> symbols;  // per-slot majority colour
  std::string detail;            // why decoding failed, when it did
};

struct PayloadOptions {
  uint64_t max_tried = 4096;  // symbol vectors tested at most
  // Payload slots with no observation that list decoding may fill in (each multiplies the symbol
  // vectors to try by the number of colours); more unobserved slots: no decoding.
  uint32_t max_unobserved_slots = 2;
  size_t max_candidates = 4;  // passing candidates returned at most
  // Accounts issued so far: ids >= account_limit are rejected like a check-bit mismatch, which
  // adds log2(2^id_bits / account_limit) bits of error detection. 0: no limit.
  uint64_t account_limit = 0;
  // If set, the accounts issued as an explicit list: ids outside it are rejected the same way.
  // Not owned; must outlive the call.
  const IssuedAccounts* issued = nullptr;
};

struct AccountResult {
  uint64_t account = 0;
  std::string key_id;
  uint64_t tuples = 0;  // unique scored tuples on fingerprint positions
  double score = 0;     // symmetric Tardos score with soft (count) symbols
  double null_mean = 0, null_sd = 0;
  stats::PValue p_value;  // Chernoff bound, for this one account (correct for accounts tried)
  std::string method;
};

class Detector {
 public:
  static absl::StatusOr<std::unique_ptr<Detector>> Create(const Key& epoch_key,
                                                          const Config& config);
  ~Detector();

  const Config& config() const { return config_; }
  const std::string& key_id() const { return key_id_; }
  absl::StatusOr<AccountKeys> ForAccount(uint64_t account) const;

  // Scores ids[score_from ..] with the preceding ids as context (positions with fewer than h
  // preceding ids are skipped). Ids outside [0, vocab_size), or `stats` scored under another
  // epoch key or configuration, are InvalidArgument (nothing added).
  absl::Status Score(absl::Span<const int32_t> ids, size_t score_from, TextStatistics* stats) const;

  // Each test is InvalidArgument when the statistics or account keys belong to another epoch key
  // or configuration. Empty statistics give p = 1.
  absl::StatusOr<ProviderResult> TestProvider(const TextStatistics& stats) const;
  absl::StatusOr<PayloadResult> DecodePayload(const TextStatistics& stats,
                                              PayloadOptions options = {}) const;
  absl::StatusOr<AccountResult> TestAccount(const TextStatistics& stats,
                                            const AccountKeys& account) const;
  // The tuples of `stats` on one layer's positions (kProvider, kAccountPayload or
  // kAccountFingerprint), e.g. to keep a dataset-wide provider statistic without the account
  // layers' tuples. Same errors as the tests.
  absl::StatusOr<TextStatistics> Project(const TextStatistics& stats, Layer layer) const;

  // Same as TestAccount for each account, sharing the null computation.
  absl::StatusOr<std::vector<AccountResult>> TestAccounts(
      const TextStatistics& stats, absl::Span<const AccountKeys> accounts) const;

 private:
  Detector(Config config, std::unique_ptr<internal::Layout> layout, std::string key_id);
  absl::Status CheckStats(const TextStatistics& stats) const;
  Config config_;
  std::unique_ptr<internal::Layout> layout_;
  std::string key_id_;
};

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_DETECTOR_H_
