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

struct Position {
  Layer layer = Layer::kNone;
  uint32_t slot = 0;         // payload or fingerprint slot
  uint64_t context_key = 0;  // keyed hash of the context: identifies it
  uint64_t seed = 0;         // provider seed (LeftHash schemes) or account colour seed
  uint64_t self_min = 0;     // min-SelfHash: min of the context tokens' keyed hashes
};

class Layout {
 public:
  static absl::StatusOr<std::unique_ptr<Layout>> Create(const Key& epoch_key, const Config& c);

  const Config& config() const { return config_; }
  // Stable identity of (epoch key id, configuration): statistics and account keys carry it.
  uint64_t id() const { return id_; }
  // `ctx` holds exactly h ids.
  Position Locate(const int32_t* ctx) const;

  // Provider layer: the per-token seed (differs from pos.seed only for min-SelfHash).
  uint64_t ProviderSeed(const Position& pos, int32_t token) const {
    if (!self_hash_) return pos.seed;
    const uint64_t own = Mix(self_key_, static_cast<uint32_t>(token));
    return own < pos.self_min ? own : pos.self_min;
  }
  bool IsGreen(uint64_t seed, int32_t token) const {
    return Mix(seed, static_cast<uint32_t>(token)) < green_threshold_;
  }
  double green_fraction() const { return green_fraction_; }

  // Account layer: colour of a token at an account position, in [0, colours).
  static uint32_t Colour(uint64_t seed, int32_t token, uint32_t colours) {
    return MulHiIndex(Mix(seed, static_cast<uint32_t>(token)), colours);
  }
  uint32_t payload_colours() const { return payload_colours_; }
  uint32_t payload_slots() const { return payload_slots_; }
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
  SipKey channel_key_, provider_key_, account_key_, payload_key_;
  uint64_t self_key_ = 0;
  bool self_hash_ = false;
  uint64_t provider_threshold_ = 0;  // position is provider when channel hash < this
  bool all_provider_ = true;
  uint64_t payload_threshold_ = 0;  // account position carries payload when Mix(...) < this
  uint64_t green_threshold_ = 0;
  double green_fraction_ = 0;
  uint32_t payload_colours_ = 4, payload_slots_ = 0;
  std::vector<uint32_t> tardos_threshold_;
};

}  // namespace internal
}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_SRC_LAYOUT_H_
