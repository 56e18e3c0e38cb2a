#include <cmath>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "tracemark/canary/evidence.h"
#include "tracemark/canary/processor.h"
#include "tracemark/stats/uniformity.h"
#include "tracemark/tokenizer/tiktoken.h"
#include "tracemark/watermark/detector.h"

namespace tracemark::canary {
namespace {

constexpr char kSmall[] =
    "connective\tnevertheless|nonetheless\n"
    "connective\tfor example|for instance\n"
    "spelling\tcolor|colour\n"
    "synonym\tbuy|purchase|zzqxv\n"  // the last member is several tokens
    "synonym\tqqzzv|vvxqq\n";        // no exact member: inactive

CanaryKey KeyFor(uint64_t account) {
  return CanaryKey::FromSipKey(account, {0x1234 + account * 7919, account ^ 0xabcdef});
}

class ProcessorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = tokenizer::LoadTiktokenFromDataDir(TRACEMARK_DATA_DIR, "cl100k_base");
    if (!tok.ok()) return;
    tok_ = std::move(*tok).release();
    lex_ = new Lexicon(*Lexicon::Parse(kSmall, "small"));
    proc_ = CanaryProcessor::Create(lex_, *tok_)->release();
  }
  void SetUp() override {
    TRACEMARK_REQUIRE_DATA(tok_ != nullptr, "the cl100k_base tokenizer data");
  }
  static int32_t Id(const std::string& s) {
    auto ids = tok_->Encode(s);
    EXPECT_EQ(ids->size(), 1u) << s;
    return (*ids)[0];
  }
  static std::vector<int32_t> Ids(const std::string& s) { return *tok_->Encode(s); }
  static inline tokenizer::Tokenizer* tok_ = nullptr;
  static inline Lexicon* lex_ = nullptr;
  static inline CanaryProcessor* proc_ = nullptr;
};

TEST_F(ProcessorTest, ActiveSetsFollowTheTokenizer) {
  EXPECT_EQ(proc_->active_sets(), (std::vector<bool>{true, true, true, true, false}));
  EXPECT_EQ(proc_->active_count(), 4u);
}

TEST_F(ProcessorTest, SparseGivesTheSetMassToTheKeyedMember) {
  const std::vector<int32_t> history = Ids("The plan was bold.");
  const int32_t nev = Id(" nevertheless"), non = Id(" nonetheless"), the = Id(" the");
  for (uint64_t account = 0; account < 20; ++account) {
    const CanaryKey key = KeyFor(account);
    std::vector<watermark::Candidate> c = {{the, 1.0f}, {nev, 0.5f}, {non, -0.25f}};
    auto moved = proc_->ProcessSparse(&key, history, absl::MakeSpan(c));
    ASSERT_TRUE(moved.ok()) << moved.status();
    EXPECT_EQ(*moved, 1);
    const uint32_t choice = key.Choice(0, 2, ContextId("bold"));
    const double total = std::log(std::exp(0.5) + std::exp(-0.25));
    EXPECT_EQ(c[0].logit, 1.0f);  // other tokens untouched
    EXPECT_NEAR(c[1 + choice].logit, total, 1e-6);
    EXPECT_EQ(c[2 - choice].logit, -INFINITY);
  }
}

TEST_F(ProcessorTest, SparseRewritesAnAbsentKeyedMember) {
  const std::vector<int32_t> history = Ids("The plan was bold.");
  const int32_t nev = Id(" nevertheless"), non = Id(" nonetheless");
  int rewrites = 0;
  for (uint64_t account = 0; account < 40; ++account) {
    const CanaryKey key = KeyFor(account);
    std::vector<watermark::Candidate> c = {{nev, 0.5f}};
    ASSERT_EQ(*proc_->ProcessSparse(&key, history, absl::MakeSpan(c)), 1);
    const uint32_t choice = key.Choice(0, 2, ContextId("bold"));
    EXPECT_EQ(c[0].id, choice == 0 ? nev : non);
    EXPECT_EQ(c[0].logit, 0.5f);
    rewrites += choice == 1;
  }
  EXPECT_GT(rewrites, 5);
}

