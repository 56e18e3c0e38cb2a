#include "tracemark/canary/canary_key.h"

#include <sodium.h>

#include "tracemark/base/status_macros.h"

namespace tracemark::canary {

absl::StatusOr<CanaryKey> CanaryKey::Derive(const watermark::Key& epoch_key, uint64_t account) {
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Key account_key,
                             watermark::DeriveAccountKey(epoch_key, account));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Key canary, account_key.Derive("canary", 0));
  return CanaryKey(account, watermark::SipKeyFromBytes(canary.secret().data()));
}

CanaryKey::~CanaryKey() { sodium_memzero(&key_, sizeof(key_)); }

uint32_t CanaryKey::Choice(uint32_t set, uint32_t set_size, uint64_t context) const {
  // Rejection sampling: accept x below the largest multiple of set_size that fits in 64 bits, so
  // that x % set_size is exactly uniform; a rejection (probability < set_size / 2^64) moves on to
  // the next counter value.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % set_size + 1) % set_size;
  for (uint32_t counter = 0;; ++counter) {
    const uint32_t words[4] = {set, static_cast<uint32_t>(context),
                               static_cast<uint32_t>(context >> 32), counter};
    const uint64_t x = watermark::SipHashWords(key_, words, 4);
    if (x <= limit) return static_cast<uint32_t>(x % set_size);
  }
}

double CanaryKey::Uniform(uint32_t set, uint64_t context) const {
  // Counter values used by Choice stay far below this one.
  const uint32_t words[4] = {set, static_cast<uint32_t>(context),
                             static_cast<uint32_t>(context >> 32), 0xFFFFFFFFu};
  return static_cast<double>(watermark::SipHashWords(key_, words, 4) >> 11) * 0x1.0p-53;
}

}  // namespace tracemark::canary
