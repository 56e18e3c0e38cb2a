#include <random>
#include <string>

#include "gtest/gtest.h"
#include "tracemark/canary/events.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/suite.h"

namespace tracemark::canary {
namespace {

constexpr char kSmall[] =
    "# test lexicon\n"
    "connective\tnevertheless|nonetheless\n"
    "connective\tfor example|for instance\n"
    "spelling\tcolor|colour\n"
    "hyphenation\temail|e-mail\n";

Lexicon Small() {
  auto lex = Lexicon::Parse(kSmall, "small");
  EXPECT_TRUE(lex.ok()) << lex.status();
  return *std::move(lex);
}

TEST(LexiconTest, ParsesSetsMembersAndDigest) {
  const Lexicon lex = Small();
  ASSERT_EQ(lex.sets().size(), 4u);
  EXPECT_EQ(lex.member_count(), 8u);
  EXPECT_EQ(lex.sets()[1].kind, "connective");
  EXPECT_EQ(lex.sets()[1].members[1], "for instance");
  EXPECT_EQ(lex.digest().size(), 64u);
  ASSERT_NE(lex.StartingWith("for"), nullptr);
  EXPECT_EQ(lex.StartingWith("for")->size(), 2u);
  EXPECT_EQ(lex.StartingWith("example"), nullptr);
}

TEST(LexiconTest, RejectsMalformedLexicons) {
  const char* bad[] = {
      "",                                                            // no sets
      "synonym\tbig\n",                                              // one member
      "synonym\tbig|large\nsynonym\tlarge|huge\n",                   // member in two sets
      "synonym\tBig|large\n",                                        // not lower case
      "synonym\tbig |large\n",                                       // stray space
      "synonym\tfor|since\nconnective\tfor example|for instance\n",  // prefix
      "synonym\ta|b|c|d|e|f|g|h|i\n",                                // too many members
      "nothing-here\n",                                              // no tab
      "synonym\tone two three four|x\n",                             // too many words
      "synonym\tdon''t|do\n",                                        // double joiner
  };
  for (const char* text : bad) {
    EXPECT_FALSE(Lexicon::Parse(text, "bad").ok()) << text;
  }
  auto status = Lexicon::Parse("synonym\tbig|large\nsynonym\tlarge|huge\n", "dup").status();
  EXPECT_NE(status.message().find("line 2"), std::string::npos) << status;
}

TEST(LexiconTest, BuiltInLexiconIsValidAndSizeable) {
  const Lexicon& lex = Lexicon::BuiltIn();
  EXPECT_EQ(lex.version(), "lexicon-v1");
  EXPECT_GE(lex.sets().size(), 100u);
  for (const PhraseSet& s : lex.sets()) {
    EXPECT_TRUE(s.kind == "connective" || s.kind == "synonym" || s.kind == "spelling" ||
                s.kind == "hyphenation")
        << s.kind;
  }
}

TEST(EventsTest, MatchesMembersWithThePreviousWordAsContext) {
  const Lexicon lex = Small();
  const std::string text =
      "The COLOUR was odd. Nevertheless, for instance e-mail works; for the record, colors.";
  const auto ev = ExtractEvents(text, lex);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].set, 2u);  // colour, after "the"
  EXPECT_EQ(ev[0].member, 1u);
  EXPECT_EQ(ev[0].context, ContextId("the"));
  EXPECT_EQ(ev[1].set, 0u);  // nevertheless, after "odd"
  EXPECT_EQ(ev[1].context, ContextId("odd"));
  EXPECT_EQ(ev[2].set, 1u);  // for instance, after "nevertheless"
  EXPECT_EQ(ev[2].member, 1u);
  EXPECT_EQ(ev[2].context, ContextId("nevertheless"));
  EXPECT_EQ(ev[3].set, 3u);  // e-mail, after "instance"
  EXPECT_EQ(ev[3].member, 1u);
  EXPECT_EQ(ev[3].context, ContextId("instance"));
}

TEST(EventsTest, StartOfTextUsesThePrecedingTextOrTheEmptyWord) {
  const Lexicon lex = Small();
  auto ev = ExtractEvents("Nonetheless it held.", lex);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].context, ContextId(""));
  ev = ExtractEvents("Nonetheless it held.", lex, {}, "It was hard...");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].context, ContextId("hard"));
}

TEST(EventsTest, InactiveSetsGiveNoEventButStillConsumeTheirWords) {
  const Lexicon lex = Small();
  const std::vector<uint8_t> active = {15, 0, 15, 15};
  const auto ev = ExtractEvents("for example nevertheless", lex, active);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].set, 0u);
  EXPECT_EQ(ev[0].context, ContextId("example"));
}

