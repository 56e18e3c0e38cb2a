#include "tracemark/tokenizer/hf_tokenizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "hf_bpe.h"
#include "split_regex.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::tokenizer {
namespace {

using Json = nlohmann::json;

// Debian's Abseil is built without std::string_view support, so absl::StrCat needs this.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---------------------------------------------------------------------------------------------
// UTF-8 on text already known to be valid.

// Length of the sequence whose lead byte is `lead`.
inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

char32_t DecodeCodePoint(std::string_view s, size_t i, size_t* length) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  *length = Utf8Length(b0);
  char32_t cp = *length == 1   ? b0
                : *length == 2 ? (b0 & 0x1F)
                : *length == 3 ? (b0 & 0x0F)
                               : b0 & 7;
  for (size_t k = 1; k < *length; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

void AppendCodePoint(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty() || s->find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s->find(from, pos);
    if (hit == std::string::npos) break;
    out.append(*s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// ---------------------------------------------------------------------------------------------
// GPT-2's byte-level alphabet: every byte is shown as one printable code point. Printable
// Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes take
// U+0100, U+0101, ... in byte order.

struct ByteAlphabet {
  std::array<char32_t, 256> to_code_point{};
  absl::flat_hash_map<char32_t, uint8_t> to_byte;

  ByteAlphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_code_point[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_code_point[b]] = static_cast<uint8_t>(b);
    }
  }

  // The bytes a vocabulary string stands for, or false if it has a code point outside the
  // alphabet (such a token can never be produced from text, and the library's decoder then
  // keeps its UTF-8 as is).
  bool ToBytes(std::string_view s, std::string* out) const {
    out->clear();
    for (size_t i = 0; i < s.size();) {
      size_t length;
      const char32_t cp = DecodeCodePoint(s, i, &length);
      auto it = to_byte.find(cp);
      if (it == to_byte.end()) return false;
      out->push_back(static_cast<char>(it->second));
      i += length;
    }
    return true;
  }
};

const ByteAlphabet& Alphabet() {
  static const auto* alphabet = new ByteAlphabet();
  return *alphabet;
}

// GPT-2's pre-tokenization regex, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 '▁'

// "<0xAB>" -> 0xAB; false for anything else.
bool ParseByteToken(std::string_view s, uint8_t* byte) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return false;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(s[3]);
  const int lo = hex(s[4]);
  if (hi < 0 || lo < 0) return false;
  *byte = static_cast<uint8_t>(hi * 16 + lo);
  return true;
}

std::string ByteTokenName(int b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string{'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
}

// ---------------------------------------------------------------------------------------------
// Reading the JSON without exceptions: each accessor names the JSON path of a fault.

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  template <typename... Parts>
  absl::Status Invalid(std::string_view path, const Parts&... parts) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", Sv(path), ": ", parts...));
  }
  template <typename... Parts>
  absl::Status Unimplemented(std::string_view path, const Parts&... parts) const {
    return absl::UnimplementedError(
        absl::StrCat(source_, ": ", Sv(path), ": ", parts...,
                     " is not supported by tracemark's HfTokenizer (see hf_tokenizer.h)"));
  }

  // The member `key` of object `j`, or nullptr if absent.
  static const Json* Member(const Json& j, std::string_view key) {
    auto it = j.find(std::string(key));
    return it == j.end() ? nullptr : &*it;
  }

  absl::StatusOr<const Json*> Object(const Json& j, std::string_view key,
                                     std::string_view path) const {
    const Json* m = Member(j, key);
    if (m == nullptr || !m->is_object()) {
      return Invalid(absl::StrCat(Sv(path), ".", Sv(key)), "expected an object");
    }
    return m;
  }

  absl::StatusOr<std::string> String(const Json& j, std::string_view key,
                                     std::string_view path) const {
    const Json* m = Member(j, key);
    if (m == nullptr || !m->is_string()) {
      return Invalid(absl::StrCat(Sv(path), ".", Sv(key)), "expected a string");
    }
    return m->get<std::string>();
  }

  // A boolean member; `fallback` if absent or null.
  absl::StatusOr<bool> Bool(const Json& j, std::string_view key, std::string_view path,
                            bool fallback) const {
    const Json* m = Member(j, key);
    if (m == nullptr || m->is_null()) return fallback;
    if (!m->is_boolean()) {
      return Invalid(absl::StrCat(Sv(path), ".", Sv(key)), "expected true or false");
    }
    return m->get<bool>();
  }

  absl::StatusOr<int32_t> Id(const Json& j, std::string_view path) const {
    if (!j.is_number_integer() || j.get<int64_t>() < 0 ||
        j.get<int64_t>() >= std::numeric_limits<int32_t>::max()) {
      return Invalid(path, "expected a token id (an integer in [0, 2^31 - 1))");
    }
    return static_cast<int32_t>(j.get<int64_t>());
  }

