// Canary events in text: where a lexicon member occurs, with the word before it as its context.
//
// Text is split into words exactly as the decode-time choice splits what it has generated: a word
// is a maximal run of ASCII letters and digits and of bytes >= 0x80, with an apostrophe or hyphen
// joining two such characters; everything else separates words. Words are matched in ASCII lower
// case. At each word the longest member starting there is matched; the event's context is the
// word before the member (the empty word at the start of the text, or the last word of
// `preceding`, e.g. the prompt). No tokenizer is involved, so a student with another tokenizer
// produces the same events.
//
// An occurrence has a surface form: spaced (a space before it) or bare, lower case or capitalised
// (first letter upper case, the rest lower case; other casings have no form). `active_forms`, if
// not empty, has one bit mask per set (kFormSpaceLower ...): only occurrences in a form whose bit
// is set are events — the forms the decode-time choice covers for the generating tokenizer
// (CanaryProcessor::active_forms()).
//
//   std::vector<Event> ev = ExtractEvents(text, Lexicon::BuiltIn(), proc->active_forms());
//
// Thread-safe (pure functions).
#ifndef TRACEMARK_CANARY_EVENTS_H_
#define TRACEMARK_CANARY_EVENTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracemark/canary/lexicon.h"

namespace tracemark::canary {

struct Event {
  uint32_t set = 0;
  uint32_t member = 0;
  uint64_t context = 0;  // ContextId of the preceding word
};

inline constexpr uint8_t kFormSpaceLower = 1;  // " word"
inline constexpr uint8_t kFormSpaceUpper = 2;  // " Word"
inline constexpr uint8_t kFormBareLower = 4;   // "word" after a non-space separator or at the start
inline constexpr uint8_t kFormBareUpper = 8;   // "Word"

// A public (unkeyed) 64-bit identifier of a context word (already lower case).
uint64_t ContextId(std::string_view lower_word);

// The last complete word of `text`, lower-cased (empty if none). `complete` is set to false when
// the word reaches the start of `text`, so that more preceding bytes could extend it.
std::string LastWord(std::string_view text, bool* complete = nullptr);

// True for the bytes that form words (ASCII letters and digits, bytes >= 0x80).
inline bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// True for the apostrophe and hyphen, which join two word bytes into one word.
inline bool IsJoiner(char c) { return c == '\'' || c == '-'; }

// The events of `text`. Members in an inactive form are still matched (so that they are not taken
// for other words) but give no event.
std::vector<Event> ExtractEvents(std::string_view text, const Lexicon& lexicon,
                                 const std::vector<uint8_t>& active_forms = {},
                                 std::string_view preceding = {});

}  // namespace tracemark::canary

#endif  // TRACEMARK_CANARY_EVENTS_H_
