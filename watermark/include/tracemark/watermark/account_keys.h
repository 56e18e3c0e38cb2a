// One account's watermark state: its id, its key's public id and commitment, the symbols of its id
// payload and its fingerprint codeword. Derived from the epoch key by Watermarker::ForAccount or
// Detector::ForAccount; the account key itself is wiped as soon as the codeword is drawn.
//
// Immutable after creation; thread-safe.
#ifndef TRACEMARK_WATERMARK_ACCOUNT_KEYS_H_
#define TRACEMARK_WATERMARK_ACCOUNT_KEYS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tracemark/watermark/prf.h"

namespace tracemark::watermark {

class AccountKeys {
 public:
  AccountKeys() = default;
  AccountKeys(const AccountKeys&) = default;
  AccountKeys& operator=(const AccountKeys&) = default;
  AccountKeys(AccountKeys&&) = default;
  AccountKeys& operator=(AccountKeys&&) = default;
  ~AccountKeys();

  uint64_t account() const { return account_; }
  // Public id and commitment of the account key (DeriveAccountKey), for reports.
  const std::string& key_id() const { return key_id_; }
  const std::string& commitment() const { return commitment_; }
  // Payload symbol per payload slot, each in [0, 2^bits_per_symbol).
  const std::vector<uint8_t>& payload_symbols() const { return payload_symbols_; }
  // Fingerprint symbol (0 or 1) per fingerprint slot.
  const std::vector<uint8_t>& fingerprint() const { return fingerprint_; }
  // Identity of the epoch key and configuration these keys were derived under; the Watermarker and
  // Detector refuse keys from another.
  uint64_t layout_id() const { return layout_id_; }
  // The account's canary key (DeriveAccountKey(epoch, account).Derive("canary", 0), first 16
  // bytes) for the canary module's keyed choices. Secret: never log or serialise it.
  const SipKey& canary_sip_key() const { return canary_key_; }

 private:
  friend class AccountKeysBuilder;
  uint64_t account_ = 0;
  uint64_t layout_id_ = 0;
  std::string key_id_, commitment_;
  std::vector<uint8_t> payload_symbols_, fingerprint_;
  SipKey canary_key_;
};

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_ACCOUNT_KEYS_H_