  // The "type" of a component.
  absl::StatusOr<std::string> Type(const Json& j, std::string_view path) const {
    if (!j.is_object()) return Invalid(path, "expected an object");
    return String(j, "type", path);
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

// Escapes that Oniguruma and PCRE2 read differently (Oniguruma's \h is a hex digit, PCRE2's a
// horizontal space, and so on). A pattern using one is refused rather than run differently.
absl::Status CheckPortableRegex(const Reader& reader, std::string_view path,
                                std::string_view pattern) {
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '\\') continue;
    const char e = pattern[++i];
    if (std::string_view("hHRXKgGkNOyY").find(e) != std::string_view::npos) {
      return reader.Unimplemented(path, "the regex escape \\", std::string(1, e),
                                  " (its meaning differs between Oniguruma and PCRE2)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The tokenizer's state: the pipeline parsed from the file and the model.

namespace internal {

struct HfState {
  enum class Kind : uint8_t { kHole, kVocab, kAdded, kSpecial };
  enum class DecoderKind : uint8_t { kByteLevel, kMetaspaceByteFallback };

  struct NormalizerStep {
    enum class Type : uint8_t { kUnicode, kPrepend, kReplace } type;
    const icu::Normalizer2* unicode = nullptr;
    std::string a;  // Prepend: the prefix; Replace: the pattern.
    std::string b;  // Replace: the replacement.
  };

  struct SplitStep {
    internal::PcreCode regex;  // Null for a String pattern.
    std::string literal;
    bool remove_delimiters = false;  // Behaviour Removed; otherwise Isolated.
    bool invert = false;
  };

  struct AddedToken {
    std::string content;
    int32_t id;
    bool special;
  };

  // Leftmost-longest matching of added-token contents, as the library's Aho-Corasick automaton
  // (MatchKind::LeftmostLongest) does.
  struct AddedMatcher {
    std::vector<AddedToken> tokens;  // Longest first.
    std::array<bool, 256> first_byte{};

    void Finish() {
      std::stable_sort(tokens.begin(), tokens.end(), [](const AddedToken& x, const AddedToken& y) {
        return x.content.size() > y.content.size();
      });
      for (const AddedToken& t : tokens)
        first_byte[static_cast<unsigned char>(t.content[0])] = true;
    }
    bool empty() const { return tokens.empty(); }

    // The leftmost-longest match at or after `from`: its start and token, or nullptr.
    const AddedToken* Find(std::string_view text, size_t from, size_t* start) const {
      for (size_t i = from; i < text.size(); ++i) {
        if (!first_byte[static_cast<unsigned char>(text[i])]) continue;
        const std::string_view rest = text.substr(i);
        for (const AddedToken& t : tokens) {
          if (rest.substr(0, t.content.size()) == t.content) {
            *start = i;
            return &t;
          }
        }
      }
      return nullptr;
    }
  };

  std::string name;

  // Pipeline.
  AddedMatcher raw_added;         // Added tokens with normalized == false.
  AddedMatcher normalized_added;  // Added tokens with normalized == true.
  std::vector<NormalizerStep> normalizer;
  std::vector<SplitStep> splits;
  bool byte_level = false;  // A ByteLevel pre-tokenizer ends the pipeline.
  bool add_prefix_space = false;
  internal::PcreCode byte_level_regex;  // Null unless use_regex.

  // Model. Keys of `vocab` are bytes for a byte-level model (the alphabet undone) and the
  // vocabulary strings otherwise; they point into `keys`.
  std::string keys;
  absl::flat_hash_map<std::string_view, int32_t> vocab;
  internal::MergeMap merges;
  std::array<int32_t, 256> byte_ids{};  // Byte-level symbols, or byte-fallback tokens.
  bool ignore_merges = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  int32_t unk_id = -1;

  // Decoding.
  DecoderKind decoder = DecoderKind::kByteLevel;
  std::vector<std::string> token_bytes;                 // Indexed by id.
  std::vector<Kind> kinds;                              // Indexed by id.
  absl::flat_hash_map<std::string, int32_t> token_ids;  // Vocabulary and added strings.

  absl::Status CheckId(int32_t id, size_t position) const {
    if (id < 0 || static_cast<size_t>(id) >= kinds.size()) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", position,
                                                     " is outside [0, ", kinds.size(), ")"));
    }
    if (kinds[id] == Kind::kHole) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", position,
                                                     " is not assigned to any token in ", name));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Normalize(std::string_view text) const;
  absl::Status EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const;
  absl::Status EncodeNormalized(std::string_view text, std::vector<int32_t>* ids) const;
  absl::Status PreTokenize(size_t step, std::string_view piece, std::vector<int32_t>* ids) const;
  absl::Status EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;
};

}  // namespace internal

struct HfTokenizer::Rep : internal::HfState {};

// ---------------------------------------------------------------------------------------------
// Loading.

