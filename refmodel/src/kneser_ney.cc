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

}  // namespace

absl::StatusOr<KneserNeyModel> KneserNeyModel::Train(
    const std::vector<std::vector<int32_t>>& documents, int32_t vocab_size, int order) {
  if (order < kMinOrder || order > kMaxOrder) {
    return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel: order must be in [", kMinOrder,
                                                   ", ", kMaxOrder, "], got ", order));
  }
  if (vocab_size < 1 || vocab_size > kMaxVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel: vocab_size must be in [1, ",
                                                   kMaxVocabSize, "], got ", vocab_size));
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
  const size_t t = static_cast<size_t>(total_tokens);
  const size_t v = static_cast<size_t>(vocab_size);

  // Flattened corpus; depth[i] = min(position of token i in its document, 255).
  std::vector<uint32_t> tokens;
  std::vector<uint8_t> depth;
  tokens.reserve(t);
  depth.reserve(t);
  for (const auto& doc : documents) {
    for (size_t i = 0; i < doc.size(); ++i) {
      tokens.push_back(static_cast<uint32_t>(doc[i]));
      depth.push_back(static_cast<uint8_t>(std::min<size_t>(i, 255)));
    }
  }

  KneserNeyModel model;
  model.order_ = order;
  model.vocab_size_ = vocab_size;
  model.levels_.resize(order - 1);
  model.contexts_.resize(order - 1);
  model.discounts_.resize(order);

  // counts[n-1]: count used for smoothing at order n (continuation counts below the top order,
  // raw counts at the top). Order-1 nodes are the ids themselves.
  std::vector<std::vector<uint32_t>> counts(order);
  counts[0].assign(v, 0);
  std::vector<uint32_t> prev_ids = tokens;  // node of order n-1 ending at each position
  std::vector<uint32_t> cur_ids(t, kNoNode);
  std::vector<std::pair<uint64_t, uint32_t>> keyed;
  keyed.reserve(t);
  size_t prev_nodes = v;

  for (int n = 2; n <= order; ++n) {
    // Every n-gram ending at position i is (node of its first n-1 ids, last id).
    keyed.clear();
    for (size_t i = 0; i < t; ++i) {
      if (depth[i] >= n - 1) {
        keyed.emplace_back((static_cast<uint64_t>(prev_ids[i - 1]) << 32) | tokens[i],
                           static_cast<uint32_t>(i));
      }
    }
    std::sort(keyed.begin(), keyed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });

    Level& level = model.levels_[n - 2];
    std::vector<uint32_t>& raw = counts[n - 1];
    std::vector<uint32_t>& cont_prev = counts[n - 2];
    std::vector<uint32_t> child_count(prev_nodes, 0);
    std::fill(cur_ids.begin(), cur_ids.end(), kNoNode);
    level.words.clear();
    raw.clear();
    if (n - 1 > 1) cont_prev.assign(prev_nodes, 0);
    for (size_t a = 0; a < keyed.size();) {
      const uint64_t key = keyed[a].first;
      const uint32_t node = static_cast<uint32_t>(level.words.size());
      level.words.push_back(static_cast<int32_t>(key & 0xffffffffu));
      ++child_count[key >> 32];
      // The (n-1)-gram suffix of this n-gram gains one distinct left extension.
      ++cont_prev[prev_ids[keyed[a].second]];
      size_t b = a;
      for (; b < keyed.size() && keyed[b].first == key; ++b) cur_ids[keyed[b].second] = node;
      raw.push_back(static_cast<uint32_t>(b - a));
      a = b;
    }
    // An (n-1)-gram that opens a document has one more distinct left context: the start.
    {
      std::vector<uint8_t> opens(prev_nodes, 0);
      for (size_t i = 0; i < t; ++i) {
        if (depth[i] == n - 2) opens[prev_ids[i]] = 1;
      }
      for (size_t i = 0; i < prev_nodes; ++i) cont_prev[i] += opens[i];
    }
    // Children of the order n-1 nodes are contiguous because keys sort by parent first.
    ContextLevel& ctx = model.contexts_[n - 2];
    ctx.child_begin.assign(prev_nodes + 1, 0);
    for (size_t i = 0; i < prev_nodes; ++i) {
      ctx.child_begin[i + 1] = ctx.child_begin[i] + child_count[i];
    }
    prev_nodes = level.words.size();
    std::swap(prev_ids, cur_ids);
  }
  // counts[order-1] already holds raw counts of the top order.
  std::vector<std::pair<uint64_t, uint32_t>>().swap(keyed);
  std::vector<uint32_t>().swap(prev_ids);
  std::vector<uint32_t>().swap(cur_ids);

  // Smoothing: discounts per order, alpha per n-gram, gamma per context.
  for (int n = 1; n <= order; ++n) model.discounts_[n - 1] = DiscountsFromCounts(counts[n - 1]);

  model.num_unigrams_ = 0;
  for (uint32_t c : counts[0]) model.num_unigrams_ += c > 0 ? 1 : 0;
  {
    std::vector<float> alpha(v);
    const double gamma0 = SmoothGroup(counts[0], model.discounts_[0], alpha.data());
    const double uniform = gamma0 / static_cast<double>(v);
    model.unigram_.resize(v);
    for (size_t w = 0; w < v; ++w) {
      model.unigram_[w] = static_cast<float>(static_cast<double>(alpha[w]) + uniform);
    }
  }
  for (int n = 2; n <= order; ++n) {
    Level& level = model.levels_[n - 2];
    ContextLevel& ctx = model.contexts_[n - 2];
    const size_t parents = ctx.child_begin.size() - 1;
    level.alpha.resize(level.words.size());
    ctx.backoff.resize(parents);
    const absl::Span<const uint32_t> c(counts[n - 1]);
    for (size_t p = 0; p < parents; ++p) {
      const uint32_t begin = ctx.child_begin[p];
      const uint32_t end = ctx.child_begin[p + 1];
      ctx.backoff[p] = static_cast<float>(SmoothGroup(
          c.subspan(begin, end - begin), model.discounts_[n - 1], level.alpha.data() + begin));
    }
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
  const auto corrupt = [&path](const char* what) {
    return absl::InvalidArgumentError(
        absl::StrCat("KneserNeyModel::Load(", path, "): inconsistent model: ", what));
  };
  constexpr size_t kFixedHeader = 8 + 4 * 4 + 8;
  if (bytes.size() < kFixedHeader ||
      std::string_view(bytes.data(), sizeof(kMagic)) != std::string_view(kMagic, sizeof(kMagic))) {
    return absl::InvalidArgumentError(
        absl::StrCat("KneserNeyModel::Load(", path, "): not a tracemark Kneser-Ney model"));
  }
  internal::ByteReader r(bytes);
  r.Skip(sizeof(kMagic));
  const uint32_t version = r.GetU32();
  if (version != kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("KneserNeyModel::Load(", path,
                                                   "): unsupported format version ", version,
                                                   " (this build reads ", kFormatVersion, ")"));
  }
  const uint32_t order = r.GetU32();
  const uint32_t vocab = r.GetU32();
  const uint32_t reserved = r.GetU32();
  const uint64_t num_unigrams = r.GetU64();
  if (order < kMinOrder || order > kMaxOrder || vocab < 1 || vocab > kMaxVocabSize ||
      reserved != 0 || num_unigrams > vocab) {
    return corrupt("bad header");
  }
  // Expected size, computed with every count bounded so nothing overflows.
  std::vector<uint64_t> m(order + 1, 0);  // m[n] = nodes of order n
  m[1] = vocab;
  uint64_t expected = kFixedHeader + 8 * (order - 1) + 8 * 3 * order + 4 * uint64_t{vocab} + 8;
  if (bytes.size() < expected) {
    return absl::DataLossError(absl::StrCat("KneserNeyModel::Load(", path, "): file truncated"));
  }
  for (uint32_t n = 2; n <= order; ++n) {
    m[n] = r.GetU64();
    if (m[n] >= kNoNode) return corrupt("n-gram count too large");
  }
  for (uint32_t n = 1; n < order; ++n) expected += 4 * (m[n] + 1) + 4 * m[n];
  for (uint32_t n = 2; n <= order; ++n) expected += 8 * m[n];
  if (bytes.size() != expected) {
    return absl::DataLossError(absl::StrCat("KneserNeyModel::Load(", path, "): file is ",
                                            bytes.size(), " bytes, expected ", expected,
                                            " (truncated or corrupt)"));
  }
  const std::string_view body(bytes.data(), bytes.size() - 8);
  internal::ByteReader tail(std::string_view(bytes).substr(bytes.size() - 8));
  if (internal::Checksum64(body) != tail.GetU64()) {
    return absl::DataLossError(
        absl::StrCat("KneserNeyModel::Load(", path, "): checksum mismatch (file corrupt)"));
  }

  KneserNeyModel model;
  model.order_ = static_cast<int>(order);
  model.vocab_size_ = static_cast<int32_t>(vocab);
  model.num_unigrams_ = num_unigrams;
  model.discounts_.resize(order);
  for (auto& d : model.discounts_) {
    for (double& x : d) {
      x = r.GetF64();
      if (!(x >= 0.0 && x <= 3.0)) return corrupt("discount out of range");
    }
  }
  const auto probability_like = [](float x) { return x >= 0.0f && x <= 1.0f; };
  r.GetF32s(vocab, model.unigram_);
  for (float p : model.unigram_) {
    if (!(p > 0.0f && p <= 1.0f)) return corrupt("unigram probability out of range");
  }
  model.contexts_.resize(order - 1);
  model.levels_.resize(order - 1);
  for (uint32_t n = 1; n < order; ++n) {
    ContextLevel& ctx = model.contexts_[n - 1];
    r.GetU32s(m[n] + 1, ctx.child_begin);
    r.GetF32s(m[n], ctx.backoff);
    if (ctx.child_begin.front() != 0 || ctx.child_begin.back() != m[n + 1]) {
      return corrupt("child ranges do not cover the next order");
    }
    for (size_t i = 0; i + 1 < ctx.child_begin.size(); ++i) {
      if (ctx.child_begin[i] > ctx.child_begin[i + 1]) return corrupt("child ranges unsorted");
    }
    if (!std::all_of(ctx.backoff.begin(), ctx.backoff.end(),
                     [](float g) { return g > 0.0f && g <= 1.0f; })) {
      return corrupt("backoff weight out of range");
    }
  }
  for (uint32_t n = 2; n <= order; ++n) {
    Level& level = model.levels_[n - 2];
    r.GetI32s(m[n], level.words);
    r.GetF32s(m[n], level.alpha);
    if (!std::all_of(level.alpha.begin(), level.alpha.end(), probability_like)) {
      return corrupt("n-gram probability out of range");
    }
    // Ids in range and strictly increasing within each group of siblings.
    const std::vector<uint32_t>& begin = model.contexts_[n - 2].child_begin;
    for (size_t p = 0; p + 1 < begin.size(); ++p) {
      for (uint32_t a = begin[p]; a < begin[p + 1]; ++a) {
        const int32_t w = level.words[a];
        if (w < 0 || w >= model.vocab_size_) return corrupt("id out of range");
        if (a > begin[p] && level.words[a - 1] >= w) return corrupt("sibling ids unsorted");
      }
    }
  }
  model.FinishUnigram();
  return model;
}

}  // namespace tracemark::refmodel
