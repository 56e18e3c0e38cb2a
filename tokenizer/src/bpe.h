// Internal: the byte-pair merge at the heart of tiktoken's encoder.
//
// Not part of the public API; exposed in a header so that tests can check the two merge
// strategies against each other.
#ifndef TRACEMARK_TOKENIZER_SRC_BPE_H_
#define TRACEMARK_TOKENIZER_SRC_BPE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tracemark::tokenizer::internal {

// Byte string -> rank. Keys point into storage owned elsewhere.
using RankMap = absl::flat_hash_map<std::string_view, int32_t>;

// Pieces at least this long are merged with the heap strategy.
inline constexpr size_t kHeapMergeThreshold = 64;

// Appends to `out` the ranks of the tokens that tiktoken's _byte_pair_merge produces for
// `piece`: repeatedly join the adjacent pair of parts whose concatenated bytes have the lowest
// rank (the leftmost such pair on ties) until no adjacent pair is a token. Requires a non-empty
// piece and every single byte present in `ranks`. Dispatches on size to one of the two below,
// which produce identical output.
void BytePairEncode(std::string_view piece, const RankMap& ranks, std::vector<int32_t>* out);

// tiktoken's algorithm as written: O(n^2) in the piece length, fastest for short pieces.
void BytePairEncodeLinear(std::string_view piece, const RankMap& ranks, std::vector<int32_t>* out);

// The same merges driven by a min-heap of (rank, position): O(n log n), for long pieces.
void BytePairEncodeHeap(std::string_view piece, const RankMap& ranks, std::vector<int32_t>* out);

}  // namespace tracemark::tokenizer::internal

#endif  // TRACEMARK_TOKENIZER_SRC_BPE_H_
