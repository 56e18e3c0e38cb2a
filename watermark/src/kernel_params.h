// Internal: the per-position decisions of the bias layers (KGW provider, account payload and
// fingerprint) as plain data and __host__ __device__ functions, so that the CPU path (Layout,
// Watermarker, Detector) and the CUDA batch kernel (cuda/) compile the same source. Nothing here
// allocates or uses the standard library beyond <cstdint>: it must compile under nvcc for the
// device. KernelParams holds secret subkeys: it lives in Layout (zeroed with it) and in device
// memory owned by a CudaBatchWatermarker (zeroed on release).
#ifndef TRACEMARK_WATERMARK_SRC_KERNEL_PARAMS_H_
#define TRACEMARK_WATERMARK_SRC_KERNEL_PARAMS_H_

#include <cstdint>

#include "tracemark/watermark/layer.h"
#include "tracemark/watermark/prf.h"

namespace tracemark::watermark::internal {

struct Position {
  Layer layer = Layer::kNone;
  uint32_t slot = 0;         // payload or fingerprint slot
  uint64_t context_key = 0;  // keyed hash of the context: identifies it
  uint64_t seed = 0;         // provider seed (LeftHash schemes) or account colour seed
  uint64_t self_min = 0;     // min-SelfHash: min of the context tokens' keyed hashes
};

struct KernelParams {
  uint64_t layout_id = 0;  // Layout::id(): account keys carry it (not secret)
  SipKey channel_key, provider_key, account_key;
  uint64_t self_key = 0;
  uint64_t provider_threshold = 0;  // position is provider when channel hash < this
  uint64_t payload_threshold = 0;   // account position carries payload when Mix(...) < this
  uint64_t green_threshold = 0;
  uint32_t payload_colours = 4, payload_slots = 0, fingerprint_slots = 0;
  int32_t context_width = 0;  // h
  bool self_hash = false;
  bool all_provider = true;
  float kgw_delta = 0, account_delta = 0;  // the biases, as the float added to a logit
};

// What a position means: Layout::Locate.
TRACEMARK_HD Position LocateWith(const KernelParams& p, const int32_t* ctx) {
  const size_t h = static_cast<size_t>(p.context_width);
  Position pos;
  pos.context_key = ContextHash(p.channel_key, ctx, h);
  if (p.all_provider || pos.context_key < p.provider_threshold) {
    pos.layer = Layer::kProvider;
    if (p.self_hash) {
      uint64_t m = ~0ull;
      for (size_t i = 0; i < h; ++i) {
        const uint64_t x = Mix(p.self_key, static_cast<uint32_t>(ctx[i]));
        m = x < m ? x : m;
      }
      pos.self_min = m;
    } else {
      pos.seed = ContextHash(p.provider_key, ctx, h);
    }
    return pos;
  }
  const bool payload = Mix(pos.context_key, 1) < p.payload_threshold;
  pos.layer = payload ? Layer::kAccountPayload : Layer::kAccountFingerprint;
  pos.slot = MulHiIndex(Mix(pos.context_key, 2), payload ? p.payload_slots : p.fingerprint_slots);
  pos.seed = ContextHash(p.account_key, ctx, h);
  return pos;
}

// Provider layer: the per-token seed (differs from pos.seed only for min-SelfHash).
TRACEMARK_HD uint64_t ProviderSeedWith(const KernelParams& p, const Position& pos, int32_t token) {
  if (!p.self_hash) return pos.seed;
  const uint64_t own = Mix(p.self_key, static_cast<uint32_t>(token));
  return own < pos.self_min ? own : pos.self_min;
}

TRACEMARK_HD bool IsGreenWith(const KernelParams& p, uint64_t seed, int32_t token) {
  return Mix(seed, static_cast<uint32_t>(token)) < p.green_threshold;
}

// Account layer: colour of a token at an account position, in [0, colours).
TRACEMARK_HD uint32_t ColourOf(uint64_t seed, int32_t token, uint32_t colours) {
  return MulHiIndex(Mix(seed, static_cast<uint32_t>(token)), colours);
}

// One row's decision for a bias layer at one position: which tokens get `delta`.
struct RowBias {
  Position pos;
  bool apply = false;  // false: the row is left as it is (not one write)
  float delta = 0;
  uint32_t colour = 0;   // account layers: the preferred colour
  uint32_t colours = 2;  // account layers: the number of colours
};

// The row's decision for a KGW provider (bias schemes only). `payload` and `fingerprint` are the
// account's symbols (AccountKeys), or null for anonymous traffic (account positions untouched).
TRACEMARK_HD RowBias PlanBiasRow(const KernelParams& p, const int32_t* ctx, const uint8_t* payload,
                                 const uint8_t* fingerprint) {
  RowBias r;
  r.pos = LocateWith(p, ctx);
  switch (r.pos.layer) {
    case Layer::kProvider:
      r.apply = true;
      r.delta = p.kgw_delta;
      break;
    case Layer::kAccountPayload:
      if (payload == nullptr) break;
      r.apply = true;
      r.delta = p.account_delta;
      r.colour = payload[r.pos.slot];
      r.colours = p.payload_colours;
      break;
    case Layer::kAccountFingerprint:
      if (fingerprint == nullptr) break;
      r.apply = true;
      r.delta = p.account_delta;
      r.colour = fingerprint[r.pos.slot];
      r.colours = 2;
      break;
    case Layer::kNone:
      break;
  }
  return r;
}

// The logit of `token` after the row's bias: the same float operation as the CPU's AddBias
// (logit + delta * {0, 1}), so the results agree bit for bit.
TRACEMARK_HD float BiasedLogit(const KernelParams& p, const RowBias& r, int32_t token,
                               float logit) {
  bool listed;
  if (r.pos.layer == Layer::kProvider) {
    listed = IsGreenWith(p, ProviderSeedWith(p, r.pos, token), token);
  } else {
    listed = ColourOf(r.pos.seed, token, r.colours) == r.colour;
  }
  return logit + r.delta * static_cast<float>(listed);
}

}  // namespace tracemark::watermark::internal

#endif  // TRACEMARK_WATERMARK_SRC_KERNEL_PARAMS_H_
