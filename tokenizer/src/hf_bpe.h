// Internal: the merge loop of Hugging Face's BPE model, on token ids.
//
// Not part of the public API; exposed in a header so that tests can check the two strategies
// against each other.
#ifndef TRACEMARK_TOKENIZER_SRC_HF_BPE_H_
#define TRACEMARK_TOKENIZER_SRC_HF_BPE_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tracemark::tokenizer::internal {

// One merge rule: joining the pair gives `new_id`; lower `rank` merges first.
struct MergeRule {
  int32_t rank;
  int32_t new_id;
};

// (left id, right id) packed as (left << 32) | right -> rule.
using MergeMap = absl::flat_hash_map<uint64_t, MergeRule>;

inline uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Words with at least this many symbols are merged with the heap strategy.
inline constexpr size_t kHfHeapMergeThreshold = 48;

// Rewrites `symbols` in place: repeatedly replaces the adjacent pair with the lowest merge rank
// (the leftmost such pair on ties) by its merged id until no adjacent pair has a rule. This is
// the order the library's priority queue produces. Dispatches on size to one of the two below,
// which give identical results.
void MergeSymbols(const MergeMap& merges, std::vector<int32_t>* symbols);

// Scans for the minimum on every step: O(n^2), fastest for short words.
void MergeSymbolsLinear(const MergeMap& merges, std::vector<int32_t>* symbols);

// A min-heap of (rank, position) over a linked list: O(n log n), for long words (Llama 2 has
// no pre-tokenizer, so a whole text is one word).
void MergeSymbolsHeap(const MergeMap& merges, std::vector<int32_t>* symbols);

}  // namespace tracemark::tokenizer::internal

#endif  // TRACEMARK_TOKENIZER_SRC_HF_BPE_H_
