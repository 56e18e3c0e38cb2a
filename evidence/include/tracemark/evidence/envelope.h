// Signed evidence: a DSSE envelope (github.com/secure-systems-lab/dsse, v1) with an Ed25519
// signature (libsodium). The signature covers the pre-authentication encoding
// PAE(type, payload) = "DSSEv1" SP len(type) SP type SP len(payload) SP payload, so neither the
// payload nor its type can be changed or swapped without failing verification.
//
//   TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed, watermark::ReadMasterKeyFile("signing.key"));
//   TRACEMARK_ASSIGN_OR_RETURN(EnvelopeSigner signer, EnvelopeSigner::FromSeed(seed));
//   TRACEMARK_ASSIGN_OR_RETURN(std::string envelope, signer.Sign(kReportPayloadType, report));
//   ...
//   TRACEMARK_ASSIGN_OR_RETURN(VerifiedEnvelope v, VerifyEnvelope(envelope, public_key_hex));
//
// The envelope is JSON: {"payloadType", "payload" (base64), "signatures": [{"keyid", "sig"
// (base64)}]}. A signing key is a 32-byte Ed25519 seed in a file like a master secret (mode 0600;
// `tracemark keygen` writes one); its public key (64 hex digits) is what a court expert is given.
// A failed check says only "signature verification failed".
//
// Thread-safe after construction.
#ifndef TRACEMARK_EVIDENCE_ENVELOPE_H_
#define TRACEMARK_EVIDENCE_ENVELOPE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/secret.h"

namespace tracemark::evidence {

inline constexpr char kReportPayloadType[] = "application/vnd.tracemark.report+json";

// DSSE v1 pre-authentication encoding.
std::string PreAuthEncoding(std::string_view payload_type, std::string_view payload);

class EnvelopeSigner {
 public:
  // The Ed25519 key pair of a 32-byte seed (the seed is copied into secure memory).
  static absl::StatusOr<EnvelopeSigner> FromSeed(const watermark::Key& seed);

  std::string public_key_hex() const;  // 64 hex digits
  std::string key_id() const;          // first 16 hex digits of SHA-256(public key)

  // The envelope of `payload`, as JSON text.
  absl::StatusOr<std::string> Sign(std::string_view payload_type, std::string_view payload) const;

 private:
  EnvelopeSigner(watermark::SecretBytes secret, std::string public_key)
      : secret_(std::move(secret)), public_key_(std::move(public_key)) {}
  watermark::SecretBytes secret_;  // libsodium's 64-byte secret key
  std::string public_key_;         // 32 bytes
};

struct VerifiedEnvelope {
  std::string payload_type;
  std::string payload;
  std::string key_id;  // of the signature that verified
};

// Checks that one of the envelope's signatures is valid for `public_key_hex` and returns the
// payload. InvalidArgument for a malformed envelope or key; PermissionDenied ("signature
// verification failed") when no signature verifies.
absl::StatusOr<VerifiedEnvelope> VerifyEnvelope(std::string_view envelope_json,
                                                std::string_view public_key_hex);

// The key id of a public key given in hex (InvalidArgument if it is not 64 hex digits).
absl::StatusOr<std::string> KeyIdOfPublicKey(std::string_view public_key_hex);

}  // namespace tracemark::evidence

#endif  // TRACEMARK_EVIDENCE_ENVELOPE_H_
