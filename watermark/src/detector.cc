#include "tracemark/watermark/detector.h"

#include <bit>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "layout.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/stats/chernoff.h"
#include "tracemark/stats/tails.h"

namespace tracemark::watermark {
namespace {

using internal::Layout;
using internal::Position;

// Contribution encoding: the top two bits name the layer.
constexpr uint64_t kProviderTag = 1ull << 62;
constexpr uint64_t kPayloadTag = 2ull << 62;
constexpr uint64_t kFingerprintTag = 3ull << 62;
constexpr uint64_t kTagMask = 3ull << 62;
// Gumbel scores are summed in fixed point (2^-40), rounded down: sums are exact and associative
// (so merges are exact), and rounding down can only make the p-value larger.
constexpr double kFixedScale = 1099511627776.0;  // 2^40

uint64_t TupleKey(uint64_t base, uint64_t tag, int32_t token) {
  return Mix(Mix(base, tag), static_cast<uint32_t>(token));
}

// The fingerprint slot weights of the symmetric Tardos score: symbol 1 weighs sqrt((1-p)/p),
// symbol 0 weighs -sqrt(p/(1-p)); both have mean 0 and variance 1 under the bias p.
void TardosWeights(double p, double* if_one, double* if_zero) {
  *if_one = std::sqrt((1.0 - p) / p);
  *if_zero = -std::sqrt(p / (1.0 - p));
}

struct FingerprintData {
  std::vector<int64_t> d;  // per slot: count(colour 1) - count(colour 0)
  uint64_t tuples = 0;
  stats::TwoPointSum null;
};

FingerprintData CollectFingerprint(const Layout& layout, const TextStatistics& stats) {
  FingerprintData f;
  f.d.assign(layout.fingerprint_slots(), 0);
  for (const auto& [key, value] : stats.tuples()) {
    if ((value & kTagMask) != kFingerprintTag) continue;
    const uint64_t slot = (value & ~kTagMask) >> 1;
    f.d[slot] += (value & 1) ? 1 : -1;
    ++f.tuples;
  }
  for (uint32_t j = 0; j < f.d.size(); ++j) {
    if (f.d[j] == 0) continue;
    double a, b;
    TardosWeights(layout.TardosBias(j), &a, &b);
    const double d = static_cast<double>(f.d[j]);
    f.null.Add(layout.TardosBias(j), d * a, d * b);
  }
  return f;
}

AccountResult ScoreAccount(const Layout& layout, const FingerprintData& f,
                           const AccountKeys& acct) {
  AccountResult r;
  r.account = acct.account();
  r.key_id = acct.key_id();
  r.tuples = f.tuples;
  for (uint32_t j = 0; j < f.d.size(); ++j) {
    if (f.d[j] == 0) continue;
    double a, b;
    TardosWeights(layout.TardosBias(j), &a, &b);
    r.score += static_cast<double>(f.d[j]) * (acct.fingerprint()[j] ? a : b);
  }
  r.null_mean = f.null.Mean();
  r.null_sd = std::sqrt(f.null.Variance());
  r.p_value = f.null.UpperTailBound(r.score);
  r.method = absl::StrCat(
      "fingerprint: symmetric Tardos score over ", f.tuples,
      " unique fingerprint tuples; p-value is a Chernoff bound on the score of an account whose "
      "codeword is independent of the text (any account outside the coalition), conditioned on "
      "the text; valid for one named account - correct for the number of accounts tried");
  return r;
}

// Per payload slot, how many payload tuples have each colour: [slot * colours + colour].
std::vector<uint32_t> CountPayloadColours(const TextStatistics& stats, uint32_t slots,
                                          uint32_t colours, uint64_t* tuples) {
  std::vector<uint32_t> counts(static_cast<size_t>(slots) * colours, 0);
  for (const auto& [key, value] : stats.tuples()) {
    if ((value & kTagMask) != kPayloadTag) continue;
    const uint64_t v = value & ~kTagMask;
    counts[(v >> 4) * colours + (v & 15)]++;
    ++*tuples;
  }
  return counts;
}

// Bits of the message that must be zero: above the largest id issued (account_limit, or the
// largest id of `issued`) and beyond id_bits + check_bits. Slots whose colours would set one are
// never tried, which spends the enumeration on the uncertainty that remains.
class ZeroBits {
 public:
  ZeroBits(const AccountParams& account, const PayloadOptions& options)
      : b_(account.bits_per_symbol), ib_(account.id_bits), cb_(account.check_bits) {
    uint64_t limit = options.account_limit;
    if (options.issued != nullptr && !options.issued->empty()) {
      limit = limit == 0 ? options.issued->limit() : std::min(limit, options.issued->limit());
    }
    id_width_ = limit == 0 ? ib_ : std::min(ib_, static_cast<int>(std::bit_width(limit - 1)));
  }