namespace {

using Rep = internal::HfState;

absl::Status ParseNormalizer(const Reader& reader, const Json& j, const std::string& path,
                             std::vector<Rep::NormalizerStep>* steps) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string type, reader.Type(j, path));
  if (type == "Sequence") {
    const Json* list = Reader::Member(j, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return reader.Invalid(path + ".normalizers", "expected an array");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      TRACEMARK_RETURN_IF_ERROR(
          ParseNormalizer(reader, (*list)[i], absl::StrCat(path, ".normalizers[", i, "]"), steps));
    }
    return absl::OkStatus();
  }
  Rep::NormalizerStep step;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.type = Rep::NormalizerStep::Type::kUnicode;
    UErrorCode status = U_ZERO_ERROR;
    step.unicode = type == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
                   : type == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
                   : type == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                                    : icu::Normalizer2::getNFKDInstance(status);
    if (U_FAILURE(status) || step.unicode == nullptr) {
      return absl::InternalError(
          absl::StrCat("ICU has no ", type, " normalizer: ", u_errorName(status)));
    }
  } else if (type == "Prepend") {
    step.type = Rep::NormalizerStep::Type::kPrepend;
    TRACEMARK_ASSIGN_OR_RETURN(step.a, reader.String(j, "prepend", path));
  } else if (type == "Replace") {
    step.type = Rep::NormalizerStep::Type::kReplace;
    TRACEMARK_ASSIGN_OR_RETURN(const Json* pattern, reader.Object(j, "pattern", path));
    const Json* literal = Reader::Member(*pattern, "String");
    if (literal == nullptr) {
      return reader.Unimplemented(path + ".pattern", "a Replace pattern other than String");
    }
    if (!literal->is_string() || literal->get<std::string>().empty()) {
      return reader.Invalid(path + ".pattern.String", "expected a non-empty string");
    }
    step.a = literal->get<std::string>();
    TRACEMARK_ASSIGN_OR_RETURN(step.b, reader.String(j, "content", path));
  } else {
    return reader.Unimplemented(path, "the normalizer \"", type, "\"");
  }
  steps->push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status ParsePreTokenizer(const Reader& reader, const Json& j, const std::string& path,
                               Rep* rep) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string type, reader.Type(j, path));
  if (rep->byte_level) {
    return reader.Unimplemented(path, "a pre-tokenizer after ByteLevel");
  }
  if (type == "Sequence") {
    const Json* list = Reader::Member(j, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return reader.Invalid(path + ".pretokenizers", "expected an array");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      TRACEMARK_RETURN_IF_ERROR(ParsePreTokenizer(
          reader, (*list)[i], absl::StrCat(path, ".pretokenizers[", i, "]"), rep));
    }
    return absl::OkStatus();
  }
  if (type == "Split") {
    Rep::SplitStep step;
    TRACEMARK_ASSIGN_OR_RETURN(const Json* pattern, reader.Object(j, "pattern", path));
    const Json* regex = Reader::Member(*pattern, "Regex");
    const Json* literal = Reader::Member(*pattern, "String");
    if (regex != nullptr) {
      if (!regex->is_string()) return reader.Invalid(path + ".pattern.Regex", "expected a string");
      const std::string source = regex->get<std::string>();
      TRACEMARK_RETURN_IF_ERROR(CheckPortableRegex(reader, path + ".pattern.Regex", source));
      auto compiled =
          internal::CompileSplitPattern(internal::WithWhiteSpaceClass(source), "the regex");
      if (!compiled.ok()) {
        return reader.Invalid(path + ".pattern.Regex", compiled.status().message());
      }
      step.regex = std::move(compiled).value();
    } else if (literal != nullptr) {
      if (!literal->is_string() || literal->get<std::string>().empty()) {
        return reader.Invalid(path + ".pattern.String", "expected a non-empty string");
      }
      step.literal = literal->get<std::string>();
    } else {
      return reader.Invalid(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    TRACEMARK_ASSIGN_OR_RETURN(std::string behavior, reader.String(j, "behavior", path));
    if (behavior == "Removed") {
      step.remove_delimiters = true;
    } else if (behavior != "Isolated") {
      return reader.Unimplemented(path + ".behavior", "the split behaviour \"", behavior, "\"");
    }
    TRACEMARK_ASSIGN_OR_RETURN(step.invert, reader.Bool(j, "invert", path, false));
    rep->splits.push_back(std::move(step));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    rep->byte_level = true;
    TRACEMARK_ASSIGN_OR_RETURN(rep->add_prefix_space,
                               reader.Bool(j, "add_prefix_space", path, true));
    TRACEMARK_ASSIGN_OR_RETURN(bool use_regex, reader.Bool(j, "use_regex", path, true));
    if (use_regex) {
      TRACEMARK_ASSIGN_OR_RETURN(
          rep->byte_level_regex,
          internal::CompileSplitPattern(internal::WithWhiteSpaceClass(kGpt2Pattern),
                                        "GPT-2's pattern"));
    }
    return absl::OkStatus();
  }
  return reader.Unimplemented(path, "the pre-tokenizer \"", type, "\"");
}

// Llama 2's decoder: Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0).
bool IsMetaspaceByteFallbackDecoder(const Json& j) {
  const Json* list = Reader::Member(j, "decoders");
  if (list == nullptr || !list->is_array() || list->size() != 4) return false;
  const Json& replace = (*list)[0];
  const Json& fallback = (*list)[1];
  const Json& fuse = (*list)[2];
  const Json& strip = (*list)[3];
  auto type_is = [](const Json& d, std::string_view t) {
    return d.is_object() && d.value("type", "") == t;
  };
  return type_is(replace, "Replace") && replace.contains("pattern") &&
         replace["pattern"].is_object() && replace["pattern"].value("String", "") == kMetaspace &&
         replace.value("content", "") == " " && type_is(fallback, "ByteFallback") &&
         type_is(fuse, "Fuse") && type_is(strip, "Strip") && strip.value("content", "") == " " &&
         strip.value("start", -1) == 1 && strip.value("stop", -1) == 0;
}

// The tokens of model.vocab as the file writes them, by id (pointers into `vocab`), and the
// largest id: what the later steps of Create share.
struct FileVocab {
  absl::flat_hash_map<std::string, int32_t> vocab;
  std::vector<const std::string*> by_id;
  int32_t max_id = -1;
};

// model: a BPE model's options, its vocabulary (into *v) and merges (into rep).
// model.merges: each pair's rank (its position in the list) and merged token, into rep->merges.
absl::Status ParseMerges(const Reader& reader, const Json& model, const FileVocab& v, Rep* rep) {
  // Merges: rank = position in the list. A pair listed twice keeps its last rank, as the
  // library's map does.
  const Json* merges_json = Reader::Member(model, "merges");
  if (merges_json == nullptr || !merges_json->is_array()) {
    return reader.Invalid("model.merges", "expected an array");
  }
  rep->merges.reserve(merges_json->size());
  for (size_t rank = 0; rank < merges_json->size(); ++rank) {
    const Json& m = (*merges_json)[rank];
    const std::string path = absl::StrCat("model.merges[", rank, "]");
    std::string left;
    std::string right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return reader.Invalid(path, "\"", s, "\" is not two tokens separated by one space");
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return reader.Invalid(path, "expected \"a b\" or [\"a\", \"b\"]");
    }
    auto a = v.vocab.find(left);
    auto b = v.vocab.find(right);
    auto merged = v.vocab.find(left + right);
    for (const auto& [it, text] :
         {std::pair{a, left}, std::pair{b, right}, std::pair{merged, left + right}}) {
      if (it == v.vocab.end()) {
        return reader.Invalid(path, "token \"", text, "\" is not in model.vocab");
      }
    }
    rep->merges[internal::PairKey(a->second, b->second)] = {static_cast<int32_t>(rank),
                                                            merged->second};
  }

  return absl::OkStatus();
}

