// Secret bytes held in libsodium secure memory: guard pages, mlock'ed so they are never swapped,
// excluded from core dumps where the platform allows, and wiped when released.
//
//   absl::StatusOr<SecretBytes> s = SecretBytes::Random(32);
//   Use(s->data(), s->size());
//
// Move-only. Not thread-safe for mutation; concurrent const access is fine.
#ifndef TRACEMARK_WATERMARK_SECRET_H_
#define TRACEMARK_WATERMARK_SECRET_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tracemark::watermark {

class SecretBytes {
 public:
  SecretBytes() = default;
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // Zero-filled secure buffer of `size` bytes. ResourceExhausted when secure memory is unavailable.
  static absl::StatusOr<SecretBytes> Allocate(size_t size);
  // Fresh bytes from the operating system's CSPRNG.
  static absl::StatusOr<SecretBytes> Random(size_t size);
  // Copies `bytes` into secure memory (the caller wipes its own copy).
  static absl::StatusOr<SecretBytes> CopyFrom(absl::Span<const uint8_t> bytes);

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() { return data_; }
  size_t size() const { return size_; }
  absl::Span<const uint8_t> span() const { return {data_, size_}; }

  // Constant-time equality.
  bool Equals(const SecretBytes& other) const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Overwrites `size` bytes at `p` so that the compiler cannot elide it.
void Wipe(void* p, size_t size);

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_SECRET_H_
