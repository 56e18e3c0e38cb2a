#include "tracemark/detect/verifier.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::detect {

using stats::Bonferroni;
using stats::PValue;

// Account keys by (epoch index, account). Two generations: when the current one fills, it becomes
// the old one and the previous old one is dropped, so a working set smaller than the capacity stays
// cached and memory is bounded (~1.2 KB per account with the default code lengths).
class AccountKeyCache {
 public:
  static constexpr size_t kGenerationCapacity = 32768;
  using Entry = std::shared_ptr<const watermark::AccountKeys>;

  Entry Find(size_t epoch, uint64_t account) {
    std::lock_guard<std::mutex> lock(mu_);
    const Key key{epoch, account};
    if (auto it = current_.find(key); it != current_.end()) return it->second;
    if (auto it = old_.find(key); it != old_.end()) {
      Entry e = it->second;
      InsertLocked(key, e);
      return e;
    }
    return nullptr;
  }
  void Insert(size_t epoch, uint64_t account, Entry e) {
    std::lock_guard<std::mutex> lock(mu_);
    InsertLocked(Key{epoch, account}, std::move(e));
  }

 private:
  using Key = std::pair<size_t, uint64_t>;
  void InsertLocked(const Key& key, Entry e) {  // mu_ held
    if (current_.size() >= kGenerationCapacity) {
      old_ = std::move(current_);
      current_.clear();
    }
    current_.insert_or_assign(key, std::move(e));
  }
  std::mutex mu_;  // guards current_ and old_
  absl::flat_hash_map<Key, Entry> current_;
  absl::flat_hash_map<Key, Entry> old_;
};

Verifier::Verifier(watermark::Config config, std::vector<uint32_t> epochs,
                   std::vector<std::unique_ptr<watermark::Detector>> detectors)
    : config_(std::move(config)),
      epochs_(std::move(epochs)),
      detectors_(std::move(detectors)),
      cache_(std::make_unique<AccountKeyCache>()) {}

Verifier::~Verifier() = default;

absl::StatusOr<std::unique_ptr<Verifier>> Verifier::Create(const watermark::Key& master,
                                                           const watermark::Config& config,
                                                           std::vector<uint32_t> epochs) {
  if (epochs.empty()) return absl::InvalidArgumentError("no epoch to try");
  absl::flat_hash_set<uint32_t> seen;
  std::vector<std::unique_ptr<watermark::Detector>> detectors;
  for (uint32_t epoch : epochs) {
    if (!seen.insert(epoch).second) {
      return absl::InvalidArgumentError(absl::StrCat("epoch ", epoch, " is listed twice"));
    }
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key epoch_key, watermark::DeriveEpochKey(master, epoch));
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<watermark::Detector> det,
                               watermark::Detector::Create(epoch_key, config));
    detectors.push_back(std::move(det));
  }
  return std::unique_ptr<Verifier>(new Verifier(config, std::move(epochs), std::move(detectors)));
}

absl::StatusOr<std::shared_ptr<const watermark::AccountKeys>> Verifier::Account(
    size_t i, uint64_t account) const {
  if (i >= detectors_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("epoch index ", i, " out of range"));
  }
  if (AccountKeyCache::Entry e = cache_->Find(i, account)) return e;
  TRACEMARK_ASSIGN_OR_RETURN(watermark::AccountKeys keys, detectors_[i]->ForAccount(account));
  auto e = std::make_shared<const watermark::AccountKeys>(std::move(keys));
  cache_->Insert(i, account, e);
  return e;
}

absl::Status Verifier::ScoreInto(absl::Span<const int32_t> ids, size_t score_from,
                                 std::vector<watermark::TextStatistics>* stats) const {
  if (stats->empty()) stats->resize(detectors_.size());
  if (stats->size() != detectors_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "statistics for ", stats->size(), " epochs given to a verifier of ", detectors_.size()));
  }
  for (size_t i = 0; i < detectors_.size(); ++i) {
    TRACEMARK_RETURN_IF_ERROR(detectors_[i]->Score(ids, score_from, &(*stats)[i]));
  }
  return absl::OkStatus();
}

absl::StatusOr<TextDetection> Verifier::Analyze(absl::Span<const watermark::TextStatistics> stats,
                                                const DetectOptions& options) const {
  if (stats.size() != detectors_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "statistics for ", stats.size(), " epochs given to a verifier of ", detectors_.size()));
  }
  TextDetection out;
  const uint64_t n_epochs = detectors_.size();
  PValue best_provider, best_account;
  uint64_t candidates_total = 0;
  for (size_t i = 0; i < detectors_.size(); ++i) {
    const watermark::Detector& det = *detectors_[i];
    EpochDetection e;
    e.epoch = epochs_[i];
    e.key_id = det.key_id();
    TRACEMARK_ASSIGN_OR_RETURN(e.provider, det.TestProvider(stats[i]));
    if (options.account.has_value()) {
      TRACEMARK_ASSIGN_OR_RETURN(auto acct, Account(i, *options.account));
      TRACEMARK_ASSIGN_OR_RETURN(e.account, det.TestAccount(stats[i], *acct));
      if (e.account->p_value < best_account) best_account = e.account->p_value;
    }
    watermark::PayloadOptions popt;
    popt.account_limit = options.account_limit;
    popt.issued = options.issued;
    popt.max_candidates = options.max_candidates;
    TRACEMARK_ASSIGN_OR_RETURN(e.payload, det.DecodePayload(stats[i], popt));
    if (!e.payload.candidates.empty()) {
      // One pass over the statistics and one null for all candidates.
      std::vector<watermark::AccountKeys> cands;
      for (uint64_t id : e.payload.candidates) {
        TRACEMARK_ASSIGN_OR_RETURN(auto acct, Account(i, id));
        cands.push_back(*acct);
      }
      TRACEMARK_ASSIGN_OR_RETURN(e.confirmations, det.TestAccounts(stats[i], cands));
    }
    candidates_total += e.confirmations.size();
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
        out.attributed_account.reset();
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

absl::StatusOr<TextDetection> Verifier::DetectIds(absl::Span<const int32_t> ids, size_t score_from,
                                                  const DetectOptions& options) const {
  std::vector<watermark::TextStatistics> stats;
  TRACEMARK_RETURN_IF_ERROR(ScoreInto(ids, score_from, &stats));
  TRACEMARK_ASSIGN_OR_RETURN(TextDetection out, Analyze(stats, options));
  out.tokens = ids.size() - std::min(score_from, ids.size());
  out.prompt_tokens = std::min(score_from, ids.size());
  return out;
}

}  // namespace tracemark::detect