absl::Status ParseModel(const Reader& reader, const Json& root, FileVocab* v, Rep* rep) {
  TRACEMARK_ASSIGN_OR_RETURN(const Json* model, reader.Object(root, "model", "(root)"));
  if (const Json* type = Reader::Member(*model, "type"); type != nullptr) {
    if (!type->is_string()) return reader.Invalid("model.type", "expected a string");
    if (*type != "BPE") {
      return reader.Unimplemented("model.type", "the model \"", type->get<std::string>(), "\"");
    }
  }
  if (const Json* dropout = Reader::Member(*model, "dropout");
      dropout != nullptr && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return reader.Unimplemented("model.dropout", "BPE dropout (it makes encoding random)");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* m = Reader::Member(*model, affix);
    if (m != nullptr && !m->is_null() && !(m->is_string() && m->get<std::string>().empty())) {
      return reader.Unimplemented(absl::StrCat("model.", affix), "a non-empty ", affix);
    }
  }
  TRACEMARK_ASSIGN_OR_RETURN(rep->ignore_merges,
                             reader.Bool(*model, "ignore_merges", "model", false));
  TRACEMARK_ASSIGN_OR_RETURN(rep->byte_fallback,
                             reader.Bool(*model, "byte_fallback", "model", false));
  TRACEMARK_ASSIGN_OR_RETURN(rep->fuse_unk, reader.Bool(*model, "fuse_unk", "model", false));

  TRACEMARK_ASSIGN_OR_RETURN(const Json* vocab_json, reader.Object(*model, "vocab", "model"));
  if (vocab_json->empty()) return reader.Invalid("model.vocab", "is empty");
  v->vocab.reserve(vocab_json->size());
  for (const auto& [token, id_json] : vocab_json->items()) {
    TRACEMARK_ASSIGN_OR_RETURN(int32_t id,
                               reader.Id(id_json, absl::StrCat("model.vocab[\"", token, "\"]")));
    if (token.empty()) return reader.Invalid("model.vocab", "has an empty token");
    v->vocab.emplace(token, id);
    v->max_id = std::max(v->max_id, id);
  }
  v->by_id.assign(static_cast<size_t>(v->max_id) + 1, nullptr);
  for (const auto& [token, id] : v->vocab) {
    if (v->by_id[id] != nullptr) {
      const std::string& other = *v->by_id[id];
      return reader.Invalid("model.vocab", "id ", id, " is given to both \"",
                            std::min(other, token), "\" and \"", std::max(other, token), "\"");
    }
    v->by_id[id] = &token;
  }

  if (const Json* unk = Reader::Member(*model, "unk_token"); unk != nullptr && !unk->is_null()) {
    if (!unk->is_string()) return reader.Invalid("model.unk_token", "expected a string or null");
    auto it = v->vocab.find(unk->get<std::string>());
    if (it == v->vocab.end()) {
      return reader.Invalid("model.unk_token", "\"", unk->get<std::string>(),
                            "\" is not in model.vocab");
    }
    rep->unk_id = it->second;
  }

  return ParseMerges(reader, *model, *v, rep);
}

