// Watermark parameters: the provider scheme, the layer split and each scheme's settings.
//
// A Config is part of the evidence: the verifier must use the same one the serving engine used.
// Describe() prints it as one canonical line that ParseConfig() reads back.
//
//   absl::StatusOr<Config> c = ParseConfig("scheme=kgw,gamma=0.25,delta=2,h=3", Config{});
//   c->vocab_size = 100277;
//   if (absl::Status s = c->Validate(); !s.ok()) ...
//
// Plain value type; thread-compatible.
#ifndef TRACEMARK_WATERMARK_CONFIG_H_
#define TRACEMARK_WATERMARK_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracemark::watermark {

enum class Scheme : uint8_t {
  kKgw,      // red/green soft bias (Kirchenbauer et al. 2023)
  kGumbel,   // Gumbel-max / EXP sampling (Aaronson 2022), distortion-free
  kSynthId,  // SynthID tournament sampling (Dathathri et al. 2024), distortion-free setting
};

absl::string_view SchemeName(Scheme s);
absl::StatusOr<Scheme> ParseScheme(absl::string_view name);

struct KgwParams {
  double gamma = 0.25;     // green fraction of the vocabulary
  double delta = 2.0;      // logit bias added to green tokens
  bool self_hash = false;  // false: LeftHash (seed from the context); true: min-SelfHash
};

struct SynthIdParams {
  int layers = 30;  // tournament depth m, 1..64 (one g-value bit per layer)
};

// The account layer: per-account signals on the positions the provider layer does not use.
struct AccountParams {
  double share = 0.5;            // fraction of positions for the account layer (0 disables it)
  double payload_share = 0.4;    // of the account positions, the fraction carrying the id payload;
                                 // the rest carry the account's fingerprint codeword
  double delta = 2.0;            // logit bias towards the account's preferred colour
  int id_bits = 24;              // account ids carried by the payload: 0 .. 2^id_bits - 1
  int check_bits = 8;            // keyed check bits appended to the id (error detection)
  int bits_per_symbol = 2;       // payload alphabet 2^bits_per_symbol colours per slot
  int fingerprint_slots = 1024;  // fingerprint code length (Tardos family)
  double tardos_cutoff = 0.01;   // biases p_j lie in [cutoff, 1 - cutoff]
};

struct Config {
  Scheme scheme = Scheme::kKgw;  // the provider layer's scheme
  int context_width = 3;         // h: the last h token ids seed each position
  KgwParams kgw;
  SynthIdParams synthid;
  AccountParams account;
  int32_t vocab_size = 0;  // ids must lie in [0, vocab_size); required
  // Distortion-free schemes leave a position unwatermarked when its context already occurred in
  // the same response (with a SequenceState), so that they never lock into repetition.
  bool skip_repeated_contexts = true;

  double provider_share() const { return 1.0 - account.share; }

  // OK when every parameter is in range; InvalidArgument naming the offending one otherwise.
  absl::Status Validate() const;
  // Canonical one-line description, e.g. "scheme=kgw,h=3,gamma=0.25,...".
  std::string Describe() const;
};

// Parses "key=value,key=value" over `base`. Keys: scheme, h, gamma, delta, hash
// (lefthash|selfhash), layers, account_share, payload_share, account_delta, id_bits, check_bits,
// bits_per_symbol, fingerprint_slots, tardos_cutoff, vocab, skip_repeated. An empty spec returns
// `base`.
absl::StatusOr<Config> ParseConfig(absl::string_view spec, Config base);

}  // namespace tracemark::watermark

#endif  // TRACEMARK_WATERMARK_CONFIG_H_