  // Whether `colour` in `slot` leaves every such bit zero.
  bool Allows(uint32_t slot, uint32_t colour) const {
    for (int k = 0; k < b_; ++k) {
      if (((colour >> k) & 1) == 0) continue;
      const int bit = static_cast<int>(slot) * b_ + k;
      if ((bit >= id_width_ && bit < ib_) || bit >= ib_ + cb_) return false;
    }
    return true;
  }

 private:
  int b_, ib_, cb_;
  int id_width_;
};

// One allowed colour of a slot and its deficit in count from the slot's best.
struct Alternative {
  uint8_t colour;
  uint32_t penalty;
};
using Alternatives = std::vector<std::vector<Alternative>>;

// Per slot: allowed colours sorted by count (ties by colour), with their deficit from the best.
// Counts the slots with at least one observation in *slots_covered.
Alternatives SortedAlternatives(const std::vector<uint32_t>& counts, uint32_t slots,
                                uint32_t colours, const ZeroBits& zero_bits,
                                uint32_t* slots_covered) {
  Alternatives alts(slots);
  for (uint32_t j = 0; j < slots; ++j) {
    std::vector<Alternative>& a = alts[j];
    uint32_t observed = 0;
    for (uint32_t c = 0; c < colours; ++c) {
      observed += counts[j * colours + c];
      if (zero_bits.Allows(j, c)) a.push_back({static_cast<uint8_t>(c), counts[j * colours + c]});
    }
    std::stable_sort(a.begin(), a.end(), [](const Alternative& x, const Alternative& y) {
      return x.penalty > y.penalty;
    });
    const uint32_t best = a[0].penalty;
    if (observed > 0) ++*slots_covered;
    for (Alternative& x : a) x.penalty = best - x.penalty;
  }
  return alts;
}

// Best-first enumeration of symbol vectors by total penalty. A state changes slot `last` or a
// later one only, so every vector is generated once. Each state's per-slot positions in the
// sorted alternatives live in one arena (`slots` bytes a state), so states cost no allocation.
class SymbolEnumeration {
 public:
  explicit SymbolEnumeration(const Alternatives& alts)
      : alts_(alts), slots_(static_cast<uint32_t>(alts.size())), arena_(slots_, 0) {
    arena_.reserve(static_cast<size_t>(slots_) * 64);
    heap_ = {State{0, 0, 0}};
  }

  // The next most likely symbol vector into *symbols (size slots); false when none is left.
  bool Next(std::vector<uint8_t>* symbols) {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), Worse);
    const State st = heap_.back();
    heap_.pop_back();
    for (uint32_t j = 0; j < slots_; ++j) (*symbols)[j] = alts_[j][arena_[st.index + j]].colour;
    PushSuccessors(st);
    return true;
  }

 private:
  struct State {
    uint64_t penalty;
    uint32_t index;  // offset of its positions in `arena_`
    uint32_t last;
  };
  static bool Worse(const State& x, const State& y) { return x.penalty > y.penalty; }

  void PushSuccessors(const State& st) {
    for (uint32_t j = st.last; j < slots_; ++j) {
      const uint8_t at = arena_[st.index + j];
      if (at + 1u >= alts_[j].size()) continue;
      // Moving a slot that an earlier step already moved is allowed only at `last` itself.
      if (j > st.last && at != 0) continue;
      const uint32_t child = static_cast<uint32_t>(arena_.size());
      arena_.resize(child + slots_);
      std::copy_n(arena_.begin() + st.index, slots_, arena_.begin() + child);
      ++arena_[child + j];
      heap_.push_back(
          State{st.penalty + alts_[j][at + 1].penalty - alts_[j][at].penalty, child, j});
      std::push_heap(heap_.begin(), heap_.end(), Worse);
    }
  }

  const Alternatives& alts_;
  const uint32_t slots_;
  std::vector<uint8_t> arena_;
  std::vector<State> heap_;
};

// Tries symbol vectors most likely first, within options' limits; each that decodes to an id
// the options accept is appended to r->candidates.
void ListDecode(const Layout& layout, const Alternatives& alts, const PayloadOptions& options,
                PayloadResult* r) {
  SymbolEnumeration enumeration(alts);
  std::vector<uint8_t> symbols(alts.size());
  while (r->candidates_tried < options.max_tried && r->candidates.size() < options.max_candidates &&
         enumeration.Next(&symbols)) {
    ++r->candidates_tried;
    const std::optional<uint64_t> id = layout.DecodePayload(symbols);
    if (id.has_value() && (options.account_limit == 0 || *id < options.account_limit) &&
        (options.issued == nullptr || options.issued->contains(*id))) {
      r->candidates.push_back(*id);
    }
  }
}

}  // namespace