TEST(EventsTest, OnlyActiveSurfaceFormsAreEvents) {
  const Lexicon lex = Small();
  const std::vector<uint8_t> spaced_lower = {kFormSpaceLower, 0, 0, 0};
  const std::vector<uint8_t> all = {15, 15, 15, 15};
  EXPECT_EQ(ExtractEvents("it was nevertheless done", lex, spaced_lower).size(), 1u);
  EXPECT_EQ(ExtractEvents("it was Nevertheless done", lex, spaced_lower).size(), 0u);
  EXPECT_EQ(ExtractEvents("it was (nevertheless) done", lex, spaced_lower).size(), 0u);
  EXPECT_EQ(ExtractEvents("it was (nevertheless) done", lex, all).size(), 1u);
  EXPECT_EQ(ExtractEvents("It was.\nNevertheless, done", lex, all).size(), 1u);
  EXPECT_EQ(ExtractEvents("It was.\nNevertheless, done", lex,
                          std::vector<uint8_t>{kFormSpaceUpper, 0, 0, 0})
                .size(),
            0u);
  EXPECT_EQ(ExtractEvents("NEVERTHELESS and NeverTheless", lex, all).size(), 0u);
  // At the start of the text the form follows the preceding text's last byte.
  EXPECT_EQ(
      ExtractEvents("Nevertheless", lex, std::vector<uint8_t>{kFormBareUpper, 0, 0, 0}).size(), 1u);
  EXPECT_EQ(
      ExtractEvents(" Nevertheless", lex, std::vector<uint8_t>{kFormSpaceUpper, 0, 0, 0}).size(),
      1u);
  EXPECT_EQ(ExtractEvents("Nevertheless", lex, std::vector<uint8_t>{kFormBareUpper, 0, 0, 0},
                          "It failed. ")
                .size(),
            0u);
}

TEST(EventsTest, WordsJoinedByApostrophesAndHyphensAreOneWord) {
  const Lexicon lex = Small();
  // "non-color" and "color's" are other words; "color-" ends the word.
  EXPECT_TRUE(ExtractEvents("non-color color's", lex).empty());
  EXPECT_EQ(ExtractEvents("color- based", lex).size(), 1u);
  EXPECT_EQ(ExtractEvents("colorful", lex).size(), 0u);
}

// LastWord reads backwards exactly what the forward segmentation reads.
TEST(EventsTest, LastWordAgreesWithForwardSegmentation) {
  const Lexicon lex = Small();
  std::mt19937_64 rng(7);
  const std::string alphabet = "aZ9 -'.,\n\xc3\xa9";
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const int len = static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) text.push_back(alphabet[rng() % alphabet.size()]);
    // The context of a member appended after a space is the last forward word.
    const auto ev = ExtractEvents(text + " color", lex);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back().context, ContextId(LastWord(text))) << '"' << text << '"';
  }
}

TEST(SuiteTest, BuiltInSuiteParsesWithEnoughPrompts) {
  auto suite = ParseSuite(BuiltInSuiteText());
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_GE(suite->size(), 500u);
  const size_t sets = Lexicon::BuiltIn().sets().size();
  for (const SuitePrompt& p : *suite) {
    EXPECT_FALSE(p.prompt.empty());
    EXPECT_FALSE(p.prefix.empty());
    for (uint32_t t : p.targets) EXPECT_LT(t, sets) << p.id;
  }
}

TEST(SuiteTest, RejectsMalformedSuites) {
  EXPECT_FALSE(ParseSuite("").ok());
  EXPECT_FALSE(ParseSuite("{\"id\": \"a\"}\n").ok());
  EXPECT_FALSE(ParseSuite("not json\n").ok());
  EXPECT_FALSE(ParseSuite("{\"id\":\"a\",\"prompt\":\"p\",\"prefix\":\"x\"}\n"
                          "{\"id\":\"a\",\"prompt\":\"p\",\"prefix\":\"x\"}\n")
                   .ok());
  EXPECT_FALSE(
      ParseSuite("{\"id\":\"a\",\"prompt\":\"p\",\"prefix\":\"x\",\"targets\":[-1]}\n").ok());
  EXPECT_TRUE(
      ParseSuite("{\"id\":\"a\",\"prompt\":\"p\",\"prefix\":\"x\",\"targets\":[3]}\n").ok());
}

}  // namespace
}  // namespace tracemark::canary
