// A verifier for one master key, watermark configuration and set of epochs: the per-epoch
// detectors are built once and account keys are derived once and cached, so that a scan of many
// documents costs what scoring them costs.
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Verifier> v,
//                              Verifier::Create(master, config, /*epochs=*/{0, 1}));
//   TRACEMARK_ASSIGN_OR_RETURN(std::vector<watermark::TextStatistics> stats,
//                              v->Score(ids, prompt_length));
//   TRACEMARK_ASSIGN_OR_RETURN(TextDetection d, v->Analyze(stats, options));
//
// The master key is used only by Create (to derive the epoch keys) and is not retained.
// Thread-safe: every const method may be called concurrently.
#ifndef TRACEMARK_DETECT_VERIFIER_H_
#define TRACEMARK_DETECT_VERIFIER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/detect/text_detection.h"
#include "tracemark/watermark/account_keys.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::detect {

class AccountKeyCache;

class Verifier {
 public:
  // InvalidArgument for an empty or repeated epoch list or an invalid configuration.
  static absl::StatusOr<std::unique_ptr<Verifier>> Create(const watermark::Key& master,
                                                          const watermark::Config& config,
                                                          std::vector<uint32_t> epochs);
  ~Verifier();

  const watermark::Config& config() const { return config_; }
  size_t num_epochs() const { return epochs_.size(); }
  uint32_t epoch(size_t i) const { return epochs_[i]; }
  const watermark::Detector& detector(size_t i) const { return *detectors_[i]; }

  // Keys of `account` under epoch index i: derived on first use, then served from a cache shared
  // by all threads (bounded; the oldest generation is dropped when it fills).
  absl::StatusOr<std::shared_ptr<const watermark::AccountKeys>> Account(size_t i,
                                                                        uint64_t account) const;

  // Scores ids[score_from ..] (earlier ids are context only) under every epoch, adding to
  // stats[i] for epoch i; `stats` is resized to num_epochs() if empty. Scoring a long text in
  // pieces, each with the previous piece's last h ids as context, adds what one call would.
  absl::Status ScoreInto(absl::Span<const int32_t> ids, size_t score_from,
                         std::vector<watermark::TextStatistics>* stats) const;

  // Every test on one document's per-epoch statistics (as from ScoreInto): the provider layer,
  // options.account if set, and the payload-decoded account confirmed on the fingerprint
  // positions, each corrected for the epochs and candidates tried (`options.epochs` is ignored:
  // the verifier's own epochs are tried).
  absl::StatusOr<TextDetection> Analyze(absl::Span<const watermark::TextStatistics> stats,
                                        const DetectOptions& options) const;

  // ScoreInto then Analyze.
  absl::StatusOr<TextDetection> DetectIds(absl::Span<const int32_t> ids, size_t score_from,
                                          const DetectOptions& options) const;

 private:
  Verifier(watermark::Config config, std::vector<uint32_t> epochs,
           std::vector<std::unique_ptr<watermark::Detector>> detectors);
  watermark::Config config_;
  std::vector<uint32_t> epochs_;
  std::vector<std::unique_ptr<watermark::Detector>> detectors_;
  std::unique_ptr<AccountKeyCache> cache_;
};

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_VERIFIER_H_