TEST_F(ProcessorTest, MultiTokenKeyedMemberIsCompletedThroughTheState) {
  const Lexicon& lex = *lex_;
  std::vector<int32_t> history = Ids("We will");
  const uint64_t ctx = ContextId("will");
  uint64_t account = 0;
  while (KeyFor(account).Choice(3, 3, ctx) != 2) ++account;
  const CanaryKey key = KeyFor(account);
  const int32_t buy = Id(" buy"), purchase = Id(" purchase"), the = Id(" the");
  CanaryState state;
  // Without a state the set is left alone at this step.
  std::vector<watermark::Candidate> c = {{buy, 1.0f}, {purchase, 0.0f}, {the, 0.5f}};
  EXPECT_EQ(*proc_->ProcessSparse(&key, history, absl::MakeSpan(c)), 0);
  EXPECT_EQ(c[0].logit, 1.0f);
  // With one: the keyed member's first token takes the exact members' slot and mass, and its
  // continuation is forced at the following steps.
  ASSERT_EQ(*proc_->ProcessSparse(&key, history, absl::MakeSpan(c), &state), 1);
  const std::vector<int32_t> member = Ids(" zzqxv");
  ASSERT_GT(member.size(), 1u);
  EXPECT_EQ(c[0].id, member[0]);
  EXPECT_NEAR(c[0].logit, std::log(std::exp(1.0) + 1.0), 1e-6);
  EXPECT_EQ(c[1].logit, -INFINITY);
  EXPECT_EQ(c[2].logit, 0.5f);
  history.push_back(member[0]);
  for (size_t i = 1; i < member.size(); ++i) {
    std::vector<watermark::Candidate> next = {{the, 0.0f}, {buy, 2.0f}};
    ASSERT_EQ(*proc_->ProcessSparse(&key, history, absl::MakeSpan(next), &state), 1);
    const auto chosen =
        std::find_if(next.begin(), next.end(), [](const auto& x) { return x.logit == 0.0f; });
    ASSERT_NE(chosen, next.end());
    EXPECT_EQ(chosen->id, member[i]);
    for (const auto& x : next) EXPECT_TRUE(&x == &*chosen || x.logit == -INFINITY);
    history.push_back(member[i]);
  }
  EXPECT_FALSE(state.busy());
  const auto ev = ExtractEvents(*tok_->Decode(history), lex, proc_->active_forms());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].set, 3u);
  EXPECT_EQ(ev[0].member, 2u);
}

TEST_F(ProcessorTest, MovedMassIsAddedToANaturalFirstToken) {
  const std::vector<int32_t> history = Ids("We will");
  const uint64_t ctx = ContextId("will");
  uint64_t account = 0;
  while (KeyFor(account).Choice(3, 3, ctx) != 2) ++account;
  const CanaryKey key = KeyFor(account);
  const std::vector<int32_t> member = Ids(" zzqxv");
  std::vector<float> row(static_cast<size_t>(proc_->vocab_size()), -5.0f);
  row[static_cast<size_t>(Id(" buy"))] = 1.0f;
  row[static_cast<size_t>(member[0])] = 0.0f;  // the first token has mass of its own
  CanaryState state;
  ASSERT_GE(*proc_->ProcessDense(&key, history, absl::MakeSpan(row), &state), 1);
  const double p = std::exp(1.0) + std::exp(-5.0), q = 1.0;
  EXPECT_NEAR(row[static_cast<size_t>(member[0])], std::log(p + q), 1e-5);
  EXPECT_EQ(row[static_cast<size_t>(Id(" buy"))], -INFINITY);
  EXPECT_TRUE(state.busy());
  // If another token is sampled instead, nothing is forced.
  std::vector<int32_t> other = history;
  other.push_back(Id(" the"));
  std::vector<float> next(static_cast<size_t>(proc_->vocab_size()), 0.0f);
  ASSERT_TRUE(proc_->ProcessDense(&key, other, absl::MakeSpan(next), &state).ok());
  EXPECT_GT(std::count(next.begin(), next.end(), 0.0f), 1000);
}

TEST_F(ProcessorTest, PhraseSetsChooseAfterTheSharedPrefix) {
  const int32_t example = Id(" example"), instance = Id(" instance");
  const std::vector<int32_t> after_for = Ids("It works well, for");
  const std::vector<int32_t> elsewhere = Ids("It works well, as");
  const CanaryKey key = KeyFor(3);
  std::vector<watermark::Candidate> c = {{example, 0.0f}, {instance, 0.0f}};
  ASSERT_EQ(*proc_->ProcessSparse(&key, elsewhere, absl::MakeSpan(c)), 0);
  ASSERT_EQ(*proc_->ProcessSparse(&key, after_for, absl::MakeSpan(c)), 1);
  const uint32_t choice = key.Choice(1, 2, ContextId("well"));  // the word before "for"
  EXPECT_NEAR(c[choice].logit, std::log(2.0), 1e-6);
  EXPECT_EQ(c[1 - choice].logit, -INFINITY);
}

