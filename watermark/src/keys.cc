#include "tracemark/watermark/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::watermark {
namespace {

constexpr absl::string_view kVersionLabel = "tracemark/v1";
constexpr absl::string_view kHkdfSalt = "tracemark/v1/hkdf-salt";

void AppendLengthPrefixed(std::vector<uint8_t>* out, absl::string_view s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(n >> shift));
  out->insert(out->end(), s.begin(), s.end());
}

void AppendBigEndian64(std::vector<uint8_t>* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}

// SHA-256(LP(tag) || key).
std::array<uint8_t, 32> TaggedHash(absl::string_view tag, const SecretBytes& key) {
  std::vector<uint8_t> prefix;
  AppendLengthPrefixed(&prefix, tag);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, prefix.data(), prefix.size());
  crypto_hash_sha256_update(&st, key.data(), key.size());
  std::array<uint8_t, 32> digest;
  crypto_hash_sha256_final(&st, digest.data());
  Wipe(&st, sizeof(st));
  return digest;
}

std::string Hex(const uint8_t* p, size_t n) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(p), n));
}

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  const int e = errno;
  std::string msg = absl::StrCat(what, " '", path, "': ", std::strerror(e));
  if (e == ENOENT) return absl::NotFoundError(msg);
  if (e == EEXIST) return absl::AlreadyExistsError(msg);
  if (e == EACCES || e == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

}  // namespace

absl::Status HkdfSha256(absl::Span<const uint8_t> salt, absl::Span<const uint8_t> ikm,
                        absl::Span<const uint8_t> info, absl::Span<uint8_t> out) {
  if (out.size() > 255 * 32) return absl::InvalidArgumentError("HKDF output too long");
  if (sodium_init() < 0) return absl::InternalError("libsodium could not be initialised");
  // Extract: PRK = HMAC(salt, IKM). RFC 5869 uses a zero salt of hash length when none is given.
  uint8_t zero_salt[32] = {0};
  const uint8_t* salt_p = salt.empty() ? zero_salt : salt.data();
  const size_t salt_n = salt.empty() ? sizeof(zero_salt) : salt.size();
  uint8_t prk[32];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, salt_p, salt_n);
  crypto_auth_hmacsha256_update(&st, ikm.data(), ikm.size());
  crypto_auth_hmacsha256_final(&st, prk);
  // Expand: T(i) = HMAC(PRK, T(i-1) || info || i).
  uint8_t t[32];
  size_t done = 0;
  for (uint8_t i = 1; done < out.size(); ++i) {
    crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
    if (i > 1) crypto_auth_hmacsha256_update(&st, t, sizeof(t));
    crypto_auth_hmacsha256_update(&st, info.data(), info.size());
    crypto_auth_hmacsha256_update(&st, &i, 1);
    crypto_auth_hmacsha256_final(&st, t);
    const size_t n = std::min(sizeof(t), out.size() - done);
    std::memcpy(out.data() + done, t, n);
    done += n;
  }
  Wipe(prk, sizeof(prk));
  Wipe(t, sizeof(t));
  Wipe(&st, sizeof(st));
  return absl::OkStatus();
}

absl::StatusOr<Key> Key::FromBytes(absl::Span<const uint8_t> bytes) {
  if (bytes.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("a key is ", kKeySize, " bytes, got ", bytes.size()));
  }
  TRACEMARK_ASSIGN_OR_RETURN(SecretBytes s, SecretBytes::CopyFrom(bytes));
  return Key(std::move(s));
}

absl::StatusOr<Key> Key::Generate() {
  TRACEMARK_ASSIGN_OR_RETURN(SecretBytes s, SecretBytes::Random(kKeySize));
  return Key(std::move(s));
}

absl::StatusOr<Key> Key::Derive(absl::string_view purpose, uint64_t index) const {
  std::vector<uint8_t> info;
  AppendLengthPrefixed(&info, kVersionLabel);
  AppendLengthPrefixed(&info, purpose);
  AppendBigEndian64(&info, index);
  TRACEMARK_ASSIGN_OR_RETURN(SecretBytes out, SecretBytes::Allocate(kKeySize));
  const auto* salt = reinterpret_cast<const uint8_t*>(kHkdfSalt.data());
  TRACEMARK_RETURN_IF_ERROR(
      HkdfSha256({salt, kHkdfSalt.size()}, bytes_.span(), info, {out.mutable_data(), out.size()}));
  return Key(std::move(out));
}

std::string Key::Id() const {
  const auto d = TaggedHash("tracemark/v1/key-id", bytes_);
  return Hex(d.data(), 8);
}

std::string Key::Commitment() const {
  const auto d = TaggedHash("tracemark/v1/commitment", bytes_);
  return Hex(d.data(), d.size());
}

absl::StatusOr<Key> DeriveEpochKey(const Key& master, uint32_t epoch) {
  return master.Derive("epoch", epoch);
}

absl::StatusOr<Key> DeriveAccountKey(const Key& epoch_key, uint64_t account) {
  return epoch_key.Derive("account", account);
}

absl::StatusOr<std::string> WriteNewMasterKeyFile(const std::string& path) {
  TRACEMARK_ASSIGN_OR_RETURN(Key key, Key::Generate());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat("'", path, "' already exists; refusing to overwrite a key file"));
    }
    return ErrnoStatus("cannot create key file", path);
  }
  size_t done = 0;
  while (done < kKeySize) {
    const ssize_t n = ::write(fd, key.secret().data() + done, kKeySize - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status s = ErrnoStatus("cannot write key file", path);
      ::close(fd);
      ::unlink(path.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    absl::Status s = ErrnoStatus("cannot flush key file", path);
    ::unlink(path.c_str());
    return s;
  }
  return key.Id();
}

absl::StatusOr<Key> ReadMasterKeyFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open key file", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status s = ErrnoStatus("cannot stat key file", path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("key file '", path, "' is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "key file '", path, "' is readable by group or others; run: chmod 600 ", path));
  }
  if (st.st_size != static_cast<off_t>(kKeySize)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("key file '", path, "' must hold exactly ",
                                                   kKeySize, " bytes, it holds ", st.st_size));
  }
  TRACEMARK_ASSIGN_OR_RETURN(SecretBytes buf, SecretBytes::Allocate(kKeySize));
  size_t done = 0;
  while (done < kKeySize) {
    const ssize_t n = ::read(fd, buf.mutable_data() + done, kKeySize - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return absl::DataLossError(absl::StrCat("key file '", path, "' could not be read whole"));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Key::FromBytes(buf.span());
}

absl::StatusOr<Key> ReadMasterKeyFromEnv(const char* variable) {
  const char* value = std::getenv(variable);
  if (value == nullptr) {
    return absl::NotFoundError(absl::StrCat("environment variable ", variable, " is not set"));
  }
  const size_t len = std::strlen(value);
  if (len != 2 * kKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("environment variable ", variable, " must hold ",
                                                   2 * kKeySize, " hex digits"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(SecretBytes buf, SecretBytes::Allocate(kKeySize));
  size_t bin_len = 0;
  if (sodium_hex2bin(buf.mutable_data(), kKeySize, value, len, nullptr, &bin_len, nullptr) != 0 ||
      bin_len != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", variable, " is not valid hex"));
  }
  return Key::FromBytes(buf.span());
}

}  // namespace tracemark::watermark
