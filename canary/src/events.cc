#include "tracemark/canary/events.h"

#include "tracemark/watermark/prf.h"

namespace tracemark::canary {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

struct Word {
  std::string lower;
  size_t begin = 0;
  bool all_lower = true;    // no upper-case letter
  bool capitalised = true;  // upper-case first letter, no other upper-case letter
};

// The words of `text`, lower-cased, in order.
std::vector<Word> Words(std::string_view text) {
  std::vector<Word> words;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  size_t i = 0;
  while (i < text.size()) {
    if (!IsWordByte(byte(i))) {
      ++i;
      continue;
    }
    Word w;
    w.begin = i;
    while (i < text.size()) {
      if (IsWordByte(byte(i))) {
        const bool upper = text[i] >= 'A' && text[i] <= 'Z';
        w.all_lower = w.all_lower && !upper;
        w.capitalised = w.capitalised && (upper == w.lower.empty());
        w.lower.push_back(Lower(text[i++]));
      } else if (IsJoiner(text[i]) && i + 1 < text.size() && IsWordByte(byte(i + 1))) {
        w.lower.push_back(text[i++]);
      } else {
        break;
      }
    }
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace

uint64_t ContextId(std::string_view lower_word) {
  // SipHash-2-4 under the all-zero key of the word's bytes packed into 32-bit words: a fixed public
  // function (the keyed choice happens later, under the account's key).
  std::vector<uint32_t> packed((lower_word.size() + 3) / 4 + 1, 0);
  packed[0] = static_cast<uint32_t>(lower_word.size());
  for (size_t i = 0; i < lower_word.size(); ++i) {
    packed[1 + i / 4] |= static_cast<uint32_t>(static_cast<unsigned char>(lower_word[i]))
                         << (8 * (i % 4));
  }
  return watermark::SipHashWords(watermark::SipKey{}, packed.data(), packed.size());
}

std::string LastWord(std::string_view text, bool* complete) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  size_t end = text.size();
  while (end > 0 && !IsWordByte(byte(end - 1))) --end;
  size_t begin = end;
  while (begin > 0) {
    if (IsWordByte(byte(begin - 1))) {
      --begin;
    } else if (IsJoiner(text[begin - 1]) && begin >= 2 && IsWordByte(byte(begin - 2))) {
      --begin;
    } else {
      break;
    }
  }
  if (complete != nullptr) *complete = begin > 0 || end == 0;
  std::string w(text.substr(begin, end - begin));
  for (char& c : w) c = Lower(c);
  return w;
}

std::vector<Event> ExtractEvents(std::string_view text, const Lexicon& lexicon,
                                 const std::vector<uint8_t>& active_forms,
                                 std::string_view preceding) {
  const std::vector<Word> words = Words(text);
  std::vector<Event> events;
  std::string previous = LastWord(preceding);
  size_t i = 0;
  while (i < words.size()) {
    const std::vector<MemberRef>* refs = lexicon.StartingWith(words[i].lower);
    const MemberRef* match = nullptr;
    if (refs != nullptr) {
      for (const MemberRef& r : *refs) {  // longest first
        if (i + r.words.size() > words.size()) continue;
        bool equal = true;
        for (size_t k = 1; k < r.words.size() && equal; ++k) {
          equal = words[i + k].lower == r.words[k];
        }
        if (equal) {
          match = &r;
          break;
        }
      }
    }
    if (match == nullptr) {
      previous = words[i++].lower;
      continue;
    }
    bool counts = active_forms.empty();
    if (!counts) {
      // The occurrence's surface form: spaced or bare, lower case or capitalised.
      bool rest_lower = true;
      for (size_t k = 1; k < match->words.size(); ++k)
        rest_lower = rest_lower && words[i + k].all_lower;
      const size_t b = words[i].begin;
      const char before = b > 0 ? text[b - 1] : (preceding.empty() ? '\n' : preceding.back());
      const bool spaced = before == ' ';
      uint8_t form = 0;
      if (rest_lower && words[i].all_lower) form = spaced ? kFormSpaceLower : kFormBareLower;
      if (rest_lower && words[i].capitalised && !words[i].all_lower) {
        form = spaced ? kFormSpaceUpper : kFormBareUpper;
      }
      counts = (active_forms[match->set] & form) != 0;
    }
    if (counts) events.push_back({match->set, match->member, ContextId(previous)});
    i += match->words.size();
    previous = words[i - 1].lower;
  }
  return events;
}

}  // namespace tracemark::canary