absl::Status TextStatistics::Merge(const TextStatistics& other) {
  if (other.layout_id_ == 0) return absl::OkStatus();
  if (layout_id_ != 0 && layout_id_ != other.layout_id_) {
    return absl::InvalidArgumentError(
        "statistics scored under different epoch keys or configurations cannot be merged");
  }
  layout_id_ = other.layout_id_;
  for (const auto& [k, v] : other.tuples_) tuples_.try_emplace(k, v);
  return absl::OkStatus();
}

absl::Status Detector::CheckStats(const TextStatistics& stats) const {
  if (stats.layout_id() != 0 && stats.layout_id() != layout_->id()) {
    return absl::InvalidArgumentError(
        "statistics were scored under a different epoch key or configuration");
  }
  return absl::OkStatus();
}

Detector::Detector(Config config, std::unique_ptr<Layout> layout, std::string key_id)
    : config_(std::move(config)), layout_(std::move(layout)), key_id_(std::move(key_id)) {}

Detector::~Detector() = default;

absl::StatusOr<std::unique_ptr<Detector>> Detector::Create(const Key& epoch_key,
                                                           const Config& config) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Layout> layout, Layout::Create(epoch_key, config));
  return std::unique_ptr<Detector>(new Detector(config, std::move(layout), epoch_key.Id()));
}

absl::StatusOr<AccountKeys> Detector::ForAccount(uint64_t account) const {
  return layout_->ForAccount(account);
}

