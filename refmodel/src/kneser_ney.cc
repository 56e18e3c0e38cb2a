#include "tracemark/refmodel/kneser_ney.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "binary_io.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::refmodel {
namespace {

constexpr double kMinDiscount = 0.1;
constexpr uint32_t kNoNode = std::numeric_limits<uint32_t>::max();

// File format (all integers and floats little-endian):
//   char[8] magic "TMKNLM\0\0" | u32 version | u32 order | u32 vocab_size | u32 reserved (0)
//   u64 num_unigrams | u64 num_ngrams[n] for n = 2..order
//   f64 discounts[order][3] | f32 unigram[V]
//   for n = 1..order-1: u32 child_begin[M_n + 1], f32 backoff[M_n]     (M_1 = V)
//   for n = 2..order:   i32 words[M_n], f32 alpha[M_n]
//   u64 checksum of every byte before it (internal::Checksum64)
constexpr char kMagic[8] = {'T', 'M', 'K', 'N', 'L', 'M', '\0', '\0'};
constexpr uint32_t kFormatVersion = 1;

// Discount for an n-gram whose (raw or continuation) count is c.
inline double DiscountFor(const std::array<double, 3>& d, uint32_t c) {
  return c >= 3 ? d[2] : d[c - 1];
}

// Chen & Goodman's estimates; see the contract of Train() for the degenerate cases.
std::array<double, 3> EstimateDiscounts(const std::array<uint64_t, 4>& n) {
  const double n1 = static_cast<double>(n[0]);
  const double n2 = static_cast<double>(n[1]);
  const double y = (n1 + 2 * n2) > 0 ? n1 / (n1 + 2 * n2) : 0.0;
  std::array<double, 3> d;
  for (int k = 1; k <= 3; ++k) {
    const double nk = static_cast<double>(n[k - 1]);
    const double nk1 = static_cast<double>(n[k]);
    double dk = nk > 0 ? k - (k + 1) * y * nk1 / nk : k / 2.0;
    d[k - 1] = std::clamp(dk, kMinDiscount, static_cast<double>(k));
  }
  return d;
}

std::array<double, 3> DiscountsFromCounts(absl::Span<const uint32_t> counts) {
  std::array<uint64_t, 4> n = {0, 0, 0, 0};
  for (uint32_t c : counts) {
    if (c >= 1 && c <= 4) ++n[c - 1];
  }
  return EstimateDiscounts(n);
}

// Smoothing of one group of siblings (the children of one context): writes alpha for each
// child and returns gamma, or 1 if the group is empty (an unseen context backs off fully).
double SmoothGroup(absl::Span<const uint32_t> counts, const std::array<double, 3>& d,
                   float* alpha) {
  uint64_t total = 0;
  double mass = 0;
  for (uint32_t c : counts) {
    total += c;
    if (c > 0) mass += DiscountFor(d, c);
  }
  if (total == 0) {
    for (size_t i = 0; i < counts.size(); ++i) alpha[i] = 0.0f;
    return 1.0;
  }
  const double inv = 1.0 / static_cast<double>(total);
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint32_t c = counts[i];
    alpha[i] = c == 0 ? 0.0f : static_cast<float>(std::max(c - DiscountFor(d, c), 0.0) * inv);
  }
  return mass * inv;
}

// Checks Train's arguments; returns the number of tokens in the corpus.
absl::StatusOr<size_t> CountTrainingTokens(const std::vector<std::vector<int32_t>>& documents,
                                           int32_t vocab_size, int order) {
  if (order < KneserNeyModel::kMinOrder || order > KneserNeyModel::kMaxOrder) {
    return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel: order must be in [",
                                                   KneserNeyModel::kMinOrder, ", ",
                                                   KneserNeyModel::kMaxOrder, "], got ", order));
  }
  if (vocab_size < 1 || vocab_size > KneserNeyModel::kMaxVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel: vocab_size must be in [1, ",
                                                   KneserNeyModel::kMaxVocabSize, "], got ",
                                                   vocab_size));
  }
  uint64_t total_tokens = 0;
  for (size_t d = 0; d < documents.size(); ++d) {
    for (int32_t id : documents[d]) {
      if (id < 0 || id >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel: document ", d, " has id ",
                                                       id, " outside [0, ", vocab_size, ")"));
      }
    }
    total_tokens += documents[d].size();
  }
  if (total_tokens == 0) return absl::InvalidArgumentError("KneserNeyModel: corpus has no tokens");
  if (total_tokens >= kNoNode) {
    return absl::InvalidArgumentError("KneserNeyModel: corpus has 2^32 - 1 tokens or more");
  }
  return static_cast<size_t>(total_tokens);
}