// added_tokens: into *added (with whether each is normalized); raises *max_id past their ids.
absl::Status ParseAddedTokens(const Reader& reader, const Json& root,
                              std::vector<Rep::AddedToken>* added,
                              std::vector<bool>* added_normalized, int32_t* max_id) {
  if (const Json* list = Reader::Member(root, "added_tokens");
      list != nullptr && !list->is_null()) {
    if (!list->is_array()) return reader.Invalid("added_tokens", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& t = (*list)[i];
      const std::string path = absl::StrCat("added_tokens[", i, "]");
      if (!t.is_object()) return reader.Invalid(path, "expected an object");
      const Json* id_json = Reader::Member(t, "id");
      if (id_json == nullptr) return reader.Invalid(path + ".id", "missing");
      TRACEMARK_ASSIGN_OR_RETURN(int32_t id, reader.Id(*id_json, path + ".id"));
      TRACEMARK_ASSIGN_OR_RETURN(std::string content, reader.String(t, "content", path));
      if (content.empty()) return reader.Invalid(path + ".content", "is empty");
      if (!IsValidUtf8(content)) return reader.Invalid(path + ".content", "is not valid UTF-8");
      TRACEMARK_ASSIGN_OR_RETURN(bool special, reader.Bool(t, "special", path, false));
      TRACEMARK_ASSIGN_OR_RETURN(bool normalized, reader.Bool(t, "normalized", path, !special));
      for (const char* option : {"single_word", "lstrip", "rstrip"}) {
        TRACEMARK_ASSIGN_OR_RETURN(bool set, reader.Bool(t, option, path, false));
        if (set && !special) {
          return reader.Unimplemented(absl::StrCat(path, ".", option), option,
                                      " on a non-special added token");
        }
      }
      added->push_back({std::move(content), id, special});
      added_normalized->push_back(normalized);
      *max_id = std::max(*max_id, id);
    }
  }

  return absl::OkStatus();
}

// normalizer, pre_tokenizer and decoder (a decoder is required, and must fit the pre-tokenizer).
absl::Status ParsePipeline(const Reader& reader, const Json& root, Rep* rep) {
  if (const Json* n = Reader::Member(root, "normalizer"); n != nullptr && !n->is_null()) {
    TRACEMARK_RETURN_IF_ERROR(ParseNormalizer(reader, *n, "normalizer", &rep->normalizer));
  }
  if (const Json* p = Reader::Member(root, "pre_tokenizer"); p != nullptr && !p->is_null()) {
    TRACEMARK_RETURN_IF_ERROR(ParsePreTokenizer(reader, *p, "pre_tokenizer", rep));
  }
  const Json* decoder = Reader::Member(root, "decoder");
  if (decoder == nullptr || decoder->is_null()) {
    return reader.Unimplemented("decoder", "a missing decoder (tokens joined by spaces)");
  }
  TRACEMARK_ASSIGN_OR_RETURN(std::string decoder_type, reader.Type(*decoder, "decoder"));
  if (decoder_type == "ByteLevel") {
    if (!rep->byte_level) {
      return reader.Unimplemented("decoder",
                                  "a ByteLevel decoder without a ByteLevel "
                                  "pre-tokenizer");
    }
    rep->decoder = internal::HfState::DecoderKind::kByteLevel;
  } else if (decoder_type == "Sequence" && IsMetaspaceByteFallbackDecoder(*decoder)) {
    if (rep->byte_level) {
      return reader.Unimplemented("decoder",
                                  "a non-ByteLevel decoder with a ByteLevel "
                                  "pre-tokenizer");
    }
    rep->decoder = internal::HfState::DecoderKind::kMetaspaceByteFallback;
  } else {
    return reader.Unimplemented("decoder", "the decoder \"", decoder_type,
                                "\" (only ByteLevel and Llama 2's Replace/ByteFallback/Fuse/Strip "
                                "sequence are)");
  }

  return absl::OkStatus();
}

