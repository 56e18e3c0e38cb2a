// One account's canary key and its keyed choices.
//
// The canary key is DeriveAccountKey(epoch_key, account).Derive("canary", 0): independent of the
// account's watermark keys and of every other account's. For a set of k members and a context,
// Choice() is a member index drawn from SipHash-2-4 under that key by rejection sampling, so that
// it is exactly uniform on [0, k) and independent across (set, context) pairs; this is what makes
// the canary test's null exact (docs/canary.md). Only the 128-bit SipHash key is kept; the derived
// key is wiped when Derive returns. Never log or serialise a CanaryKey.
//
//   absl::StatusOr<CanaryKey> key = CanaryKey::Derive(epoch_key, 42);
//   uint32_t m = key->Choice(set_id, set_size, ContextId("economy"));
//
// Immutable; thread-safe.
#ifndef TRACEMARK_CANARY_CANARY_KEY_H_
#define TRACEMARK_CANARY_CANARY_KEY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tracemark/watermark/account_keys.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/prf.h"

namespace tracemark::canary {

class CanaryKey {
 public:
  static absl::StatusOr<CanaryKey> Derive(const watermark::Key& epoch_key, uint64_t account);
  // The canary key carried by an account's watermark keys (the same key as Derive gives).
  static CanaryKey FromAccountKeys(const watermark::AccountKeys& keys) {
    return CanaryKey(keys.account(), keys.canary_sip_key());
  }
  // A key for tests and studies from a raw SipHash key (no derivation).
  static CanaryKey FromSipKey(uint64_t account, watermark::SipKey key) {
    return CanaryKey(account, key);
  }

  ~CanaryKey();
  CanaryKey(const CanaryKey&) = default;
  CanaryKey& operator=(const CanaryKey&) = default;

  uint64_t account() const { return account_; }
  // The member index, uniform on [0, set_size), for the set and context.
  uint32_t Choice(uint32_t set, uint32_t set_size, uint64_t context) const;
  // A keyed uniform in [0, 1) for the set and context, independent of Choice (decides whether a
  // multi-token member's continuation is forced).
  double Uniform(uint32_t set, uint64_t context) const;

 private:
  CanaryKey(uint64_t account, watermark::SipKey key) : account_(account), key_(key) {}
  uint64_t account_ = 0;
  watermark::SipKey key_;
};

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_CANARY_KEY_H_
