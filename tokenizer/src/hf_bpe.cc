#include "hf_bpe.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace tracemark::tokenizer::internal {
namespace {

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

inline MergeRule Lookup(const MergeMap& merges, int32_t left, int32_t right) {
  auto it = merges.find(PairKey(left, right));
  return it == merges.end() ? MergeRule{kNoRank, -1} : it->second;
}

}  // namespace

void MergeSymbols(const MergeMap& merges, std::vector<int32_t>* symbols) {
  if (symbols->size() >= kHfHeapMergeThreshold) {
    MergeSymbolsHeap(merges, symbols);
  } else {
    MergeSymbolsLinear(merges, symbols);
  }
}

void MergeSymbolsLinear(const MergeMap& merges, std::vector<int32_t>* symbols) {
  std::vector<int32_t>& s = *symbols;
  if (s.size() < 2) return;
  // rules[i] merges s[i] with s[i + 1].
  absl::InlinedVector<MergeRule, kHfHeapMergeThreshold> rules;
  rules.reserve(s.size() - 1);
  for (size_t i = 0; i + 1 < s.size(); ++i) rules.push_back(Lookup(merges, s[i], s[i + 1]));
  while (!rules.empty()) {
    int32_t min_rank = kNoRank;
    size_t min_i = 0;
    for (size_t i = 0; i < rules.size(); ++i) {
      if (rules[i].rank < min_rank) {
        min_rank = rules[i].rank;
        min_i = i;
      }
    }
    if (min_rank == kNoRank) break;
    s[min_i] = rules[min_i].new_id;
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(min_i) + 1);
    rules.erase(rules.begin() + static_cast<std::ptrdiff_t>(min_i));
    if (min_i < rules.size()) rules[min_i] = Lookup(merges, s[min_i], s[min_i + 1]);
    if (min_i > 0) rules[min_i - 1] = Lookup(merges, s[min_i - 1], s[min_i]);
  }
}

void MergeSymbolsHeap(const MergeMap& merges, std::vector<int32_t>* symbols) {
  std::vector<int32_t>& s = *symbols;
  const size_t n = s.size();
  if (n < 2) return;
  // One node per surviving symbol, indexed by its original position; next == n marks the last.
  struct Node {
    uint32_t prev;
    uint32_t next;
    bool alive;
  };
  const auto end = static_cast<uint32_t>(n);
  std::vector<Node> nodes(n);
  for (uint32_t i = 0; i < end; ++i) nodes[i] = {i == 0 ? end : i - 1, i + 1, true};
  // Entries pack (rank, position): the smallest is the lowest rank, leftmost on ties. Each rank
  // belongs to exactly one pair, so an entry is current iff its node is alive, has a successor
  // and the pair they form now still has that rank.
  std::vector<uint64_t> heap;
  heap.reserve(n);
  auto pack = [](int32_t rank, uint32_t pos) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(rank)) << 32) | pos;
  };
  auto rank_at = [&](uint32_t i) {
    const uint32_t j = nodes[i].next;
    return j == end ? kNoRank : Lookup(merges, s[i], s[j]).rank;
  };
  for (uint32_t i = 0; i + 1 < end; ++i) {
    const int32_t rank = rank_at(i);
    if (rank != kNoRank) heap.push_back(pack(rank, i));
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  auto push = [&](uint32_t i) {
    const int32_t rank = rank_at(i);
    if (rank == kNoRank) return;
    heap.push_back(pack(rank, i));
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const uint64_t top = heap.back();
    heap.pop_back();
    const auto i = static_cast<uint32_t>(top & 0xFFFFFFFFu);
    const auto rank = static_cast<int32_t>(top >> 32);
    if (!nodes[i].alive || nodes[i].next == end) continue;
    const uint32_t j = nodes[i].next;
    const MergeRule rule = Lookup(merges, s[i], s[j]);
    if (rule.rank != rank) continue;  // Stale entry.
    s[i] = rule.new_id;
    nodes[j].alive = false;
    nodes[i].next = nodes[j].next;
    if (nodes[i].next != end) nodes[nodes[i].next].prev = i;
    push(i);
    if (nodes[i].prev != end) push(nodes[i].prev);
  }
  size_t out = 0;
  for (uint32_t i = 0; i != end; i = nodes[i].next) s[out++] = s[i];
  s.resize(out);
}

}  // namespace tracemark::tokenizer::internal