TEST_F(ProcessorTest, CapitalisedFormsAndBoundaries) {
  // A set whose bare capitalised form is one token per member with this tokenizer.
  std::vector<int32_t> pair;
  for (auto [a, b] :
       {std::pair<const char*, const char*>{"Nevertheless", "Nonetheless"}, {"Color", "Colour"}}) {
    if (Ids(a).size() == 1 && Ids(b).size() == 1) {
      pair = {Ids(a)[0], Ids(b)[0]};
      break;
    }
  }
  ASSERT_EQ(pair.size(), 2u) << "no bare capitalised form fits cl100k_base";
  const CanaryKey key = KeyFor(5);
  std::vector<watermark::Candidate> c = {{pair[0], 0.0f}, {pair[1], 0.0f}};
  // After a newline the bare form starts a word; after a letter it would not.
  ASSERT_EQ(*proc_->ProcessSparse(&key, Ids("It failed.\n"), absl::MakeSpan(c)), 1);
  std::vector<watermark::Candidate> d = {{pair[0], 0.0f}, {pair[1], 0.0f}};
  ASSERT_EQ(*proc_->ProcessSparse(&key, Ids("It failed"), absl::MakeSpan(d)), 0);
  EXPECT_EQ(d[0].logit, 0.0f);
}

TEST_F(ProcessorTest, DenseAndBatchAgreeWithSparseOnTheMembers) {
  const std::vector<int32_t> history = Ids("Their color was a deep");
  const auto v = static_cast<size_t>(proc_->vocab_size());
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> row(v);
  for (float& x : row) x = normal(rng);
  const CanaryKey key = KeyFor(11);
  std::vector<float> dense = row;
  auto moved = proc_->ProcessDense(&key, history, absl::MakeSpan(dense));
  ASSERT_TRUE(moved.ok());
  EXPECT_GE(*moved, 2);  // at least the spaced lower-case forms of "nevertheless" and "color"
  const int32_t color = Id(" color"), colour = Id(" colour");
  const uint32_t choice = key.Choice(2, 2, ContextId("deep"));
  const int32_t target = choice == 0 ? color : colour, other = choice == 0 ? colour : color;
  EXPECT_EQ(dense[static_cast<size_t>(other)], -INFINITY);
  const double total = std::log(std::exp(double{row[static_cast<size_t>(color)]}) +
                                std::exp(double{row[static_cast<size_t>(colour)]}));
  EXPECT_NEAR(dense[static_cast<size_t>(target)], total, 1e-5);
  std::vector<watermark::Candidate> c = {{color, row[static_cast<size_t>(color)]},
                                         {colour, row[static_cast<size_t>(colour)]}};
  ASSERT_EQ(*proc_->ProcessSparse(&key, history, absl::MakeSpan(c)), 1);
  EXPECT_EQ(c[choice].logit, dense[static_cast<size_t>(target)]);
  // Batch: two rows, the second without a key, equal to the dense calls.
  std::vector<float> batch = row;
  batch.insert(batch.end(), row.begin(), row.end());
  const CanaryKey* keys[2] = {&key, nullptr};
  const absl::Span<const int32_t> histories[2] = {history, history};
  int counts[2];
  ASSERT_TRUE(
      proc_->ProcessBatch(keys, histories, absl::MakeSpan(batch), absl::MakeSpan(counts)).ok());
  EXPECT_EQ(counts[0], *moved);
  EXPECT_EQ(counts[1], 0);
  EXPECT_TRUE(std::equal(dense.begin(), dense.end(), batch.begin()));
  EXPECT_TRUE(std::equal(row.begin(), row.end(), batch.begin() + static_cast<ptrdiff_t>(v)));
}

TEST_F(ProcessorTest, BadInputIsRejectedWithNothingModified) {
  const CanaryKey key = KeyFor(1);
  const int32_t nev = Id(" nevertheless"), non = Id(" nonetheless");
  std::vector<watermark::Candidate> c = {{nev, 0.5f}, {non, NAN}};
  EXPECT_FALSE(proc_->ProcessSparse(&key, Ids("x"), absl::MakeSpan(c)).ok());
  EXPECT_EQ(c[0].logit, 0.5f);
  c = {{nev, 0.5f}, {-3, 0.0f}};
  EXPECT_FALSE(proc_->ProcessSparse(&key, Ids("x"), absl::MakeSpan(c)).ok());
  std::vector<float> short_row(10, 0.0f);
  EXPECT_FALSE(proc_->ProcessDense(&key, Ids("x"), absl::MakeSpan(short_row)).ok());
  std::vector<int32_t> bad_history = {1, 2, proc_->vocab_size()};
  c = {{nev, 0.5f}, {non, 0.0f}};
  EXPECT_FALSE(proc_->ProcessSparse(&key, bad_history, absl::MakeSpan(c)).ok());
  EXPECT_EQ(c[0].id, nev);
}