// The bytes each vocabulary token stands for (rep->keys, rep->vocab) and the byte tokens
// (rep->byte_ids), for byte-level or byte-fallback models.
absl::Status BuildKeys(const Reader& reader, const FileVocab& v, Rep* rep) {
  const ByteAlphabet& alphabet = Alphabet();
  std::vector<std::pair<size_t, size_t>> key_spans(v.by_id.size(), {0, 0});
  std::vector<bool> has_key(v.by_id.size(), false);
  std::string bytes;
  for (size_t id = 0; id < v.by_id.size(); ++id) {
    if (v.by_id[id] == nullptr) continue;
    const std::string& token = *v.by_id[id];
    std::string_view key = token;
    if (rep->byte_level) {
      if (!alphabet.ToBytes(token, &bytes)) continue;  // Unreachable from text.
      key = bytes;
    }
    key_spans[id] = {rep->keys.size(), key.size()};
    has_key[id] = true;
    rep->keys.append(key);
  }
  rep->vocab.reserve(v.by_id.size());
  for (size_t id = 0; id < v.by_id.size(); ++id) {
    if (!has_key[id]) continue;
    const std::string_view key(rep->keys.data() + key_spans[id].first, key_spans[id].second);
    if (!rep->vocab.emplace(key, static_cast<int32_t>(id)).second) {
      return reader.Invalid("model.vocab", "tokens ", rep->vocab[key], " and ", id,
                            " stand for the same bytes");
    }
  }
  if (rep->byte_level) {
    for (int b = 0; b < 256; ++b) {
      const char byte = static_cast<char>(b);
      auto it = rep->vocab.find(std::string_view(&byte, 1));
      if (it == rep->vocab.end()) {
        std::string shown;
        AppendCodePoint(alphabet.to_code_point[b], &shown);
        return reader.Invalid("model.vocab", "no token for the byte 0x",
                              absl::Hex(b, absl::kZeroPad2), " (\"", shown,
                              "\"); byte-level BPE needs all 256");
      }
      rep->byte_ids[b] = it->second;
    }
  } else if (rep->byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      auto it = v.vocab.find(ByteTokenName(b));
      if (it == v.vocab.end()) {
        return reader.Invalid("model.vocab", "byte_fallback is set but there is no token \"",
                              ByteTokenName(b), "\"");
      }
      rep->byte_ids[b] = it->second;
    }
  }

  return absl::OkStatus();
}

// Every id's bytes (as the decoder gives them), kind and token string, the added tokens included.
void BuildTokenTable(const FileVocab& v, const std::vector<Rep::AddedToken>& added,
                     const std::vector<bool>& added_normalized, int32_t max_id, Rep* rep) {
  const ByteAlphabet& alphabet = Alphabet();
  const size_t vocab_size = static_cast<size_t>(max_id) + 1;
  rep->token_bytes.resize(vocab_size);
  rep->kinds.assign(vocab_size, Rep::Kind::kHole);
  // The decoder's view of a token string.
  auto decoded = [&](const std::string& token) {
    std::string out;
    if (rep->decoder == Rep::DecoderKind::kByteLevel) {
      if (!alphabet.ToBytes(token, &out)) out = token;  // The library keeps such tokens as is.
      return out;
    }
    uint8_t byte;
    if (ParseByteToken(token, &byte)) return std::string(1, static_cast<char>(byte));
    out = token;
    ReplaceAll(&out, kMetaspace, " ");
    return out;
  };
  for (size_t id = 0; id < v.by_id.size(); ++id) {
    if (v.by_id[id] == nullptr) continue;
    rep->token_bytes[id] = decoded(*v.by_id[id]);
    rep->kinds[id] = Rep::Kind::kVocab;
    rep->token_ids.emplace(*v.by_id[id], static_cast<int32_t>(id));
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const Rep::AddedToken& t = added[i];
    rep->token_bytes[t.id] = decoded(t.content);
    rep->kinds[t.id] = t.special ? Rep::Kind::kSpecial : Rep::Kind::kAdded;
    rep->token_ids[t.content] = t.id;
    (added_normalized[i] ? rep->normalized_added : rep->raw_added).tokens.push_back(t);
  }
  rep->raw_added.Finish();
  rep->normalized_added.Finish();
}

}  // namespace