absl::Status Detector::Score(absl::Span<const int32_t> ids, size_t score_from,
                             TextStatistics* stats) const {
  TRACEMARK_RETURN_IF_ERROR(CheckStats(*stats));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at position ", i,
                                                     " is outside the vocabulary [0, ",
                                                     config_.vocab_size, ")"));
    }
  }
  stats->layout_id_ = layout_->id();
  const size_t h = static_cast<size_t>(config_.context_width);
  const bool distortion_free = config_.scheme != Scheme::kKgw;
  absl::flat_hash_set<uint64_t> seen_contexts;  // within this document
  for (size_t i = std::max(score_from, h); i < ids.size(); ++i) {
    const int32_t token = ids[i];
    const Position pos = layout_->Locate(ids.data() + i - h);
    const bool repeated = !seen_contexts.insert(pos.context_key).second;
    switch (pos.layer) {
      case Layer::kProvider: {
        if (distortion_free && repeated && config_.skip_repeated_contexts) break;
        const uint64_t seed = layout_->ProviderSeed(pos, token);
        const uint64_t x = Mix(seed, static_cast<uint32_t>(token));
        uint64_t value = 0;
        switch (config_.scheme) {
          case Scheme::kKgw:
            value = layout_->IsGreen(seed, token) ? 1 : 0;
            break;
          case Scheme::kGumbel:
            value =
                static_cast<uint64_t>(std::floor(-std::log(UnitOpenComplement(x)) * kFixedScale));
            break;
          case Scheme::kSynthId: {
            const int m = config_.synthid.layers;
            const uint64_t mask = m == 64 ? ~0ull : ((1ull << m) - 1);
            value = static_cast<uint64_t>(std::popcount(x & mask));
            break;
          }
        }
        const uint64_t base = layout_->config().kgw.self_hash && config_.scheme == Scheme::kKgw
                                  ? seed
                                  : pos.context_key;
        stats->Add(TupleKey(base, kProviderTag, token), kProviderTag | value);
        break;
      }
      case Layer::kAccountPayload: {
        const uint32_t colour = Layout::Colour(pos.seed, token, layout_->payload_colours());
        stats->Add(TupleKey(pos.context_key, kPayloadTag, token),
                   kPayloadTag | (static_cast<uint64_t>(pos.slot) << 4) | colour);
        break;
      }
      case Layer::kAccountFingerprint: {
        const uint32_t colour = Layout::Colour(pos.seed, token, 2);
        stats->Add(TupleKey(pos.context_key, kFingerprintTag, token),
                   kFingerprintTag | (static_cast<uint64_t>(pos.slot) << 1) | colour);
        break;
      }
      case Layer::kNone:
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ProviderResult> Detector::TestProvider(const TextStatistics& stats) const {
  TRACEMARK_RETURN_IF_ERROR(CheckStats(stats));
  ProviderResult r;
  r.scheme = config_.scheme;
  uint64_t sum = 0;
  for (const auto& [key, value] : stats.tuples()) {
    if ((value & kTagMask) != kProviderTag) continue;
    ++r.tuples;
    sum += value & ~kTagMask;
  }
  switch (config_.scheme) {
    case Scheme::kKgw:
      r.score = static_cast<double>(sum);
      r.p_value = stats::BinomialUpperTail(sum, r.tuples, layout_->green_fraction());
      r.method = absl::StrCat("KGW: exact binomial tail P(X >= ", sum, "), X ~ Binomial(", r.tuples,
                              ", gamma=", layout_->green_fraction(), ") over unique tuples");
      break;
    case Scheme::kGumbel:
      r.score = static_cast<double>(sum) / kFixedScale;
      r.p_value = stats::GammaUpperTail(static_cast<double>(r.tuples), r.score);
      r.method = absl::StrCat("Gumbel/EXP: exact Gamma(", r.tuples,
                              ", 1) tail of the sum of -log(1 - r) over unique tuples");
      break;
    case Scheme::kSynthId: {
      const uint64_t trials = r.tuples * static_cast<uint64_t>(config_.synthid.layers);
      r.score = static_cast<double>(sum);
      r.p_value = stats::BinomialUpperTail(sum, trials, 0.5);
      r.method = absl::StrCat("SynthID: exact binomial tail of the number of g-values equal to 1, ",
                              "Binomial(", r.tuples, " tuples x ", config_.synthid.layers,
                              " layers, 1/2)");
      break;
    }
  }
  return r;
}

absl::StatusOr<PayloadResult> Detector::DecodePayload(const TextStatistics& stats,
                                                      PayloadOptions options) const {
  TRACEMARK_RETURN_IF_ERROR(CheckStats(stats));
  PayloadResult r;
  const uint32_t slots = layout_->payload_slots(), colours = layout_->payload_colours();
  r.slots = slots;
  const std::vector<uint32_t> counts = CountPayloadColours(stats, slots, colours, &r.tuples);
  const Alternatives alts = SortedAlternatives(
      counts, slots, colours, ZeroBits(config_.account, options), &r.slots_covered);
  r.symbols.resize(slots);
  for (uint32_t j = 0; j < slots; ++j) r.symbols[j] = alts[j][0].colour;
  if (slots - r.slots_covered > options.max_unobserved_slots) {
    r.detail = absl::StrCat("payload slots observed: ", r.slots_covered, " of ", slots,
                            " (payload tuples: ", r.tuples, "); the text is too short to decode");
    return r;
  }
  ListDecode(*layout_, alts, options, &r);
  if (r.candidates.empty()) {
    r.detail = absl::StrCat("no symbol vector among the ", r.candidates_tried,
                            " most likely passed the check bits (payload slots observed: ",
                            r.slots_covered, " of ", slots, ", payload tuples: ", r.tuples, ")");
    return r;
  }
  r.decoded = true;
  r.account = r.candidates.front();
  return r;
}

absl::StatusOr<AccountResult> Detector::TestAccount(const TextStatistics& stats,
                                                    const AccountKeys& account) const {
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<AccountResult> r,
                             TestAccounts(stats, absl::MakeConstSpan(&account, 1)));
  return std::move(r.front());
}

absl::StatusOr<std::vector<AccountResult>> Detector::TestAccounts(
    const TextStatistics& stats, absl::Span<const AccountKeys> accounts) const {
  TRACEMARK_RETURN_IF_ERROR(CheckStats(stats));
  for (const AccountKeys& a : accounts) {
    if (a.layout_id() != layout_->id()) {
      return absl::InvalidArgumentError(
          absl::StrCat("keys of account ", a.account(),
                       " were derived under a different epoch key or configuration"));
    }
  }
  const FingerprintData f = CollectFingerprint(*layout_, stats);
  std::vector<AccountResult> out;
  out.reserve(accounts.size());
  for (const AccountKeys& a : accounts) out.push_back(ScoreAccount(*layout_, f, a));
  return out;
}

absl::StatusOr<TextStatistics> Detector::Project(const TextStatistics& stats, Layer layer) const {
  TRACEMARK_RETURN_IF_ERROR(CheckStats(stats));
  uint64_t tag = 0;
  switch (layer) {
    case Layer::kProvider:
      tag = kProviderTag;
      break;
    case Layer::kAccountPayload:
      tag = kPayloadTag;
      break;
    case Layer::kAccountFingerprint:
      tag = kFingerprintTag;
      break;
    case Layer::kNone:
      return absl::InvalidArgumentError("Project: kNone is not a layer with tuples");
  }
  TextStatistics out;
  out.layout_id_ = stats.layout_id();
  for (const auto& [key, value] : stats.tuples()) {
    if ((value & kTagMask) == tag) out.Add(key, value);
  }
  return out;
}

}  // namespace tracemark::watermark
