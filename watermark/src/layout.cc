#include "layout.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::watermark {

AccountKeys AccountKeysBuilder::Make(uint64_t layout_id, uint64_t account, std::string key_id,
                                     std::string commitment, std::vector<uint8_t> payload,
                                     std::vector<uint8_t> fingerprint, SipKey canary_key) {
  AccountKeys k;
  k.canary_key_ = canary_key;
  k.layout_id_ = layout_id;
  k.account_ = account;
  k.key_id_ = std::move(key_id);
  k.commitment_ = std::move(commitment);
  k.payload_symbols_ = std::move(payload);
  k.fingerprint_ = std::move(fingerprint);
  return k;
}

AccountKeys::~AccountKeys() { Wipe(&canary_key_, sizeof(canary_key_)); }

namespace internal {
namespace {

absl::StatusOr<SipKey> SubKey(const Key& key, absl::string_view purpose) {
  TRACEMARK_ASSIGN_OR_RETURN(Key sub, key.Derive(purpose, 0));
  return SipKeyFromBytes(sub.secret().data());
}

// sin(x) for x in [0, pi/2] with + and * only (Taylor series to x^23), so that the Tardos biases
// are bit-identical on every platform; no libm call is involved.
double PortableSin(double x) {
  const double x2 = x * x;
  double term = x, sum = x;
  for (int k = 1; k <= 11; ++k) {
    term = term * (-x2) / static_cast<double>((2 * k) * (2 * k + 1));
    sum = sum + term;
  }
  return sum;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Layout>> Layout::Create(const Key& epoch_key, const Config& c) {
  TRACEMARK_RETURN_IF_ERROR(c.Validate());
  std::unique_ptr<Layout> l(new Layout(c));
  TRACEMARK_ASSIGN_OR_RETURN(Key epoch_copy, Key::FromBytes(epoch_key.secret().span()));
  l->epoch_key_ = std::make_unique<Key>(std::move(epoch_copy));
  {
    // SipHash under the all-zero key of "key id|description", as little-endian 32-bit words.
    std::string s = absl::StrCat(epoch_key.Id(), "|", c.Describe());
    s.resize((s.size() + 3) / 4 * 4, '\0');
    std::vector<uint32_t> words(s.size() / 4);
    for (size_t i = 0; i < words.size(); ++i) {
      for (int b = 3; b >= 0; --b) words[i] = (words[i] << 8) | static_cast<uint8_t>(s[4 * i + b]);
    }
    l->id_ = SipHashWords(SipKey{}, words.data(), words.size()) | 1;  // never 0
  }
  KernelParams& p = l->params_;
  p.layout_id = l->id_;
  TRACEMARK_ASSIGN_OR_RETURN(p.channel_key, SubKey(epoch_key, "layer/channel"));
  TRACEMARK_ASSIGN_OR_RETURN(p.provider_key,
                             SubKey(epoch_key, absl::StrCat("provider/", SchemeName(c.scheme))));
  TRACEMARK_ASSIGN_OR_RETURN(p.account_key, SubKey(epoch_key, "account/colour"));
  TRACEMARK_ASSIGN_OR_RETURN(l->payload_key_, SubKey(epoch_key, "account/payload-check"));
  TRACEMARK_ASSIGN_OR_RETURN(SipKey self, SubKey(epoch_key, "provider/kgw-selfhash"));
  p.self_key = self.k0 ^ self.k1;
  sodium_memzero(&self, sizeof(self));
  p.self_hash = c.scheme == Scheme::kKgw && c.kgw.self_hash;
  p.all_provider = c.account.share <= 0.0;
  p.provider_threshold = ProbabilityThreshold(c.provider_share());
  p.payload_threshold = ProbabilityThreshold(c.account.payload_share);
  p.green_threshold = ProbabilityThreshold(c.kgw.gamma);
  l->green_fraction_ = ThresholdProbability(p.green_threshold);
  p.payload_colours = 1u << c.account.bits_per_symbol;
  const int bits = c.account.id_bits + c.account.check_bits;
  p.payload_slots =
      static_cast<uint32_t>((bits + c.account.bits_per_symbol - 1) / c.account.bits_per_symbol);
  p.fingerprint_slots = static_cast<uint32_t>(c.account.fingerprint_slots);
  p.context_width = c.context_width;
  p.kgw_delta = static_cast<float>(c.kgw.delta);
  p.account_delta = static_cast<float>(c.account.delta);

  // Tardos-family biases p_j = t + (1 - 2t) sin^2(pi u_j / 2), u_j uniform: the arcsine law
  // restricted to [t, 1 - t], quantised to 32 bits (P(symbol 1) = threshold / 2^32 exactly).
  TRACEMARK_ASSIGN_OR_RETURN(SipKey bias_key, SubKey(epoch_key, "account/tardos-bias"));
  const double t = c.account.tardos_cutoff;
  constexpr double kHalfPi = 1.57079632679489661923;
  l->tardos_threshold_.resize(static_cast<size_t>(c.account.fingerprint_slots));
  for (size_t j = 0; j < l->tardos_threshold_.size(); ++j) {
    const double u = UnitOpen(SipHashU64(bias_key, j));
    const double s = PortableSin(kHalfPi * u);
    const double bias = t + (1.0 - 2.0 * t) * (s * s);
    l->tardos_threshold_[j] = static_cast<uint32_t>(std::floor(bias * 4294967296.0));
  }
  return l;
}

Layout::~Layout() {
  sodium_memzero(&params_, sizeof(params_));
  sodium_memzero(&payload_key_, sizeof(payload_key_));
}

double Layout::TardosBias(uint32_t j) const {
  return static_cast<double>(tardos_threshold_[j]) / 4294967296.0;
}

uint64_t Layout::Check(uint64_t id) const {
  const int cb = config_.account.check_bits;
  if (cb == 0) return 0;
  return SipHashU64(payload_key_, id) & ((cb == 64 ? 0 : (1ull << cb)) - 1);
}

std::vector<uint8_t> Layout::PayloadSymbols(uint64_t account) const {
  const int b = config_.account.bits_per_symbol;
  // Message bits, least significant first: id (id_bits), then check (check_bits).
  const unsigned __int128 message =
      static_cast<unsigned __int128>(account) |
      (static_cast<unsigned __int128>(Check(account)) << config_.account.id_bits);
  std::vector<uint8_t> symbols(params_.payload_slots);
  for (uint32_t j = 0; j < params_.payload_slots; ++j) {
    symbols[j] = static_cast<uint8_t>((message >> (j * b)) & ((1u << b) - 1));
  }
  return symbols;
}

std::optional<uint64_t> Layout::DecodePayload(absl::Span<const uint8_t> symbols) const {
  if (symbols.size() != params_.payload_slots) return std::nullopt;
  const int b = config_.account.bits_per_symbol;
  unsigned __int128 message = 0;
  for (uint32_t j = 0; j < params_.payload_slots; ++j) {
    message |= static_cast<unsigned __int128>(symbols[j]) << (j * b);
  }
  const int ib = config_.account.id_bits, cb = config_.account.check_bits;
  const uint64_t id =
      static_cast<uint64_t>(message & ((static_cast<unsigned __int128>(1) << ib) - 1));
  const uint64_t check =
      static_cast<uint64_t>((message >> ib) & ((static_cast<unsigned __int128>(1) << cb) - 1));
  // Bits beyond id_bits + check_bits in the last symbol must be zero.
  if ((message >> (ib + cb)) != 0) return std::nullopt;
  if (check != Check(id)) return std::nullopt;
  return id;
}

absl::StatusOr<AccountKeys> Layout::ForAccount(uint64_t account) const {
  const int ib = config_.account.id_bits;
  if (ib < 64 && account >= (1ull << ib)) {
    return absl::InvalidArgumentError(
        absl::StrCat("account id ", account, " does not fit in ", ib, " payload bits (id_bits)"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(Key account_key, DeriveAccountKey(*epoch_key_, account));
  TRACEMARK_ASSIGN_OR_RETURN(SipKey fp_key, SubKey(account_key, "account/fingerprint"));
  std::vector<uint8_t> fingerprint(tardos_threshold_.size());
  for (size_t j = 0; j < fingerprint.size(); ++j) {
    const uint64_t r = SipHashU64(fp_key, j / 2);
    const uint32_t u = static_cast<uint32_t>(j % 2 == 0 ? r : r >> 32);
    fingerprint[j] = u < tardos_threshold_[j] ? 1 : 0;
  }
  Wipe(&fp_key, sizeof(fp_key));
  TRACEMARK_ASSIGN_OR_RETURN(SipKey canary_key, SubKey(account_key, "canary"));
  AccountKeys keys =
      AccountKeysBuilder::Make(id_, account, account_key.Id(), account_key.Commitment(),
                               PayloadSymbols(account), std::move(fingerprint), canary_key);
  Wipe(&canary_key, sizeof(canary_key));
  return keys;
}

void Layout::Preferred(const Position& pos, const AccountKeys& acct, uint32_t* colour,
                       uint32_t* colours, uint32_t payload_colours) {
  if (pos.layer == Layer::kAccountPayload) {
    *colour = acct.payload_symbols()[pos.slot];
    *colours = payload_colours;
  } else {
    *colour = acct.fingerprint()[pos.slot];
    *colours = 2;
  }
}

}  // namespace internal
}  // namespace tracemark::watermark