HfTokenizer::HfTokenizer(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
HfTokenizer::~HfTokenizer() = default;

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::Load(const std::string& path,
                                                               std::string_view name) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string contents, base::ReadFile(path, "tokenizer file"));
  return Create(contents, path, name);
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::Create(std::string_view json_text,
                                                                 std::string_view source,
                                                                 std::string_view name) {
  const Reader reader{std::string(source)};
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return reader.Invalid("(root)", "expected an object");
  auto rep = std::make_unique<Rep>();
  rep->name = std::string(name.empty() ? source : name);
  FileVocab v;  // not moved: v.by_id points into v.vocab
  TRACEMARK_RETURN_IF_ERROR(ParseModel(reader, root, &v, rep.get()));
  std::vector<Rep::AddedToken> added;
  std::vector<bool> added_normalized;
  int32_t max_id = v.max_id;
  TRACEMARK_RETURN_IF_ERROR(ParseAddedTokens(reader, root, &added, &added_normalized, &max_id));
  TRACEMARK_RETURN_IF_ERROR(ParsePipeline(reader, root, rep.get()));
  TRACEMARK_RETURN_IF_ERROR(BuildKeys(reader, v, rep.get()));
  BuildTokenTable(v, added, added_normalized, max_id, rep.get());
  return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(rep)));
}

// ---------------------------------------------------------------------------------------------
// Encoding.

absl::StatusOr<std::string> internal::HfState::Normalize(std::string_view text) const {
  std::string s(text);
  for (const NormalizerStep& step : normalizer) {
    switch (step.type) {
      case NormalizerStep::Type::kUnicode: {
        UErrorCode status = U_ZERO_ERROR;
        const icu::StringPiece piece(s.data(), static_cast<int32_t>(s.size()));
        if (step.unicode->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) break;
        status = U_ZERO_ERROR;
        std::string out;
        icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(s.size()));
        step.unicode->normalizeUTF8(0, piece, sink, nullptr, status);
        if (U_FAILURE(status)) {
          return absl::InternalError(
              absl::StrCat("Unicode normalization failed: ", u_errorName(status)));
        }
        s = std::move(out);
        break;
      }
      case NormalizerStep::Type::kPrepend:
        if (!s.empty()) s.insert(0, step.a);
        break;
      case NormalizerStep::Type::kReplace:
        ReplaceAll(&s, step.a, step.b);
        break;
    }
  }
  return s;
}

// Splits `text` at added tokens of `matcher`: text between them goes to `encode_text`, matched
// non-special tokens give their id, matched special tokens stay part of the text (the library's
// encode_special_tokens: the match is consumed and then ignored).
template <typename EncodeText>
absl::Status SplitOnAdded(const internal::HfState::AddedMatcher& matcher, std::string_view text,
                          std::vector<int32_t>* ids, const EncodeText& encode_text) {
  if (matcher.empty()) return encode_text(text);
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = 0;
    const internal::HfState::AddedToken* token = matcher.Find(text, pos, &start);
    if (token == nullptr) break;
    pos = start + token->content.size();
    if (token->special) continue;
    if (start > segment_start) {
      TRACEMARK_RETURN_IF_ERROR(encode_text(text.substr(segment_start, start - segment_start)));
    }
    ids->push_back(token->id);
    segment_start = pos;
  }
  if (segment_start < text.size()) return encode_text(text.substr(segment_start));
  return absl::OkStatus();
}

absl::Status internal::HfState::EncodeSegment(std::string_view text,
                                              std::vector<int32_t>* ids) const {
  if (normalizer.empty()) return EncodeNormalized(text, ids);
  TRACEMARK_ASSIGN_OR_RETURN(std::string normalized, Normalize(text));
  return EncodeNormalized(normalized, ids);
}

absl::Status internal::HfState::EncodeNormalized(std::string_view text,
                                                 std::vector<int32_t>* ids) const {
  return SplitOnAdded(normalized_added, text, ids,
                      [&](std::string_view part) { return PreTokenize(0, part, ids); });
}

