// The dataset-level canary attribution under fresh keys on one fixed text (docs/canary.md,
// "Validity of the corrected p-value with fresh keys"): over keys, P(corrected <= a) <= a at every
// level, and the counts follow the exact discrete law of the best of N independent accounts.
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tracemark/canary/evidence.h"
#include "tracemark/stats/uniformity.h"

namespace tracemark::canary {
namespace {

// Sets of sizes 2, 2, 3 and 4, and `n` events at random contexts with random members: a text that
// no key touched.
std::vector<Tuple> FixedTuples(uint64_t seed, size_t n, const Lexicon& lex) {
  static const uint32_t kSizes[4] = {2, 2, 3, 4};
  std::mt19937_64 rng(seed);
  std::vector<Event> ev;
  for (size_t i = 0; i < n; ++i) {
    Event e;
    e.set = static_cast<uint32_t>(rng() % 4);
    e.context = rng() % (n / 2);  // repeated contexts: several events per tuple
    e.member = static_cast<uint32_t>(rng() % kSizes[e.set]);
    ev.push_back(e);
  }
  CanaryStatistics s;
  s.Add(ev);
  return s.Tuples(lex);
}

// P(corrected <= a) for the best of `accounts` independent accounts: the best has at least m*
// matches, m* the fewest whose corrected p-value is <= a.
double ExactCorrectedCdf(absl::Span<const Tuple> tuples, uint64_t accounts, double a) {
  const stats::BinomialSum null = NullOfMatches(tuples);
  for (uint64_t m = 0; m <= tuples.size(); ++m) {
    const stats::PValue t = null.UpperTail(m);
    if (stats::Bonferroni(t, accounts).value() <= a) {
      return -std::expm1(static_cast<double>(accounts) * std::log1p(-t.value()));
    }
  }
  return 0;
}

// The corrected p-value of AttributeAmong under `keys` fresh key sets of `accounts` accounts.
std::vector<double> CorrectedOverFreshKeys(absl::Span<const Tuple> tuples, int keys,
                                           uint64_t accounts, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> out;
  for (int r = 0; r < keys; ++r) {
    std::vector<CanaryKey> ks;
    for (uint64_t a = 0; a < accounts; ++a) ks.push_back(CanaryKey::FromSipKey(a, {rng(), rng()}));
    out.push_back(AttributeAmong(tuples, ks, 1, 1).corrected.value());
  }
  return out;
}

TEST(FreshKeysTest, CorrectedPValueIsValidAndFollowsItsExactLaw) {
  const Lexicon lex = *Lexicon::Parse("a\taa|ab\nb\tba|bb\nc\tca|cb|cc\nd\tda|db|dc|dd\n", "sizes");
  constexpr int kKeys = 4000;
  for (uint64_t accounts : {1u, 25u}) {
    for (size_t events : {24u, 80u}) {
      const std::vector<Tuple> tuples = FixedTuples(events, events, lex);
      const std::vector<double> p = CorrectedOverFreshKeys(tuples, kKeys, accounts, 7 + events);
      for (double a : {0.01, 0.05, 0.1, 0.2, 0.5}) {
        const double got = stats::FractionAtOrBelow(p, a) * kKeys;
        const double exact = ExactCorrectedCdf(tuples, accounts, a) * kKeys;
        const double sd = std::sqrt(exact * (1 - exact / kKeys));
        EXPECT_LE(exact, a * kKeys) << a;  // discrete Bonferroni is conservative
        EXPECT_LE(got, a * kKeys + 3 * std::sqrt(a * (1 - a) * kKeys))
            << "level " << a << ", " << accounts << " accounts, " << tuples.size() << " tuples";
        EXPECT_NEAR(got, exact, 4 * sd + 1)
            << "level " << a << ", " << accounts << " accounts, " << tuples.size() << " tuples";
      }
    }
  }
}

}  // namespace
}  // namespace tracemark::canary
