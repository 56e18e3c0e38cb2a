#include "tracemark/canary/processor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/events.h"

namespace tracemark::canary {
namespace {

// How far back the previous word is looked for; a longer word is cut (and only that event's
// context differs from what detection computes).
constexpr size_t kMaxLookbackTokens = 64;
// Forms whose shared prefix is longer than this are not used.
constexpr size_t kMaxPrefixTokens = 8;

enum FormKind { kSpaceLower, kSpaceUpper, kBareLower, kBareUpper, kFormKinds };

std::string Surface(const std::string& member, int kind) {
  std::string s = member;
  if (kind == kSpaceUpper || kind == kBareUpper) {
    if (s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  }
  if (kind == kSpaceLower || kind == kSpaceUpper) s.insert(s.begin(), ' ');
  return s;
}

bool IsJoiner(char c) { return c == '\'' || c == '-'; }

absl::Status CheckId(int32_t id, int32_t vocab) {
  if (id < 0 || id >= vocab) {
    return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is outside [0, ", vocab, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckLogit(float l) {
  if (std::isnan(l) || l == INFINITY) {
    return absl::InvalidArgumentError("logits must not be NaN or +inf");
  }
  return absl::OkStatus();
}

}  // namespace

// Per-step memo of the context id for each prefix length.
struct CanaryProcessor::Context {
  struct Entry {
    size_t prefix_len;
    uint64_t id;
  };
  std::vector<Entry> entries;
};

absl::StatusOr<std::unique_ptr<CanaryProcessor>> CanaryProcessor::Create(
    const Lexicon* lexicon, const tokenizer::Tokenizer& tok) {
  if (lexicon == nullptr) return absl::InvalidArgumentError("no lexicon");
  std::unique_ptr<CanaryProcessor> p(new CanaryProcessor());
  p->lexicon_ = lexicon;
  p->vocab_size_ = tok.vocab_size();
  p->token_bytes_.resize(static_cast<size_t>(p->vocab_size_));
  for (int32_t id = 0; id < p->vocab_size_; ++id) {
    absl::StatusOr<std::string> bytes = tok.TokenBytes(id);
    if (bytes.ok()) p->token_bytes_[static_cast<size_t>(id)] = *std::move(bytes);
  }
  const std::vector<PhraseSet>& sets = lexicon->sets();
  p->active_.assign(sets.size(), false);
  for (uint32_t s = 0; s < sets.size(); ++s) {
    for (int kind = 0; kind < kFormKinds; ++kind) {
      Form form;
      form.set = s;
      form.needs_boundary = kind == kBareLower || kind == kBareUpper;
      bool fits = true;
      std::vector<std::vector<int32_t>> seqs;
      for (const std::string& m : sets[s].members) {
        TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.Encode(Surface(m, kind)));
        seqs.push_back(std::move(ids));
      }
      const size_t len = seqs[0].size();
      for (const auto& seq : seqs) {
        fits = fits && seq.size() == len && len >= 1 && len <= kMaxPrefixTokens + 1 &&
               std::equal(seq.begin(), seq.end() - 1, seqs[0].begin());
      }
      if (fits) {
        for (const auto& seq : seqs) form.tokens.push_back(seq.back());
        std::vector<int32_t> sorted = form.tokens;
        std::sort(sorted.begin(), sorted.end());
        fits = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
      }
      if (!fits) {
        if (kind == kSpaceLower) break;  // the set is inactive: no form of it is used
        continue;
      }
      if (kind == kSpaceLower) p->active_[s] = true;
      form.prefix.assign(seqs[0].begin(), seqs[0].end() - 1);
      // A token can serve two forms only with different prefixes (the longer applies first).
      bool clash = false;
      for (int32_t t : form.tokens) {
        auto it = p->by_token_.find(t);
        if (it == p->by_token_.end()) continue;
        for (uint32_t other : it->second) clash = clash || p->forms_[other].prefix == form.prefix;
      }
      if (clash) continue;
      const auto index = static_cast<uint32_t>(p->forms_.size());
      for (int32_t t : form.tokens) p->by_token_[t].push_back(index);
      if (form.prefix.empty()) {
        p->unprefixed_.push_back(index);
      } else {
        p->by_last_prefix_[form.prefix.back()].push_back(index);
      }
      p->forms_.push_back(std::move(form));
    }
  }
  return p;
}

absl::Status CanaryProcessor::CheckHistory(absl::Span<const int32_t> history) const {
  // Only the ids the choice can read: the longest prefix and the look-back before it.
  const size_t n = std::min(history.size(), kMaxLookbackTokens + kMaxPrefixTokens);
  for (int32_t id : history.last(n)) TRACEMARK_RETURN_IF_ERROR(CheckId(id, vocab_size_));
  return absl::OkStatus();
}

size_t CanaryProcessor::active_count() const {
  return static_cast<size_t>(std::count(active_.begin(), active_.end(), true));
}

bool CanaryProcessor::Applies(const Form& form, absl::Span<const int32_t> history,
                              Context*) const {
  const size_t n = form.prefix.size();
  if (history.size() < n) return false;
  if (!std::equal(form.prefix.begin(), form.prefix.end(), history.end() - n)) return false;
  if (!form.needs_boundary) return true;
  // The member starts a word only after a byte that is neither a word byte nor a joiner.
  for (size_t j = history.size() - n; j > 0; --j) {
    const std::string& b = token_bytes_[static_cast<size_t>(history[j - 1])];
    if (b.empty()) continue;
    const char last = b.back();
    return !IsWordByte(static_cast<unsigned char>(last)) && !IsJoiner(last);
  }
  return true;
}

uint64_t CanaryProcessor::ContextFor(const Form& form, absl::Span<const int32_t> history,
                                     Context* ctx) const {
  const size_t prefix_len = form.prefix.size();
  for (const Context::Entry& e : ctx->entries) {
    if (e.prefix_len == prefix_len) return e.id;
  }
  // Decode backwards from before the prefix until the previous word is complete.
  std::string tail;
  std::string word;
  size_t j = history.size() - prefix_len;
  const size_t stop = j > kMaxLookbackTokens ? j - kMaxLookbackTokens : 0;
  while (j > stop) {
    tail.insert(0, token_bytes_[static_cast<size_t>(history[--j])]);
    bool complete = false;
    word = LastWord(tail, &complete);
    if (!word.empty() && complete) break;
  }
  const uint64_t id = ContextId(word);
  ctx->entries.push_back({prefix_len, id});
  return id;
}

template <typename Fn>
void CanaryProcessor::ForEachForm(absl::Span<const int32_t> history, Fn&& fn) const {
  if (!history.empty()) {
    auto it = by_last_prefix_.find(history.back());
    if (it != by_last_prefix_.end()) {
      for (uint32_t f : it->second) fn(f);
    }
  }
  for (uint32_t f : unprefixed_) fn(f);
}

absl::StatusOr<int> CanaryProcessor::ProcessSparse(
    const CanaryKey* key, absl::Span<const int32_t> history,
    absl::Span<watermark::Candidate> candidates) const {
  for (const auto& c : candidates) {
    TRACEMARK_RETURN_IF_ERROR(CheckId(c.id, vocab_size_));
    TRACEMARK_RETURN_IF_ERROR(CheckLogit(c.logit));
  }
  TRACEMARK_RETURN_IF_ERROR(CheckHistory(history));
  if (key == nullptr) return 0;
  Context ctx;
  // Group candidates by the applicable form with the longest prefix that owns their token.
  struct Group {
    uint32_t form;
    std::vector<size_t> members;  // candidate indices
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < candidates.size(); ++i) {
    auto it = by_token_.find(candidates[i].id);
    if (it == by_token_.end()) continue;
    int best = -1;
    for (uint32_t f : it->second) {
      if (!Applies(forms_[f], history, &ctx)) continue;
      if (best < 0 || forms_[f].prefix.size() > forms_[static_cast<size_t>(best)].prefix.size()) {
        best = static_cast<int>(f);
      }
    }
    if (best < 0) continue;
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const Group& x) { return x.form == static_cast<uint32_t>(best); });
    if (g == groups.end()) {
      groups.push_back({static_cast<uint32_t>(best), {}});
      g = groups.end() - 1;
    }
    g->members.push_back(i);
  }
  int moved = 0;
  for (const Group& g : groups) {
    const Form& form = forms_[g.form];
    double max_logit = -INFINITY;
    size_t best = g.members[0];
    for (size_t i : g.members) {
      if (candidates[i].logit > max_logit) {
        max_logit = candidates[i].logit;
        best = i;
      }
    }
    if (max_logit == -INFINITY) continue;
    double sum = 0;
    for (size_t i : g.members) sum += std::exp(candidates[i].logit - max_logit);
    const auto total = static_cast<float>(max_logit + std::log(sum));
    const uint32_t choice =
        key->Choice(form.set, static_cast<uint32_t>(form.tokens.size()), ContextFor(form, history, &ctx));
    const int32_t target = form.tokens[choice];
    size_t target_index = candidates.size();
    for (size_t i : g.members) {
      if (candidates[i].id == target) target_index = i;
    }
    if (target_index == candidates.size()) {
      // Not a candidate: the best present member's slot becomes the keyed member, unless the keyed
      // token is in the list under another form (then this set is left alone).
      const bool elsewhere = std::any_of(candidates.begin(), candidates.end(),
                                         [&](const auto& c) { return c.id == target; });
      if (elsewhere) continue;
      candidates[best].id = target;
      target_index = best;
    }
    for (size_t i : g.members) candidates[i].logit = i == target_index ? total : -INFINITY;
    ++moved;
  }
  return moved;
}

absl::StatusOr<int> CanaryProcessor::DenseRow(const CanaryKey* key,
                                              absl::Span<const int32_t> history,
                                              absl::Span<float> logits) const {
  if (key == nullptr) return 0;
  Context ctx;
  int moved = 0;
  ForEachForm(history, [&](uint32_t f) {
    const Form& form = forms_[f];
    if (!Applies(form, history, &ctx)) return;
    // Members whose token a longer applicable prefix owns are not this form's.
    auto owned = [&](int32_t t) {
      for (uint32_t other : by_token_.find(t)->second) {
        if (other != f && forms_[other].prefix.size() > form.prefix.size() &&
            Applies(forms_[other], history, &ctx)) {
          return false;
        }
      }
      return true;
    };
    double max_logit = -INFINITY;
    for (int32_t t : form.tokens) {
      if (owned(t)) max_logit = std::max<double>(max_logit, logits[static_cast<size_t>(t)]);
    }
    if (max_logit == -INFINITY) return;
    double sum = 0;
    for (int32_t t : form.tokens) {
      if (owned(t)) sum += std::exp(logits[static_cast<size_t>(t)] - max_logit);
    }
    const auto total = static_cast<float>(max_logit + std::log(sum));
    const uint32_t choice = key->Choice(form.set, static_cast<uint32_t>(form.tokens.size()),
                                        ContextFor(form, history, &ctx));
    const int32_t target = form.tokens[choice];
    if (!owned(target)) return;
    for (int32_t t : form.tokens) {
      if (owned(t)) logits[static_cast<size_t>(t)] = t == target ? total : -INFINITY;
    }
    ++moved;
  });
  return moved;
}

absl::StatusOr<int> CanaryProcessor::ProcessDense(const CanaryKey* key,
                                                  absl::Span<const int32_t> history,
                                                  absl::Span<float> logits) const {
  if (logits.size() != static_cast<size_t>(vocab_size_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("logit row has ", logits.size(), " entries, vocabulary is ", vocab_size_));
  }
  for (float l : logits) TRACEMARK_RETURN_IF_ERROR(CheckLogit(l));
  TRACEMARK_RETURN_IF_ERROR(CheckHistory(history));
  return DenseRow(key, history, logits);
}

absl::Status CanaryProcessor::ProcessBatch(absl::Span<const CanaryKey* const> keys,
                                           absl::Span<const absl::Span<const int32_t>> histories,
                                           absl::Span<float> logits,
                                           absl::Span<int> counts) const {
  const size_t rows = keys.size();
  const auto v = static_cast<size_t>(vocab_size_);
  if (histories.size() != rows || counts.size() != rows || logits.size() != rows * v) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", rows, " keys needs ", rows, " histories, ", rows,
                     " counts and ", rows, " x ", v, " logits"));
  }
  for (size_t b = 0; b < rows; ++b) {
    for (float l : logits.subspan(b * v, v)) TRACEMARK_RETURN_IF_ERROR(CheckLogit(l));
    TRACEMARK_RETURN_IF_ERROR(CheckHistory(histories[b]));
  }
  for (size_t b = 0; b < rows; ++b) {
    TRACEMARK_ASSIGN_OR_RETURN(counts[b], DenseRow(keys[b], histories[b], logits.subspan(b * v, v)));
  }
  return absl::OkStatus();
}

}  // namespace tracemark::canary
