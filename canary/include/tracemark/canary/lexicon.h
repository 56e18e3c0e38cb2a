// The lexicon of interchangeable phrasings that canary choices are made among.
//
// A lexicon is a list of sets; each set holds 2 to 8 members that can replace each other in
// context (connectives, synonyms, spelling and hyphenation variants). A member is 1 to 3 lowercase
// ASCII words separated by single spaces, a word being [a-z0-9]+ with internal ' or - between
// word characters. Every member belongs to exactly one set, and no member is a word-wise prefix of
// another, so that a text's words match members unambiguously. The set id is the set's index and
// the member index its position in the set: the keyed choice picks an index, so a lexicon is
// versioned and must be exactly the one used at generation (reports carry its version and digest).
//
// Text format, one set a line (comment lines start with '#'):
//     connective<TAB>nevertheless|nonetheless
//
//   const Lexicon& lex = Lexicon::BuiltIn();                  // canary/data/lexicon-v1.tsv
//   absl::StatusOr<Lexicon> mine = Lexicon::Parse(text, "my-lexicon-1");
//
// Immutable; thread-safe.
#ifndef TRACEMARK_CANARY_LEXICON_H_
#define TRACEMARK_CANARY_LEXICON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace tracemark::canary {

inline constexpr size_t kMaxSetSize = 8;
inline constexpr size_t kMaxMemberWords = 3;

struct PhraseSet {
  std::string kind;                  // "connective", "synonym", "spelling", "hyphenation", ...
  std::vector<std::string> members;  // in index order
};

// Where a phrase occurs: the set, the member and the member's words.
struct MemberRef {
  uint32_t set = 0;
  uint32_t member = 0;
  std::vector<std::string> words;
};

class Lexicon {
 public:
  // Parses the text format. InvalidArgument naming the line on any violation of the rules above
  // (a malformed member, a set of fewer than 2 or more than kMaxSetSize members, a member in two
  // sets, a member that is a prefix of another, no sets at all).
  static absl::StatusOr<Lexicon> Parse(std::string_view text, std::string version);
  // Reads and parses a file; the version is the file name.
  static absl::StatusOr<Lexicon> ReadFile(const std::string& path);
  // The lexicon compiled into the library (version "lexicon-v1").
  static const Lexicon& BuiltIn();

  const std::string& version() const { return version_; }
  // SHA-256 of the text it was parsed from, in hex: identifies the exact lexicon in reports.
  const std::string& digest() const { return digest_; }
  const std::vector<PhraseSet>& sets() const { return sets_; }
  size_t member_count() const;

  // The members whose first word is `word` (lowercase), longest first; null if none.
  const std::vector<MemberRef>* StartingWith(std::string_view word) const;

 private:
  std::string version_, digest_;
  std::vector<PhraseSet> sets_;
  absl::flat_hash_map<std::string, std::vector<MemberRef>> by_first_word_;
};

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_LEXICON_H_