absl::Status internal::HfState::PreTokenize(size_t step, std::string_view piece,
                                            std::vector<int32_t>* ids) const {
  if (piece.empty()) return absl::OkStatus();
  if (step < splits.size()) {
    const SplitStep& split = splits[step];
    // Spans alternate between gaps and matches; with invert the matches are the pieces kept.
    auto emit = [&](size_t begin, size_t end, bool is_match) -> absl::Status {
      if (begin == end) return absl::OkStatus();
      const bool delimiter = is_match != split.invert;
      if (delimiter && split.remove_delimiters) return absl::OkStatus();
      return PreTokenize(step + 1, piece.substr(begin, end - begin), ids);
    };
    size_t prev = 0;
    while (prev < piece.size()) {
      size_t begin = 0;
      size_t end = 0;
      if (split.regex != nullptr) {
        TRACEMARK_ASSIGN_OR_RETURN(
            bool found, internal::FindNext(split.regex.get(), piece, prev, &begin, &end));
        if (!found) break;
      } else {
        begin = piece.find(split.literal, prev);
        if (begin == std::string_view::npos) break;
        end = begin + split.literal.size();
      }
      TRACEMARK_RETURN_IF_ERROR(emit(prev, begin, false));
      TRACEMARK_RETURN_IF_ERROR(emit(begin, end, true));
      prev = end;
    }
    return emit(prev, piece.size(), false);
  }
  if (!byte_level) return EncodeWord(piece, ids);
  std::string prefixed;
  if (add_prefix_space && piece.front() != ' ') {
    prefixed = absl::StrCat(" ", Sv(piece));
    piece = prefixed;
  }
  if (byte_level_regex == nullptr) return EncodeWord(piece, ids);
  size_t prev = 0;
  while (prev < piece.size()) {
    size_t begin = 0;
    size_t end = 0;
    TRACEMARK_ASSIGN_OR_RETURN(
        bool found, internal::FindNext(byte_level_regex.get(), piece, prev, &begin, &end));
    if (!found) break;
    if (begin > prev) TRACEMARK_RETURN_IF_ERROR(EncodeWord(piece.substr(prev, begin - prev), ids));
    TRACEMARK_RETURN_IF_ERROR(EncodeWord(piece.substr(begin, end - begin), ids));
    prev = end;
  }
  if (prev < piece.size()) return EncodeWord(piece.substr(prev), ids);
  return absl::OkStatus();
}

absl::Status internal::HfState::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (ignore_merges) {
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      ids->push_back(it->second);
      return absl::OkStatus();
    }
  }
  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  if (byte_level) {
    for (char c : word) symbols.push_back(byte_ids[static_cast<unsigned char>(c)]);
  } else {
    bool previous_unk = false;
    for (size_t i = 0; i < word.size();) {
      const size_t length = Utf8Length(static_cast<unsigned char>(word[i]));
      const std::string_view ch = word.substr(i, length);
      auto it = vocab.find(ch);
      if (it != vocab.end()) {
        symbols.push_back(it->second);
        previous_unk = false;
      } else if (byte_fallback) {
        for (char c : ch) symbols.push_back(byte_ids[static_cast<unsigned char>(c)]);
        previous_unk = false;
      } else if (unk_id >= 0) {
        if (!(fuse_unk && previous_unk)) symbols.push_back(unk_id);
        previous_unk = true;
      } else {
        size_t unused;
        char code_point[16];
        std::snprintf(code_point, sizeof(code_point), "U+%04X",
                      static_cast<unsigned>(DecodeCodePoint(word, i, &unused)));
        return absl::InvalidArgumentError(
            absl::StrCat("Encode: character ", code_point, " has no token in ", name,
                         " and the model has neither byte_fallback nor unk_token"));
      }
      i += length;
    }
  }
  internal::MergeSymbols(merges, &symbols);
  ids->insert(ids->end(), symbols.begin(), symbols.end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> HfTokenizer::Encode(std::string_view text) const {
  TRACEMARK_RETURN_IF_ERROR(CheckEncodableUtf8(text));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 1);
  TRACEMARK_RETURN_IF_ERROR(SplitOnAdded(rep_->raw_added, text, &ids, [&](std::string_view part) {
    return rep_->EncodeSegment(part, &ids);
  }));
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Decoding and lookups.

absl::StatusOr<std::string> HfTokenizer::Decode(absl::Span<const int32_t> ids) const {
  size_t total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    TRACEMARK_RETURN_IF_ERROR(rep_->CheckId(ids[i], i));
    total += rep_->token_bytes[ids[i]].size();
  }
  std::string out;
  out.reserve(total);
  for (int32_t id : ids) out.append(rep_->token_bytes[id]);
  if (rep_->decoder == Rep::DecoderKind::kMetaspaceByteFallback && !out.empty() &&
      out.front() == ' ') {
    out.erase(0, 1);
  }
  return out;
}

int32_t HfTokenizer::vocab_size() const { return static_cast<int32_t>(rep_->kinds.size()); }

std::string_view HfTokenizer::name() const { return rep_->name; }

absl::StatusOr<std::string> HfTokenizer::TokenBytes(int32_t id) const {
  TRACEMARK_RETURN_IF_ERROR(rep_->CheckId(id, 0));
  return rep_->token_bytes[id];
}

absl::StatusOr<int32_t> HfTokenizer::TokenId(std::string_view token) const {
  auto it = rep_->token_ids.find(std::string(token));
  if (it == rep_->token_ids.end()) {
    return absl::NotFoundError(absl::StrCat(rep_->name, " has no token \"", Sv(token), "\""));
  }
  return it->second;
}

bool HfTokenizer::IsSpecialToken(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < rep_->kinds.size() &&
         rep_->kinds[id] == Rep::Kind::kSpecial;
}

}  // namespace tracemark::tokenizer