// Builds the trie of Train() one order at a time, with the counts that smoothing needs.
class TrieBuilder {
 public:
  // `documents` checked by CountTrainingTokens(), which gave `t`.
  TrieBuilder(const std::vector<std::vector<int32_t>>& documents, size_t t, size_t v, int order)
      : t_(t), prev_nodes_(v), counts_(order) {
    Flatten(documents);
    counts_[0].assign(v, 0);
    prev_ids_ = tokens_;
    cur_ids_.assign(t, kNoNode);
    keyed_.reserve(t);
  }

  // Adds the nodes of order n (called for n = 2, 3, ... in turn): their last ids in *words,
  // sorted by (parent, last id), and where each order n-1 node's children begin.
  void AddOrder(int n, std::vector<int32_t>* words, std::vector<uint32_t>* child_begin) {
    SortKeys(n);
    std::vector<uint32_t> child_count(prev_nodes_, 0);
    GroupKeys(n, words, &child_count);
    CountDocumentStarts(n);
    // Children of the order n-1 nodes are contiguous because keys sort by parent first.
    child_begin->assign(prev_nodes_ + 1, 0);
    for (size_t i = 0; i < prev_nodes_; ++i) {
      (*child_begin)[i + 1] = (*child_begin)[i] + child_count[i];
    }
    prev_nodes_ = words->size();
    std::swap(prev_ids_, cur_ids_);
  }

  // counts[n-1]: count used for smoothing at order n (continuation counts below the top order,
  // raw counts at the top). Call after the last AddOrder().
  std::vector<std::vector<uint32_t>> TakeCounts() { return std::move(counts_); }

 private:
  // Flattened corpus; depth_[i] = min(position of token i in its document, 255).
  void Flatten(const std::vector<std::vector<int32_t>>& documents) {
    tokens_.reserve(t_);
    depth_.reserve(t_);
    for (const auto& doc : documents) {
      for (size_t i = 0; i < doc.size(); ++i) {
        tokens_.push_back(static_cast<uint32_t>(doc[i]));
        depth_.push_back(static_cast<uint8_t>(std::min<size_t>(i, 255)));
      }
    }
  }