TEST(CanaryKeyTest, ChoicesAreUniformAndKeyed) {
  const CanaryKey a = KeyFor(1), b = KeyFor(2);
  int counts[3] = {0, 0, 0};
  int agree = 0;
  const int n = 30000;
  for (int i = 0; i < n; ++i) {
    const uint64_t ctx = ContextId(std::to_string(i));
    const uint32_t c = a.Choice(7, 3, ctx);
    ASSERT_LT(c, 3u);
    ++counts[c];
    agree += c == b.Choice(7, 3, ctx);
    EXPECT_EQ(c, a.Choice(7, 3, ctx));
  }
  for (int c : counts) EXPECT_NEAR(c, n / 3.0, 5 * std::sqrt(n * 2.0 / 9));
  EXPECT_NEAR(agree, n / 3.0, 5 * std::sqrt(n * 2.0 / 9));
}

TEST(CanaryKeyTest, DerivationIsDeterministicAndPerAccount) {
  auto epoch = watermark::Key::FromBytes(std::vector<uint8_t>(32, 4));
  auto a1 = CanaryKey::Derive(*epoch, 1), a1b = CanaryKey::Derive(*epoch, 1);
  auto a2 = CanaryKey::Derive(*epoch, 2);
  int same = 0, differ = 0;
  for (uint64_t ctx = 0; ctx < 200; ++ctx) {
    same += a1->Choice(0, 4, ctx) == a1b->Choice(0, 4, ctx);
    differ += a1->Choice(0, 4, ctx) != a2->Choice(0, 4, ctx);
  }
  EXPECT_EQ(same, 200);
  EXPECT_GT(differ, 100);
  // The watermark's account keys carry the same canary key.
  watermark::Config config;
  config.vocab_size = 1000;
  auto det = watermark::Detector::Create(*epoch, config);
  ASSERT_TRUE(det.ok()) << det.status();
  auto keys = (*det)->ForAccount(1);
  ASSERT_TRUE(keys.ok());
  const CanaryKey from_keys = CanaryKey::FromAccountKeys(*keys);
  EXPECT_EQ(from_keys.account(), 1u);
  for (uint64_t ctx = 0; ctx < 50; ++ctx) {
    EXPECT_EQ(from_keys.Choice(3, 4, ctx), a1->Choice(3, 4, ctx));
  }
}

std::vector<Event> RandomEvents(std::mt19937_64& rng, size_t n, const CanaryKey* follow) {
  // Sets 0..3 of sizes 2, 2, 3, 4; members chosen by `follow`'s key or uniformly at random.
  static const uint32_t kSizes[4] = {2, 2, 3, 4};
  std::vector<Event> ev;
  for (size_t i = 0; i < n; ++i) {
    Event e;
    e.set = static_cast<uint32_t>(rng() % 4);
    e.context = rng();
    e.member = follow != nullptr ? follow->Choice(e.set, kSizes[e.set], e.context)
                                 : static_cast<uint32_t>(rng() % kSizes[e.set]);
    ev.push_back(e);
  }
  return ev;
}

Lexicon Sizes() {
  return *Lexicon::Parse("a\taa|ab\nb\tba|bb\nc\tca|cb|cc\nd\tda|db|dc|dd\n", "sizes");
}

TEST(EvidenceTest, NullPValuesAreUniformOnIndependentText) {
  const Lexicon lex = Sizes();
  std::mt19937_64 rng(99);
  std::vector<double> ps;
  for (int doc = 0; doc < 3000; ++doc) {
    CanaryStatistics s;
    s.Add(RandomEvents(rng, 20, nullptr));
    const auto tuples = s.Tuples(lex);
    // Exact tests of discrete statistics are uniform after randomising within the atom; here
    // check validity: P(p <= a) <= a at several levels.
    ps.push_back(TestAccount(tuples, KeyFor(static_cast<uint64_t>(doc))).p.value());
  }
  for (double a : {0.01, 0.05, 0.2, 0.5}) {
    EXPECT_LE(stats::FractionAtOrBelow(ps, a), a * 1.15 + 0.004) << a;
  }
  EXPECT_GE(stats::FractionAtOrBelow(ps, 0.5), 0.35);  // not degenerate
}

