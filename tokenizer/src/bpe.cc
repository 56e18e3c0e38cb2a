#include "bpe.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace tracemark::tokenizer::internal {
namespace {

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

inline int32_t Lookup(const RankMap& ranks, std::string_view bytes) {
  auto it = ranks.find(bytes);
  return it == ranks.end() ? kNoRank : it->second;
}

}  // namespace

void BytePairEncode(std::string_view piece, const RankMap& ranks, std::vector<int32_t>* out) {
  if (piece.size() >= kHeapMergeThreshold) {
    BytePairEncodeHeap(piece, ranks, out);
  } else {
    BytePairEncodeLinear(piece, ranks, out);
  }
}

void BytePairEncodeLinear(std::string_view piece, const RankMap& ranks, std::vector<int32_t>* out) {
  const size_t n = piece.size();
  if (n <= 1) {
    if (n == 1) out->push_back(Lookup(ranks, piece));
    return;
  }
  // parts[i].rank is the rank of the bytes from parts[i].start to parts[i + 2].start, i.e. of
  // merging part i with part i + 1.
  struct Part {
    size_t start;
    int32_t rank;
  };
  absl::InlinedVector<Part, kHeapMergeThreshold + 1> parts;
  parts.reserve(n + 1);
  for (size_t i = 0; i + 1 < n; ++i) parts.push_back({i, Lookup(ranks, piece.substr(i, 2))});
  parts.push_back({n - 1, kNoRank});
  parts.push_back({n, kNoRank});

  auto rank_after_merge = [&](size_t i) {
    if (i + 3 < parts.size()) {
      return Lookup(ranks, piece.substr(parts[i].start, parts[i + 3].start - parts[i].start));
    }
    return kNoRank;
  };
  while (true) {
    int32_t min_rank = kNoRank;
    size_t min_i = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (parts[i].rank < min_rank) {
        min_rank = parts[i].rank;
        min_i = i;
      }
    }
    if (min_rank == kNoRank) break;
    if (min_i > 0) parts[min_i - 1].rank = rank_after_merge(min_i - 1);
    parts[min_i].rank = rank_after_merge(min_i);
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(min_i) + 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    out->push_back(
        Lookup(ranks, piece.substr(parts[i].start, parts[i + 1].start - parts[i].start)));
  }
}

void BytePairEncodeHeap(std::string_view piece, const RankMap& ranks, std::vector<int32_t>* out) {
  const size_t n = piece.size();
  if (n <= 1) {
    if (n == 1) out->push_back(Lookup(ranks, piece));
    return;
  }
  // One node per surviving part, indexed by its start byte, in a doubly-linked list. rank is the
  // rank of merging the node with its successor. next == n marks the last node.
  struct Node {
    uint32_t prev;
    uint32_t next;
    int32_t rank;
    bool alive;
  };
  const auto end = static_cast<uint32_t>(n);
  std::vector<Node> nodes(n);
  // Heap entries pack (rank, start) so that the smallest is the lowest rank, leftmost on ties,
  // which is exactly the pair the linear algorithm picks.
  std::vector<uint64_t> heap;
  heap.reserve(n);
  auto pack = [](int32_t rank, uint32_t start) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(rank)) << 32) | start;
  };
  auto pair_rank = [&](uint32_t i) {
    const uint32_t j = nodes[i].next;
    if (j == end) return kNoRank;
    const uint32_t k = nodes[j].next;
    return Lookup(ranks, piece.substr(i, k - i));
  };
  for (uint32_t i = 0; i < end; ++i) {
    nodes[i] = {i == 0 ? end : i - 1, i + 1, kNoRank, true};
  }
  for (uint32_t i = 0; i < end; ++i) {
    nodes[i].rank = pair_rank(i);
    if (nodes[i].rank != kNoRank) heap.push_back(pack(nodes[i].rank, i));
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  auto push = [&](uint32_t i) {
    if (nodes[i].rank == kNoRank) return;
    heap.push_back(pack(nodes[i].rank, i));
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const uint64_t top = heap.back();
    heap.pop_back();
    const auto i = static_cast<uint32_t>(top & 0xFFFFFFFFu);
    const auto rank = static_cast<int32_t>(top >> 32);
    if (!nodes[i].alive || nodes[i].rank != rank) continue;  // Stale entry.
    const uint32_t j = nodes[i].next;
    nodes[j].alive = false;
    nodes[i].next = nodes[j].next;
    if (nodes[i].next != end) nodes[nodes[i].next].prev = i;
    nodes[i].rank = pair_rank(i);
    push(i);
    const uint32_t p = nodes[i].prev;
    if (p != end) {
      nodes[p].rank = pair_rank(p);
      push(p);
    }
  }
  for (uint32_t i = 0; i != end; i = nodes[i].next) {
    out->push_back(Lookup(ranks, piece.substr(i, nodes[i].next - i)));
  }
}

}  // namespace tracemark::tokenizer::internal
