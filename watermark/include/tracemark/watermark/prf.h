// The keyed pseudo-random functions every watermark decision is made from.
//
// Two levels, as DESIGN.md section 3 fixes them:
//  - ContextHash: SipHash-2-4 (a PRF under a 128-bit key) of the last h token ids, once per
//    position;
//  - Mix: a cheap 64-bit bijective mixer of (seed, token id), once per candidate token. For a
//    uniformly random seed its output is exactly uniform, so a single token's membership is exact;
//    tokens never need a vocabulary permutation.
// Everything here is integer arithmetic with fixed results on every platform and compiler (and in
// CUDA, where TRACEMARK_HD marks the functions host-and-device), so a decision made at decode time
// is reproduced bit for bit by the verifier years later. Floating-point values are derived from
// 64-bit integers with explicit conversions only.
//
//   SipKey k = SipKeyFromBytes(key_bytes);
//   uint64_t seed = ContextHash(k, context_ids);
//   bool green = Mix(seed, token) < GreenThreshold(0.25);
//
// Thread-safe (pure functions).
#ifndef TRACEMARK_WATERMARK_PRF_H_
#define TRACEMARK_WATERMARK_PRF_H_

#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#define TRACEMARK_HD __host__ __device__ __forceinline__
#else
#define TRACEMARK_HD inline
#endif

namespace tracemark::watermark {

struct SipKey {
  uint64_t k0 = 0, k1 = 0;
};

// The first 16 bytes of `bytes`, little-endian, as a SipHash key.
TRACEMARK_HD SipKey SipKeyFromBytes(const uint8_t* bytes) {
  SipKey k;
  for (int i = 7; i >= 0; --i) {
    k.k0 = (k.k0 << 8) | bytes[i];
    k.k1 = (k.k1 << 8) | bytes[8 + i];
  }
  return k;
}

namespace prf_internal {
TRACEMARK_HD uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
TRACEMARK_HD void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}
}  // namespace prf_internal

// SipHash-2-4 of a message made of `n` 32-bit words, each taken little-endian (the same bytes as
// the standard SipHash-2-4 of the 4n-byte little-endian encoding; tested against libsodium).
TRACEMARK_HD uint64_t SipHashWords(SipKey key, const uint32_t* words, size_t n) {
  using prf_internal::SipRound;
  uint64_t v0 = 0x736f6d6570736575ull ^ key.k0;
  uint64_t v1 = 0x646f72616e646f6dull ^ key.k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ key.k0;
  uint64_t v3 = 0x7465646279746573ull ^ key.k1;
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const uint64_t m =
        static_cast<uint64_t>(words[i]) | (static_cast<uint64_t>(words[i + 1]) << 32);
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(4 * n) << 56;
  if (i < n) b |= words[i];
  v3 ^= b;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

// PRF of a context window of token ids (only their low 32 bits; ids are non-negative int32).
TRACEMARK_HD uint64_t ContextHash(SipKey key, const int32_t* ids, size_t n) {
  return SipHashWords(key, reinterpret_cast<const uint32_t*>(ids), n);
}

// PRF of one 64-bit integer (slot numbers, account ids, counters).
TRACEMARK_HD uint64_t SipHashU64(SipKey key, uint64_t x) {
  const uint32_t w[2] = {static_cast<uint32_t>(x), static_cast<uint32_t>(x >> 32)};
  return SipHashWords(key, w, 2);
}

// Bijective 64-bit mixer of (seed, x): an xor-multiply-xorshift finaliser (three rounds) of
// seed ^ (x * golden ratio). For uniformly distributed seed the output is exactly uniform.
TRACEMARK_HD uint64_t Mix(uint64_t seed, uint64_t x) {
  uint64_t z = seed ^ (x * 0x9E3779B97F4A7C15ull);
  z ^= z >> 32;
  z *= 0xD6E8FEB86659FD93ull;
  z ^= z >> 32;
  z *= 0xD6E8FEB86659FD93ull;
  z ^= z >> 32;
  return z;
}

// floor(x * n / 2^64): maps a uniform 64-bit value to a uniform index in [0, n) (bias < n / 2^64).
TRACEMARK_HD uint32_t MulHiIndex(uint64_t x, uint32_t n) {
#ifdef __CUDA_ARCH__
  return static_cast<uint32_t>(__umul64hi(x, n));  // the same high 64 bits of the product
#else
  return static_cast<uint32_t>((static_cast<unsigned __int128>(x) * n) >> 64);
#endif
}

// A double strictly inside (0, 1): (top 52 bits + 1/2) / 2^52, exactly representable.
TRACEMARK_HD double UnitOpen(uint64_t x) {
  return (static_cast<double>(x >> 12) + 0.5) * 0x1.0p-52;
}
// 1 - UnitOpen(x), exactly, without cancellation.
TRACEMARK_HD double UnitOpenComplement(uint64_t x) {
  return (static_cast<double>((1ull << 52) - (x >> 12)) - 0.5) * 0x1.0p-52;
}

// round(fraction * 2^64), saturated: a token is "in" when Mix(...) < threshold, with probability
// exactly threshold / 2^64 (ThresholdProbability) for a uniform seed.
uint64_t ProbabilityThreshold(double fraction);
double ThresholdProbability(uint64_t threshold);

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_PRF_H_