TEST(EvidenceTest, OwnTextIsAttributedAmongManyAccounts) {
  const Lexicon lex = Sizes();
  std::mt19937_64 rng(5);
  std::vector<CanaryKey> keys;
  for (uint64_t a = 0; a < 2000; ++a) keys.push_back(KeyFor(a));
  CanaryStatistics s;
  s.Add(RandomEvents(rng, 60, &keys[1234]));
  const auto tuples = s.Tuples(lex);
  const CanaryAttribution at = AttributeAmong(tuples, keys, 3, 2);
  ASSERT_EQ(at.top.size(), 3u);
  EXPECT_EQ(at.top[0].account, 1234u);
  EXPECT_EQ(at.top[0].matches, tuples.size());
  EXPECT_EQ(at.accounts_tried, 2000u);
  EXPECT_LT(at.corrected.log10(), -12);
  EXPECT_GT(at.top[1].p.log10(), -6);
}

TEST(EvidenceTest, CohortTestPoolsItsAccounts) {
  const Lexicon lex = Sizes();
  std::mt19937_64 rng(8);
  std::vector<CanaryKey> cohort, innocent;
  for (uint64_t a = 0; a < 10; ++a) cohort.push_back(KeyFor(a));
  for (uint64_t a = 100; a < 110; ++a) innocent.push_back(KeyFor(a));
  CanaryStatistics pooled;
  for (int doc = 0; doc < 200; ++doc) pooled.Add(RandomEvents(rng, 5, &cohort[doc % 10]));
  const auto tuples = pooled.Tuples(lex);
  const CohortResult guilty = TestCohort(tuples, cohort);
  const CohortResult clean = TestCohort(tuples, innocent);
  EXPECT_EQ(guilty.accounts, 10u);
  EXPECT_LT(guilty.p.log10(), -20);
  EXPECT_GT(clean.p.log10(), -4);
  // Duplicated accounts are counted once.
  std::vector<CanaryKey> doubled = cohort;
  doubled.insert(doubled.end(), cohort.begin(), cohort.end());
  EXPECT_EQ(TestCohort(tuples, doubled).accounts, 10u);
  EXPECT_LE(guilty.combined_p.log10(), std::log10(2.0) + guilty.p.log10() + 1e-9);
  EXPECT_GT(clean.combined_p.log10(), -4);
}

TEST(EvidenceTest, CohortTestFindsItsHeaviestContributor) {
  // One member supplied most of the text, 49 others a little: the sum dilutes it, the heaviest
  // contributor does not.
  const Lexicon lex = Sizes();
  std::mt19937_64 rng(9);
  std::vector<CanaryKey> cohort, innocent;
  for (uint64_t a = 0; a < 50; ++a) cohort.push_back(KeyFor(a));
  for (uint64_t a = 500; a < 550; ++a) innocent.push_back(KeyFor(a));
  CanaryStatistics pooled;
  for (int doc = 0; doc < 60; ++doc) pooled.Add(RandomEvents(rng, 5, &cohort[7]));
  for (int doc = 0; doc < 49; ++doc) pooled.Add(RandomEvents(rng, 1, &cohort[1 + doc % 49]));
  const auto tuples = pooled.Tuples(lex);
  const CohortResult r = TestCohort(tuples, cohort);
  EXPECT_EQ(r.best_account, 7u);
  EXPECT_LT(r.best_member_p.log10(), -30);
  EXPECT_LT(r.combined_p.log10(), r.p.log10() - 10);
  const CohortResult clean = TestCohort(tuples, innocent);
  EXPECT_GT(clean.combined_p.log10(), -4);
  EXPECT_GT(clean.best_member_p.log10(), -4);
}

TEST(EvidenceTest, StatisticsMergeAndMajority) {
  const Lexicon lex = Sizes();
  CanaryStatistics a, b;
  a.Add(std::vector<Event>{{2, 0, 9}, {2, 1, 9}});
  b.Add(std::vector<Event>{{2, 1, 9}, {0, 1, 4}});
  a.Merge(b);
  EXPECT_EQ(a.events(), 4u);
  const auto t = a.Tuples(lex);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].set, 0u);
  EXPECT_EQ(t[1].set, 2u);
  EXPECT_EQ(t[1].member, 1u);  // 2 votes against 1
  EXPECT_EQ(t[1].set_size, 3u);
}

}  // namespace
}  // namespace tracemark::canary