  // Every n-gram ending at position i is (node of its first n-1 ids, last id): keyed_ holds
  // (that pair packed in 64 bits, i), sorted by key.
  void SortKeys(int n) {
    keyed_.clear();
    for (size_t i = 0; i < t_; ++i) {
      if (depth_[i] >= n - 1) {
        keyed_.emplace_back((static_cast<uint64_t>(prev_ids_[i - 1]) << 32) | tokens_[i],
                            static_cast<uint32_t>(i));
      }
    }
    std::sort(keyed_.begin(), keyed_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }

  // One node per distinct key: its last id, raw count and the node at each position
  // (cur_ids_); counts each parent's children and each (n-1)-gram's distinct left extensions.
  void GroupKeys(int n, std::vector<int32_t>* words, std::vector<uint32_t>* child_count) {
    std::vector<uint32_t>& raw = counts_[n - 1];
    std::vector<uint32_t>& cont_prev = counts_[n - 2];
    std::fill(cur_ids_.begin(), cur_ids_.end(), kNoNode);
    words->clear();
    raw.clear();
    if (n - 1 > 1) cont_prev.assign(prev_nodes_, 0);
    for (size_t a = 0; a < keyed_.size();) {
      const uint64_t key = keyed_[a].first;
      const uint32_t node = static_cast<uint32_t>(words->size());
      words->push_back(static_cast<int32_t>(key & 0xffffffffu));
      ++(*child_count)[key >> 32];
      // The (n-1)-gram suffix of this n-gram gains one distinct left extension.
      ++cont_prev[prev_ids_[keyed_[a].second]];
      size_t b = a;
      for (; b < keyed_.size() && keyed_[b].first == key; ++b) cur_ids_[keyed_[b].second] = node;
      raw.push_back(static_cast<uint32_t>(b - a));
      a = b;
    }
  }

  // An (n-1)-gram that opens a document has one more distinct left context: the start.
  void CountDocumentStarts(int n) {
    std::vector<uint32_t>& cont_prev = counts_[n - 2];
    std::vector<uint8_t> opens(prev_nodes_, 0);
    for (size_t i = 0; i < t_; ++i) {
      if (depth_[i] == n - 2) opens[prev_ids_[i]] = 1;
    }
    for (size_t i = 0; i < prev_nodes_; ++i) cont_prev[i] += opens[i];
  }

  const size_t t_;
  size_t prev_nodes_;  // nodes of order n-1
  std::vector<uint32_t> tokens_;
  std::vector<uint8_t> depth_;
  std::vector<std::vector<uint32_t>> counts_;
  std::vector<uint32_t> prev_ids_;  // node of order n-1 ending at each position
  std::vector<uint32_t> cur_ids_;   // node of order n ending at each position
  std::vector<std::pair<uint64_t, uint32_t>> keyed_;
};

// p_1(w): the smoothed unigram counts plus gamma_0's uniform share.
std::vector<float> SmoothUnigram(absl::Span<const uint32_t> counts,
                                 const std::array<double, 3>& d) {
  const size_t v = counts.size();
  std::vector<float> alpha(v);
  const double gamma0 = SmoothGroup(counts, d, alpha.data());
  const double uniform = gamma0 / static_cast<double>(v);
  std::vector<float> unigram(v);
  for (size_t w = 0; w < v; ++w) {
    unigram[w] = static_cast<float>(static_cast<double>(alpha[w]) + uniform);
  }
  return unigram;
}

// alpha of each n-gram of one order (counts by node) and gamma of each of its parents.
void SmoothOrder(absl::Span<const uint32_t> c, const std::array<double, 3>& d,
                 const std::vector<uint32_t>& child_begin, std::vector<float>* alpha,
                 std::vector<float>* backoff) {
  const size_t parents = child_begin.size() - 1;
  alpha->resize(c.size());
  backoff->resize(parents);
  for (size_t p = 0; p < parents; ++p) {
    const uint32_t begin = child_begin[p];
    const uint32_t end = child_begin[p + 1];
    (*backoff)[p] =
        static_cast<float>(SmoothGroup(c.subspan(begin, end - begin), d, alpha->data() + begin));
  }
}

// ---------------------------------------------------------------------------------------------
// Load() steps. Each reads its part of the file from `r` in file order and checks it.

absl::Status Corrupt(const std::string& path, const char* what) {
  return absl::InvalidArgumentError(
      absl::StrCat("KneserNeyModel::Load(", path, "): inconsistent model: ", what));
}

constexpr size_t kFixedHeader = 8 + 4 * 4 + 8;

// The fixed header and the node counts, checked against each other and the file's size.
struct ModelHeader {
  uint32_t order = 0;
  uint32_t vocab = 0;
  uint64_t num_unigrams = 0;
  std::vector<uint64_t> m;  // m[n] = nodes of order n, for 1 <= n <= order
};

// Magic, version and the fixed fields; leaves `r` at the node counts.
absl::StatusOr<ModelHeader> ReadFixedHeader(const std::string& bytes, const std::string& path,
                                            internal::ByteReader& r) {
  if (bytes.size() < kFixedHeader ||
      std::string_view(bytes.data(), sizeof(kMagic)) != std::string_view(kMagic, sizeof(kMagic))) {
    return absl::InvalidArgumentError(
        absl::StrCat("KneserNeyModel::Load(", path, "): not a tracemark Kneser-Ney model"));
  }
  r.Skip(sizeof(kMagic));
  const uint32_t version = r.GetU32();
  if (version != kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel::Load(", path,
                                                   "): unsupported format version ", version,
                                                   " (this build reads ", kFormatVersion, ")"));
  }
  ModelHeader h;
  h.order = r.GetU32();
  h.vocab = r.GetU32();
  const uint32_t reserved = r.GetU32();
  h.num_unigrams = r.GetU64();
  if (h.order < KneserNeyModel::kMinOrder || h.order > KneserNeyModel::kMaxOrder || h.vocab < 1 ||
      h.vocab > KneserNeyModel::kMaxVocabSize || reserved != 0 || h.num_unigrams > h.vocab) {
    return Corrupt(path, "bad header");
  }
  return h;
}

