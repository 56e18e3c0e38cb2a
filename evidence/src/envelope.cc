#include "tracemark/evidence/envelope.h"

#include <sodium.h>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/status_macros.h"
#include "tracemark/watermark/digest.h"

namespace tracemark::evidence {
namespace {

using nlohmann::json;

std::string Hex(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.pop_back();
  return out;
}

absl::StatusOr<std::string> FromHex(std::string_view hex, size_t bytes) {
  std::string out(bytes, '\0');
  size_t len = 0;
  if (hex.size() != 2 * bytes ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0 ||
      len != bytes) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", 2 * bytes, " hex digits"));
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  const size_t n = sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(n, '\0');
  sodium_bin2base64(out.data(), n, reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(n - 1);  // the terminating NUL
  return out;
}

absl::StatusOr<std::string> FromBase64(std::string_view b64) {
  std::string out(b64.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), b64.data(),
                        b64.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return absl::InvalidArgumentError("invalid base64");
  }
  out.resize(len);
  return out;
}

std::string KeyIdOf(std::string_view public_key) {
  return watermark::Sha256Hex(public_key).substr(0, 16);
}

}  // namespace

std::string PreAuthEncoding(std::string_view payload_type, std::string_view payload) {
  return absl::StrCat("DSSEv1 ", payload_type.size(), " ",
                      absl::string_view(payload_type.data(), payload_type.size()), " ",
                      payload.size(), " ", absl::string_view(payload.data(), payload.size()));
}

absl::StatusOr<EnvelopeSigner> EnvelopeSigner::FromSeed(const watermark::Key& seed) {
  if (sodium_init() < 0) return absl::InternalError("libsodium could not be initialised");
  const watermark::SecretBytes& s = seed.secret();
  if (s.size() != crypto_sign_SEEDBYTES) {
    return absl::InvalidArgumentError("an Ed25519 seed is 32 bytes");
  }
  TRACEMARK_ASSIGN_OR_RETURN(watermark::SecretBytes secret,
                             watermark::SecretBytes::Allocate(crypto_sign_SECRETKEYBYTES));
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pk.data()), secret.mutable_data(),
                           s.data());
  return EnvelopeSigner(std::move(secret), std::move(pk));
}

std::string EnvelopeSigner::public_key_hex() const { return Hex(public_key_); }

std::string EnvelopeSigner::key_id() const { return KeyIdOf(public_key_); }

absl::StatusOr<std::string> EnvelopeSigner::Sign(std::string_view payload_type,
                                                 std::string_view payload) const {
  const std::string pae = PreAuthEncoding(payload_type, payload);
  std::string sig(crypto_sign_BYTES, '\0');
  if (crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                           reinterpret_cast<const unsigned char*>(pae.data()), pae.size(),
                           secret_.data()) != 0) {
    return absl::InternalError("signing failed");
  }
  const json envelope = {
      {"payloadType", std::string(payload_type)},
      {"payload", Base64(payload)},
      {"signatures", json::array({{{"keyid", key_id()}, {"sig", Base64(sig)}}})}};
  return envelope.dump(2) + "\n";
}

absl::StatusOr<std::string> KeyIdOfPublicKey(std::string_view public_key_hex) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string pk, FromHex(public_key_hex, crypto_sign_PUBLICKEYBYTES));
  return KeyIdOf(pk);
}

absl::StatusOr<VerifiedEnvelope> VerifyEnvelope(std::string_view envelope_json,
                                                std::string_view public_key_hex) {
  if (sodium_init() < 0) return absl::InternalError("libsodium could not be initialised");
  auto pk = FromHex(public_key_hex, crypto_sign_PUBLICKEYBYTES);
  if (!pk.ok()) return absl::InvalidArgumentError("the public key must be 64 hex digits");
  const json e = json::parse(envelope_json, nullptr, /*allow_exceptions=*/false);
  if (e.is_discarded() || !e.is_object() || !e.contains("payloadType") ||
      !e["payloadType"].is_string() || !e.contains("payload") || !e["payload"].is_string() ||
      !e.contains("signatures") || !e["signatures"].is_array()) {
    return absl::InvalidArgumentError("not a DSSE envelope");
  }
  VerifiedEnvelope v;
  v.payload_type = e["payloadType"].get<std::string>();
  TRACEMARK_ASSIGN_OR_RETURN(v.payload, FromBase64(e["payload"].get<std::string>()));
  const std::string pae = PreAuthEncoding(v.payload_type, v.payload);
  for (const json& s : e["signatures"]) {
    if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) continue;
    auto sig = FromBase64(s["sig"].get<std::string>());
    if (!sig.ok() || sig->size() != crypto_sign_BYTES) continue;
    if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                    reinterpret_cast<const unsigned char*>(pae.data()), pae.size(),
                                    reinterpret_cast<const unsigned char*>(pk->data())) == 0) {
      v.key_id = KeyIdOf(*pk);
      return v;
    }
  }
  return absl::PermissionDeniedError("signature verification failed");
}

}  // namespace tracemark::evidence
