// Keys: the provider's master secret and the keys derived from it.
//
// A 32-byte master secret derives one key per epoch, and each epoch key derives one key per
// account, with HKDF-SHA256 (RFC 5869) over a length-prefixed context (docs/keys.md pins the
// construction and its known answers). Deriving an account key reveals nothing about the master or
// any other account, so one account's key can be disclosed to a court expert alone. Keys live in
// libsodium secure memory and are wiped when released; they are never logged. Each key has a
// public id (16 hex digits) and a SHA-256 commitment (64 hex digits): reports carry only these.
//
//   absl::StatusOr<Key> master = ReadMasterKeyFile("tracemark.key");
//   absl::StatusOr<Key> epoch = DeriveEpochKey(*master, 0);
//   absl::StatusOr<Key> account = DeriveAccountKey(*epoch, 42);
//   std::string id = account->Id();
//
// Key is move-only; const methods are thread-safe.
#ifndef TRACEMARK_WATERMARK_KEYS_H_
#define TRACEMARK_WATERMARK_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tracemark/watermark/secret.h"

namespace tracemark::watermark {

inline constexpr size_t kKeySize = 32;

class Key {
 public:
  // A key from exactly 32 bytes (InvalidArgument otherwise). The caller wipes its own copy.
  static absl::StatusOr<Key> FromBytes(absl::Span<const uint8_t> bytes);
  // A fresh random key from the operating system's CSPRNG.
  static absl::StatusOr<Key> Generate();

  // The child key HKDF-SHA256(this, info = LP("tracemark/v1") || LP(purpose) || BE64(index)), where
  // LP(x) is x preceded by its length as a big-endian 32-bit integer.
  absl::StatusOr<Key> Derive(absl::string_view purpose, uint64_t index) const;

  // Public identifier: the first 8 bytes of SHA-256(LP("tracemark/v1/key-id") || key), in hex.
  std::string Id() const;
  // Commitment: SHA-256(LP("tracemark/v1/commitment") || key), in hex. Binding and, for a uniformly
  // random 256-bit key, hiding.
  std::string Commitment() const;

  // Raw bytes, for the library's own PRF set-up. Never log or serialise them.
  const SecretBytes& secret() const { return bytes_; }

 private:
  explicit Key(SecretBytes bytes) : bytes_(std::move(bytes)) {}
  SecretBytes bytes_;
};

// Epoch key: master.Derive("epoch", epoch).
absl::StatusOr<Key> DeriveEpochKey(const Key& master, uint32_t epoch);
// Account key: epoch_key.Derive("account", account).
absl::StatusOr<Key> DeriveAccountKey(const Key& epoch_key, uint64_t account);

// Writes a fresh master secret (32 raw bytes) to `path` with mode 0600. Refuses to overwrite an
// existing file (AlreadyExists). Returns the new key's id.
absl::StatusOr<std::string> WriteNewMasterKeyFile(const std::string& path);

// Reads a master secret file: exactly 32 bytes, readable by its owner only (a file readable by
// group or others is refused, as ssh refuses such private keys).
absl::StatusOr<Key> ReadMasterKeyFile(const std::string& path);

// Reads a master secret from an environment variable holding 64 hex digits.
absl::StatusOr<Key> ReadMasterKeyFromEnv(const char* variable);

// HKDF-SHA256 (RFC 5869) into `out` (at most 255 * 32 bytes). Exposed for the RFC test vectors.
absl::Status HkdfSha256(absl::Span<const uint8_t> salt, absl::Span<const uint8_t> ikm,
                        absl::Span<const uint8_t> info, absl::Span<uint8_t> out);

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_KEYS_H_