// The whole header; the file's size must be what it implies (computed with every count bounded
// so nothing overflows).
absl::StatusOr<ModelHeader> ReadModelHeader(const std::string& bytes, const std::string& path,
                                            internal::ByteReader& r) {
  TRACEMARK_ASSIGN_OR_RETURN(ModelHeader h, ReadFixedHeader(bytes, path, r));
  const uint32_t order = h.order;
  h.m.assign(order + 1, 0);
  h.m[1] = h.vocab;
  uint64_t expected = kFixedHeader + 8 * (order - 1) + 8 * 3 * order + 4 * uint64_t{h.vocab} + 8;
  if (bytes.size() < expected) {
    return absl::DataLossError(absl::StrCat("KneserNeyModel::Load(", path, "): file truncated"));
  }
  for (uint32_t n = 2; n <= order; ++n) {
    h.m[n] = r.GetU64();
    if (h.m[n] >= kNoNode) return Corrupt(path, "n-gram count too large");
  }
  for (uint32_t n = 1; n < order; ++n) expected += 4 * (h.m[n] + 1) + 4 * h.m[n];
  for (uint32_t n = 2; n <= order; ++n) expected += 8 * h.m[n];
  if (bytes.size() != expected) {
    return absl::DataLossError(absl::StrCat("KneserNeyModel::Load(", path, "): file is ",
                                            bytes.size(), " bytes, expected ", expected,
                                            " (truncated or corrupt)"));
  }
  return h;
}

// The last 8 bytes are the checksum of all the others.
absl::Status CheckChecksum(const std::string& bytes, const std::string& path) {
  const std::string_view body(bytes.data(), bytes.size() - 8);
  internal::ByteReader tail(std::string_view(bytes).substr(bytes.size() - 8));
  if (internal::Checksum64(body) != tail.GetU64()) {
    return absl::DataLossError(
        absl::StrCat("KneserNeyModel::Load(", path, "): checksum mismatch (file corrupt)"));
  }
  return absl::OkStatus();
}

