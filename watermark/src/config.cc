#include "tracemark/watermark/config.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::watermark {

absl::string_view SchemeName(Scheme s) {
  switch (s) {
    case Scheme::kKgw:
      return "kgw";
    case Scheme::kGumbel:
      return "gumbel";
    case Scheme::kSynthId:
      return "synthid";
  }
  return "unknown";
}

absl::StatusOr<Scheme> ParseScheme(absl::string_view name) {
  if (name == "kgw") return Scheme::kKgw;
  if (name == "gumbel" || name == "exp") return Scheme::kGumbel;
  if (name == "synthid") return Scheme::kSynthId;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scheme '", name, "' (expected kgw, gumbel or synthid)"));
}

absl::Status Config::Validate() const {
  auto bad = [](absl::string_view what) { return absl::InvalidArgumentError(what); };
  if (vocab_size <= 0) return bad("vocab_size must be set (> 0)");
  if (context_width < 1 || context_width > 16) return bad("h (context width) must be in 1..16");
  if (!(kgw.gamma > 0.0 && kgw.gamma < 1.0)) return bad("gamma must be in (0, 1)");
  if (!(std::isfinite(kgw.delta) && kgw.delta >= 0.0)) return bad("delta must be finite, >= 0");
  if (synthid.layers < 1 || synthid.layers > 64) return bad("layers must be in 1..64");
  if (!(account.share >= 0.0 && account.share <= 1.0))
    return bad("account_share must be in [0, 1]");
  if (!(account.payload_share >= 0.0 && account.payload_share <= 1.0)) {
    return bad("payload_share must be in [0, 1]");
  }
  if (!(std::isfinite(account.delta) && account.delta >= 0.0)) {
    return bad("account_delta must be finite, >= 0");
  }
  if (account.id_bits < 1 || account.id_bits > 48) return bad("id_bits must be in 1..48");
  if (account.check_bits < 0 || account.check_bits > 32) return bad("check_bits must be in 0..32");
  if (account.bits_per_symbol < 1 || account.bits_per_symbol > 4) {
    return bad("bits_per_symbol must be in 1..4");
  }
  if (account.fingerprint_slots < 1 || account.fingerprint_slots > (1 << 20)) {
    return bad("fingerprint_slots must be in 1..1048576");
  }
  if (!(account.tardos_cutoff > 0.0 && account.tardos_cutoff < 0.5)) {
    return bad("tardos_cutoff must be in (0, 0.5)");
  }
  return absl::OkStatus();
}

std::string Config::Describe() const {
  std::string s = absl::StrCat("scheme=", SchemeName(scheme), ",h=", context_width);
  switch (scheme) {
    case Scheme::kKgw:
      absl::StrAppend(&s, ",gamma=", kgw.gamma, ",delta=", kgw.delta,
                      ",hash=", kgw.self_hash ? "selfhash" : "lefthash");
      break;
    case Scheme::kSynthId:
      absl::StrAppend(&s, ",layers=", synthid.layers);
      break;
    case Scheme::kGumbel:
      break;
  }
  absl::StrAppend(&s, ",account_share=", account.share);
  if (account.share > 0) {
    absl::StrAppend(&s, ",payload_share=", account.payload_share, ",account_delta=", account.delta,
                    ",id_bits=", account.id_bits, ",check_bits=", account.check_bits,
                    ",bits_per_symbol=", account.bits_per_symbol,
                    ",fingerprint_slots=", account.fingerprint_slots,
                    ",tardos_cutoff=", account.tardos_cutoff);
  }
  absl::StrAppend(&s, ",skip_repeated=", skip_repeated_contexts ? 1 : 0, ",vocab=", vocab_size);
  return s;
}

absl::StatusOr<Config> ParseConfig(absl::string_view spec, Config base) {
  Config c = base;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    const absl::string_view key = kv.first, value = kv.second;
    auto as_double = [&](double* out) -> absl::Status {
      if (!absl::SimpleAtod(value, out)) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", key, "' needs a number, got '", value, "'"));
      }
      return absl::OkStatus();
    };
    auto as_int = [&](int* out) -> absl::Status {
      if (!absl::SimpleAtoi(value, out)) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", key, "' needs an integer, got '", value, "'"));
      }
      return absl::OkStatus();
    };
    if (key == "scheme") {
      TRACEMARK_ASSIGN_OR_RETURN(c.scheme, ParseScheme(value));
    } else if (key == "h") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.context_width));
    } else if (key == "gamma") {
      TRACEMARK_RETURN_IF_ERROR(as_double(&c.kgw.gamma));
    } else if (key == "delta") {
      TRACEMARK_RETURN_IF_ERROR(as_double(&c.kgw.delta));
    } else if (key == "hash") {
      if (value != "lefthash" && value != "selfhash") {
        return absl::InvalidArgumentError("hash must be lefthash or selfhash");
      }
      c.kgw.self_hash = value == "selfhash";
    } else if (key == "layers") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.synthid.layers));
    } else if (key == "account_share") {
      TRACEMARK_RETURN_IF_ERROR(as_double(&c.account.share));
    } else if (key == "payload_share") {
      TRACEMARK_RETURN_IF_ERROR(as_double(&c.account.payload_share));
    } else if (key == "account_delta") {
      TRACEMARK_RETURN_IF_ERROR(as_double(&c.account.delta));
    } else if (key == "id_bits") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.account.id_bits));
    } else if (key == "check_bits") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.account.check_bits));
    } else if (key == "bits_per_symbol") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.account.bits_per_symbol));
    } else if (key == "fingerprint_slots") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.account.fingerprint_slots));
    } else if (key == "tardos_cutoff") {
      TRACEMARK_RETURN_IF_ERROR(as_double(&c.account.tardos_cutoff));
    } else if (key == "vocab") {
      TRACEMARK_RETURN_IF_ERROR(as_int(&c.vocab_size));
    } else if (key == "skip_repeated") {
      int v = 0;
      TRACEMARK_RETURN_IF_ERROR(as_int(&v));
      c.skip_repeated_contexts = v != 0;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown watermark parameter '", key, "'"));
    }
  }
  return c;
}

}  // namespace tracemark::watermark
