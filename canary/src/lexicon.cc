#include "tracemark/canary/lexicon.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/watermark/digest.h"

namespace tracemark::embedded {
std::string_view LexiconV1();
}  // namespace tracemark::embedded

namespace tracemark::canary {
namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  while (true) {
    const size_t end = s.find(sep, begin);
    out.push_back(
        s.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return out;
    begin = end + 1;
  }
}

absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsWordChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]+ with single internal ' or - between word characters.
bool IsWord(std::string_view w) {
  if (w.empty() || !IsWordChar(w.front()) || !IsWordChar(w.back())) return false;
  for (size_t i = 0; i < w.size(); ++i) {
    const char c = w[i];
    if (IsWordChar(c)) continue;
    if ((c == '\'' || c == '-') && IsWordChar(w[i - 1]) && IsWordChar(w[i + 1])) continue;
    return false;
  }
  return true;
}

bool IsPrefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

absl::StatusOr<Lexicon> Lexicon::Parse(std::string_view text, std::string version) {
  Lexicon lex;
  lex.version_ = std::move(version);
  lex.digest_ = watermark::Sha256Hex(text);
  absl::flat_hash_set<std::string> seen;
  std::vector<std::string_view> lines = Split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const std::string_view line = lines[ln];
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("lexicon ", lex.version_, " line ", ln + 1, ": ", A(why)));
    };
    if (!line.empty() && line.front() == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos || tab == 0) return bad("expected KIND<TAB>MEMBER|MEMBER...");
    PhraseSet set;
    set.kind = std::string(line.substr(0, tab));
    for (std::string_view m : Split(line.substr(tab + 1), '|')) {
      std::vector<std::string> words;
      for (std::string_view w : Split(m, ' ')) words.emplace_back(w);
      if (words.size() > kMaxMemberWords) {
        return bad(absl::StrCat("member '", A(m), "' has more than ", kMaxMemberWords, " words"));
      }
      for (const std::string& w : words) {
        if (!IsWord(w))
          return bad(absl::StrCat("member '", A(m), "' is not lowercase ASCII words"));
      }
      if (!seen.insert(std::string(m)).second) {
        return bad(absl::StrCat("member '", A(m), "' appears twice"));
      }
      set.members.emplace_back(m);
      lex.by_first_word_[words.front()].push_back({static_cast<uint32_t>(lex.sets_.size()),
                                                   static_cast<uint32_t>(set.members.size() - 1),
                                                   std::move(words)});
    }
    if (set.members.size() < 2 || set.members.size() > kMaxSetSize) {
      return bad(
          absl::StrCat("a set needs 2 to ", kMaxSetSize, " members, not ", set.members.size()));
    }
    lex.sets_.push_back(std::move(set));
  }
  if (lex.sets_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("lexicon ", lex.version_, " has no sets"));
  }
  for (auto& [first, refs] : lex.by_first_word_) {
    for (const MemberRef& a : refs) {
      for (const MemberRef& b : refs) {
        if (&a != &b && IsPrefix(a.words, b.words)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "lexicon ", lex.version_, ": member '", lex.sets_[a.set].members[a.member],
              "' is a prefix of '", lex.sets_[b.set].members[b.member], "'"));
        }
      }
    }
    std::stable_sort(refs.begin(), refs.end(), [](const MemberRef& a, const MemberRef& b) {
      return a.words.size() > b.words.size();
    });
  }
  return lex;
}

absl::StatusOr<Lexicon> Lexicon::ReadFile(const std::string& path) {
  TRACEMARK_ASSIGN_OR_RETURN(const std::string text, base::ReadFile(path, "lexicon"));
  const size_t slash = path.find_last_of('/');
  return Parse(text, slash == std::string::npos ? path : path.substr(slash + 1));
}

const Lexicon& Lexicon::BuiltIn() {
  static const Lexicon* const kBuiltIn = [] {
    absl::StatusOr<Lexicon> lex = Parse(embedded::LexiconV1(), "lexicon-v1");
    // The embedded file is checked by the tests; a failure here is a build defect.
    if (!lex.ok()) std::abort();
    return new Lexicon(*std::move(lex));
  }();
  return *kBuiltIn;
}

size_t Lexicon::member_count() const {
  size_t n = 0;
  for (const PhraseSet& s : sets_) n += s.members.size();
  return n;
}

const std::vector<MemberRef>* Lexicon::StartingWith(std::string_view word) const {
  auto it = by_first_word_.find(A(word));
  return it == by_first_word_.end() ? nullptr : &it->second;
}

}  // namespace tracemark::canary