absl::Status ReadDiscounts(internal::ByteReader& r, uint32_t order, const std::string& path,
                           std::vector<std::array<double, 3>>* discounts) {
  discounts->resize(order);
  for (auto& d : *discounts) {
    for (double& x : d) {
      x = r.GetF64();
      if (!(x >= 0.0 && x <= 3.0)) return Corrupt(path, "discount out of range");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadUnigram(internal::ByteReader& r, uint32_t vocab, const std::string& path,
                         std::vector<float>* unigram) {
  r.GetF32s(vocab, *unigram);
  for (float p : *unigram) {
    if (!(p > 0.0f && p <= 1.0f)) return Corrupt(path, "unigram probability out of range");
  }
  return absl::OkStatus();
}

// The `nodes` nodes of one order seen as contexts: their children must cover the `next_nodes`
// of the next order in order.
absl::Status ReadContextLevel(internal::ByteReader& r, uint64_t nodes, uint64_t next_nodes,
                              const std::string& path, std::vector<uint32_t>* child_begin,
                              std::vector<float>* backoff) {
  r.GetU32s(nodes + 1, *child_begin);
  r.GetF32s(nodes, *backoff);
  if (child_begin->front() != 0 || child_begin->back() != next_nodes) {
    return Corrupt(path, "child ranges do not cover the next order");
  }
  for (size_t i = 0; i + 1 < child_begin->size(); ++i) {
    if ((*child_begin)[i] > (*child_begin)[i + 1]) return Corrupt(path, "child ranges unsorted");
  }
  if (!std::all_of(backoff->begin(), backoff->end(),
                   [](float g) { return g > 0.0f && g <= 1.0f; })) {
    return Corrupt(path, "backoff weight out of range");
  }
  return absl::OkStatus();
}

// The `nodes` n-grams of one order, grouped by the parents' `child_begin`.
absl::Status ReadLevel(internal::ByteReader& r, uint64_t nodes,
                       const std::vector<uint32_t>& child_begin, int32_t vocab_size,
                       const std::string& path, std::vector<int32_t>* words,
                       std::vector<float>* alpha) {
  r.GetI32s(nodes, *words);
  r.GetF32s(nodes, *alpha);
  if (!std::all_of(alpha->begin(), alpha->end(), [](float x) { return x >= 0.0f && x <= 1.0f; })) {
    return Corrupt(path, "n-gram probability out of range");
  }
  // Ids in range and strictly increasing within each group of siblings.
  const std::vector<uint32_t>& begin = child_begin;
  for (size_t p = 0; p + 1 < begin.size(); ++p) {
    for (uint32_t a = begin[p]; a < begin[p + 1]; ++a) {
      const int32_t w = (*words)[a];
      if (w < 0 || w >= vocab_size) return Corrupt(path, "id out of range");
      if (a > begin[p] && (*words)[a - 1] >= w) return Corrupt(path, "sibling ids unsorted");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KneserNeyModel> KneserNeyModel::Train(
    const std::vector<std::vector<int32_t>>& documents, int32_t vocab_size, int order) {
  TRACEMARK_ASSIGN_OR_RETURN(const size_t t, CountTrainingTokens(documents, vocab_size, order));
  const size_t v = static_cast<size_t>(vocab_size);

  KneserNeyModel model;
  model.order_ = order;
  model.vocab_size_ = vocab_size;
  model.levels_.resize(order - 1);
  model.contexts_.resize(order - 1);
  model.discounts_.resize(order);

  std::vector<std::vector<uint32_t>> counts;
  {
    TrieBuilder trie(documents, t, v, order);
    for (int n = 2; n <= order; ++n) {
      trie.AddOrder(n, &model.levels_[n - 2].words, &model.contexts_[n - 2].child_begin);
    }
    counts = trie.TakeCounts();  // counts[order-1] holds raw counts of the top order
  }

  // Smoothing: discounts per order, alpha per n-gram, gamma per context.
  for (int n = 1; n <= order; ++n) model.discounts_[n - 1] = DiscountsFromCounts(counts[n - 1]);
  model.num_unigrams_ = 0;
  for (uint32_t c : counts[0]) model.num_unigrams_ += c > 0 ? 1 : 0;
  model.unigram_ = SmoothUnigram(counts[0], model.discounts_[0]);
  for (int n = 2; n <= order; ++n) {
    ContextLevel& ctx = model.contexts_[n - 2];
    SmoothOrder(counts[n - 1], model.discounts_[n - 1], ctx.child_begin,
                &model.levels_[n - 2].alpha, &ctx.backoff);
  }
  model.FinishUnigram();
  return model;
}

void KneserNeyModel::FinishUnigram() {
  log_unigram_.resize(unigram_.size());
  for (size_t w = 0; w < unigram_.size(); ++w) {
    log_unigram_[w] = static_cast<float>(std::log(static_cast<double>(unigram_[w])));
  }
}

size_t KneserNeyModel::NumNgrams(int n) const {
  if (n < 1 || n > order_) return 0;
  if (n == 1) return num_unigrams_;
  return levels_[n - 2].words.size();
}

std::array<double, 3> KneserNeyModel::Discounts(int n) const {
  if (n < 1 || n > order_) return {0, 0, 0};
  return discounts_[n - 1];
}

int64_t KneserNeyModel::FindNode(absl::Span<const int32_t> ids) const {
  int64_t node = ids[0];
  for (size_t j = 1; j < ids.size(); ++j) {
    const ContextLevel& ctx = contexts_[j - 1];
    const std::vector<int32_t>& words = levels_[j - 1].words;
    const auto first = words.begin() + ctx.child_begin[node];
    const auto last = words.begin() + ctx.child_begin[node + 1];
    const auto it = std::lower_bound(first, last, ids[j]);
    if (it == last || *it != ids[j]) return -1;
    node = it - words.begin();
  }
  return node;
}

int KneserNeyModel::FindContexts(absl::Span<const int32_t> context,
                                 std::array<uint32_t, kMaxOrder>& ctx) const {
  if (context.size() > static_cast<size_t>(order_ - 1)) {
    context = context.subspan(context.size() - (order_ - 1));
  }
  for (size_t i = context.size(); i > 0; --i) {
    if (context[i - 1] < 0 || context[i - 1] >= vocab_size_) {
      context = context.subspan(i);
      break;
    }
  }
  int found = 0;
  for (size_t j = 1; j <= context.size(); ++j) {
    const int64_t node = FindNode(context.subspan(context.size() - j));
    if (node < 0) break;
    const std::vector<uint32_t>& begin = contexts_[j - 1].child_begin;
    // A context without children cannot have a longer suffix-extension with children.
    if (begin[node] == begin[node + 1]) break;
    ctx[found++] = static_cast<uint32_t>(node);
  }
  return found;
}

void KneserNeyModel::LogProbs(absl::Span<const int32_t> context, absl::Span<float> out) const {
  if (out.size() != static_cast<size_t>(vocab_size_)) {
    assert(false && "KneserNeyModel::LogProbs: out.size() != vocab_size()");
    std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  std::array<uint32_t, kMaxOrder> ctx;
  const int k = FindContexts(context, ctx);
  // p(w) = G_0 p_1(w) + sum_j alpha_{j+1}(ctx_j, w) G_j, with G_j the product of the backoff
  // weights of the contexts longer than j.
  std::array<double, kMaxOrder + 1> tail;
  tail[k] = 1.0;
  for (int j = k; j >= 1; --j) tail[j - 1] = tail[j] * contexts_[j - 1].backoff[ctx[j - 1]];
  const double g0 = tail[0];
  const float log_g0 = static_cast<float>(std::log(g0));
  const float* lu = log_unigram_.data();
  float* o = out.data();
  for (size_t w = 0; w < out.size(); ++w) o[w] = lu[w] + log_g0;
  if (k == 0) return;

  // Ids seen after a longer context are also seen after every shorter suffix of it, so the
  // children of ctx_1 cover every id that needs patching; walk the others in step.
  std::array<uint32_t, kMaxOrder> pos;
  std::array<uint32_t, kMaxOrder> end;
  for (int j = 1; j <= k; ++j) {
    pos[j - 1] = contexts_[j - 1].child_begin[ctx[j - 1]];
    end[j - 1] = contexts_[j - 1].child_begin[ctx[j - 1] + 1];
  }
  const Level& base = levels_[0];
  for (uint32_t a = pos[0]; a < end[0]; ++a) {
    const int32_t w = base.words[a];
    double p = g0 * static_cast<double>(unigram_[w]) + static_cast<double>(base.alpha[a]) * tail[1];
    for (int j = 2; j <= k; ++j) {
      const Level& level = levels_[j - 1];
      uint32_t& q = pos[j - 1];
      while (q < end[j - 1] && level.words[q] < w) ++q;
      if (q < end[j - 1] && level.words[q] == w) {
        p += static_cast<double>(level.alpha[q]) * tail[j];
        ++q;
      }
    }
    o[w] = static_cast<float>(std::log(p));
  }
}

double KneserNeyModel::LogProb(absl::Span<const int32_t> context, int32_t id) const {
  if (id < 0 || id >= vocab_size_) return -std::numeric_limits<double>::infinity();
  std::array<uint32_t, kMaxOrder> ctx;
  const int k = FindContexts(context, ctx);
  double p = unigram_[id];
  for (int j = 1; j <= k; ++j) {
    const ContextLevel& c = contexts_[j - 1];
    const std::vector<int32_t>& words = levels_[j - 1].words;
    const auto first = words.begin() + c.child_begin[ctx[j - 1]];
    const auto last = words.begin() + c.child_begin[ctx[j - 1] + 1];
    const auto it = std::lower_bound(first, last, id);
    const double alpha = (it != last && *it == id)
                             ? static_cast<double>(levels_[j - 1].alpha[it - words.begin()])
                             : 0.0;
    p = alpha + static_cast<double>(c.backoff[ctx[j - 1]]) * p;
  }
  return std::log(p);
}

double KneserNeyModel::Perplexity(absl::Span<const int32_t> ids, size_t score_from) const {
  if (score_from >= ids.size()) return std::numeric_limits<double>::quiet_NaN();
  const size_t history = static_cast<size_t>(order_ - 1);
  double sum = 0;
  for (size_t i = score_from; i < ids.size(); ++i) {
    const size_t from = i > history ? i - history : 0;
    sum += LogProb(ids.subspan(from, i - from), ids[i]);
  }
  return std::exp(-sum / static_cast<double>(ids.size() - score_from));
}

absl::Status KneserNeyModel::Save(const std::string& path) const {
  internal::ByteWriter w;
  w.PutBytes(kMagic, sizeof(kMagic));
  w.PutU32(kFormatVersion);
  w.PutU32(static_cast<uint32_t>(order_));
  w.PutU32(static_cast<uint32_t>(vocab_size_));
  w.PutU32(0);
  w.PutU64(num_unigrams_);
  for (const Level& level : levels_) w.PutU64(level.words.size());
  for (const auto& d : discounts_) {
    for (double x : d) w.PutF64(x);
  }
  w.PutF32s(unigram_);
  for (const ContextLevel& ctx : contexts_) {
    w.PutU32s(ctx.child_begin);
    w.PutF32s(ctx.backoff);
  }
  for (const Level& level : levels_) {
    w.PutI32s(level.words);
    w.PutF32s(level.alpha);
  }
  w.PutU64(internal::Checksum64(w.data()));
  return internal::WriteFileAtomically(path, w.data());
}

absl::StatusOr<KneserNeyModel> KneserNeyModel::Load(const std::string& path) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string bytes, internal::ReadFile(path));
  internal::ByteReader r(bytes);
  TRACEMARK_ASSIGN_OR_RETURN(const ModelHeader h, ReadModelHeader(bytes, path, r));
  TRACEMARK_RETURN_IF_ERROR(CheckChecksum(bytes, path));

  KneserNeyModel model;
  model.order_ = static_cast<int>(h.order);
  model.vocab_size_ = static_cast<int32_t>(h.vocab);
  model.num_unigrams_ = h.num_unigrams;
  TRACEMARK_RETURN_IF_ERROR(ReadDiscounts(r, h.order, path, &model.discounts_));
  TRACEMARK_RETURN_IF_ERROR(ReadUnigram(r, h.vocab, path, &model.unigram_));
  model.contexts_.resize(h.order - 1);
  model.levels_.resize(h.order - 1);
  for (uint32_t n = 1; n < h.order; ++n) {
    ContextLevel& ctx = model.contexts_[n - 1];
    TRACEMARK_RETURN_IF_ERROR(
        ReadContextLevel(r, h.m[n], h.m[n + 1], path, &ctx.child_begin, &ctx.backoff));
  }
  for (uint32_t n = 2; n <= h.order; ++n) {
    Level& level = model.levels_[n - 2];
    TRACEMARK_RETURN_IF_ERROR(ReadLevel(r, h.m[n], model.contexts_[n - 2].child_begin,
                                        model.vocab_size_, path, &level.words, &level.alpha));
  }
  model.FinishUnigram();
  return model;
}

}  // namespace tracemark::refmodel
