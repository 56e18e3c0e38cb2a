#include "tracemark/watermark/secret.h"

#include <sodium.h>

#include <utility>

#include "absl/status/status.h"

namespace tracemark::watermark {
namespace {

absl::Status EnsureSodium() {
  static const int rc = sodium_init();
  if (rc < 0) return absl::InternalError("libsodium could not be initialised");
  return absl::OkStatus();
}

}  // namespace

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);  // wipes before unmapping
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

absl::StatusOr<SecretBytes> SecretBytes::Allocate(size_t size) {
  if (absl::Status s = EnsureSodium(); !s.ok()) return s;
  SecretBytes out;
  if (size == 0) return out;
  void* p = sodium_malloc(size);
  if (p == nullptr) return absl::ResourceExhaustedError("secure memory allocation failed");
  sodium_memzero(p, size);
  out.data_ = static_cast<uint8_t*>(p);
  out.size_ = size;
  return out;
}

absl::StatusOr<SecretBytes> SecretBytes::Random(size_t size) {
  absl::StatusOr<SecretBytes> out = Allocate(size);
  if (out.ok() && size > 0) randombytes_buf(out->mutable_data(), size);
  return out;
}

absl::StatusOr<SecretBytes> SecretBytes::CopyFrom(absl::Span<const uint8_t> bytes) {
  absl::StatusOr<SecretBytes> out = Allocate(bytes.size());
  if (out.ok() && !bytes.empty()) std::copy(bytes.begin(), bytes.end(), out->mutable_data());
  return out;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

void Wipe(void* p, size_t size) {
  if (p != nullptr && size > 0) sodium_memzero(p, size);
}

}  // namespace tracemark::watermark
