// Internal: what every position of a text means under one epoch key and configuration. Shared by
// the Watermarker (decode time) and the Detector (verification), so both read the same layout.
#ifndef TRACEMARK_WATERMARK_SRC_LAYOUT_H_
#define TRACEMARK_WATERMARK_SRC_LAYOUT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernel_params.h"
#include "tracemark/watermark/account_keys.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/prf.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::watermark {

class AccountKeysBuilder {
 public:
  static AccountKeys Make(uint64_t layout_id, uint64_t account, std::string key_id,
                          std::string commitment, std::vector<uint8_t> payload,
                          std::vector<uint8_t> fingerprint, SipKey canary_key);
};

namespace internal {

// Salt for the sampling uniform of SynthID: an input no token id can take.
inline constexpr uint64_t kSampleSalt = 1ull << 40;

class Layout {
 public:
  static absl::StatusOr<std::unique_ptr<Layout>> Create(const Key& epoch_key, const Config& c);
  ~Layout();  // wipes the subkeys

  const Config& config() const { return config_; }
  // Stable identity of (epoch key id, configuration): statistics and account keys carry it.
  uint64_t id() const { return id_; }
  // The position decisions as plain data, for the CUDA kernel (kernel_params.h). Secret.
  const KernelParams& kernel_params() const { return params_; }
  // `ctx` holds exactly h ids.
  Position Locate(const int32_t* ctx) const { return LocateWith(params_, ctx); }

  // Provider layer: the per-token seed (differs from pos.seed only for min-SelfHash).
  uint64_t ProviderSeed(const Position& pos, int32_t token) const {
    return ProviderSeedWith(params_, pos, token);
  }
  bool IsGreen(uint64_t seed, int32_t token) const { return IsGreenWith(params_, seed, token); }
  double green_fraction() const { return green_fraction_; }

  // Account layer: colour of a token at an account position, in [0, colours).
  static uint32_t Colour(uint64_t seed, int32_t token, uint32_t colours) {
    return ColourOf(seed, token, colours);
  }
  uint32_t payload_colours() const { return params_.payload_colours; }
  uint32_t payload_slots() const { return params_.payload_slots; }
  uint32_t fingerprint_slots() const { return static_cast<uint32_t>(tardos_threshold_.size()); }
  // P(fingerprint symbol of slot j is 1), exactly.
  double TardosBias(uint32_t j) const;

  // Payload symbols of an account id (id bits then keyed check bits, bits_per_symbol at a time).
  std::vector<uint8_t> PayloadSymbols(uint64_t account) const;
  // Inverse of PayloadSymbols: the id, or nullopt when the check bits do not match.
  std::optional<uint64_t> DecodePayload(absl::Span<const uint8_t> symbols) const;

  absl::StatusOr<AccountKeys> ForAccount(uint64_t account) const;

  // The preferred colour and number of colours at an account position.
  static void Preferred(const Position& pos, const AccountKeys& acct, uint32_t* colour,
                        uint32_t* colours, uint32_t payload_colours);

 private:
  explicit Layout(const Config& c) : config_(c) {}
  uint64_t Check(uint64_t id) const;

  Config config_;
  uint64_t id_ = 0;
  std::unique_ptr<Key> epoch_key_;  // derives account keys
  KernelParams params_;             // keys, thresholds and biases of the position decisions
  SipKey payload_key_;
  double green_fraction_ = 0;
  std::vector<uint32_t> tardos_threshold_;
};

}  // namespace internal
}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_SRC_LAYOUT_H_
