#include "tracemark/canary/processor.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/events.h"
#include "tracemark/watermark/logits.h"

namespace tracemark::canary {
namespace {

// How far back the previous word is looked for; a longer word is cut (and only that event's
// context differs from what detection computes).
constexpr size_t kMaxLookbackTokens = 64;
// Forms whose shared prefix, or a member's own part, is longer than this are not used.
constexpr size_t kMaxPrefixTokens = 8;
constexpr size_t kMaxOwnTokens = 6;
static_assert(CanaryProcessor::kHistoryIds ==
              kMaxLookbackTokens + kMaxPrefixTokens + kMaxOwnTokens);

enum FormKind { kSpaceLower, kSpaceUpper, kBareLower, kBareUpper, kFormKinds };

std::string Surface(const std::string& member, int kind) {
  std::string s = member;
  if (kind == kSpaceUpper || kind == kBareUpper) {
    if (s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  }
  if (kind == kSpaceLower || kind == kSpaceUpper) s.insert(s.begin(), ' ');
  return s;
}

// In a dense row, a set whose exact members are all this far (in logits) below the row's best
// token has under e^-14 (8e-7) probability per member: it is skipped, which saves the work for
// almost every set at every step and forgoes at most that mass of canary events.
constexpr float kNegligible = 14.0f;

// Each token's bytes by id (empty for an id without bytes).
std::vector<std::string> AllTokenBytes(const tokenizer::Tokenizer& tok) {
  std::vector<std::string> bytes_of(static_cast<size_t>(tok.vocab_size()));
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    absl::StatusOr<std::string> bytes = tok.TokenBytes(id);
    if (bytes.ok()) bytes_of[static_cast<size_t>(id)] = *std::move(bytes);
  }
  return bytes_of;
}

// The ids of each member written in the surface form `kind`.
absl::StatusOr<std::vector<std::vector<int32_t>>> EncodeMembers(
    const std::vector<std::string>& members, int kind, const tokenizer::Tokenizer& tok) {
  std::vector<std::vector<int32_t>> seqs;
  for (const std::string& m : members) {
    TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.Encode(Surface(m, kind)));
    seqs.push_back(std::move(ids));
  }
  return seqs;
}

// The number of leading ids all of `seqs` share (0 for none).
size_t SharedPrefix(const std::vector<std::vector<int32_t>>& seqs) {
  size_t shared = 0;
  bool fits = !seqs.empty();  // no member: no prefix (and no endless loop)
  while (fits) {
    for (const auto& seq : seqs)
      fits = fits && shared < seq.size() && seq[shared] == seqs[0][shared];
    if (fits) ++shared;
  }
  return shared;
}

}  // namespace

// Per-step memo of the context id for each prefix length.
struct CanaryProcessor::Context {
  struct Entry {
    size_t prefix_len;
    uint64_t id;
  };
  absl::InlinedVector<Entry, 2> entries;
  // Per prefix length: -1 unknown, else whether a bare form may start there.
  int8_t boundary[kMaxPrefixTokens + 1] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
};

absl::StatusOr<std::unique_ptr<CanaryProcessor>> CanaryProcessor::Create(
    const Lexicon* lexicon, const tokenizer::Tokenizer& tok) {
  if (lexicon == nullptr) return absl::InvalidArgumentError("no lexicon");
  std::unique_ptr<CanaryProcessor> p(new CanaryProcessor());
  p->lexicon_ = lexicon;
  p->vocab_size_ = tok.vocab_size();
  p->token_bytes_ = AllTokenBytes(tok);
  const std::vector<PhraseSet>& sets = lexicon->sets();
  p->active_forms_.assign(sets.size(), 0);
  for (uint32_t s = 0; s < sets.size(); ++s) TRACEMARK_RETURN_IF_ERROR(p->AddForms(s, tok));
  p->IndexMemberTokens();
  return p;
}

absl::Status CanaryProcessor::AddForms(uint32_t s, const tokenizer::Tokenizer& tok) {
  for (int kind = 0; kind < kFormKinds; ++kind) {
    TRACEMARK_ASSIGN_OR_RETURN(const std::vector<std::vector<int32_t>> seqs,
                               EncodeMembers(lexicon_->sets()[s].members, kind, tok));
    Form form;
    if (!MakeForm(s, kind, seqs, &form)) {
      if (kind == kSpaceLower) break;  // the set is inactive: no form of it is used
      continue;
    }
    if (Clashes(form)) continue;
    AddForm(std::move(form), kind);
  }
  return absl::OkStatus();
}

bool CanaryProcessor::MakeForm(uint32_t set, int kind,
                               const std::vector<std::vector<int32_t>>& seqs, Form* form) {
  form->set = set;
  form->needs_boundary = kind == kBareLower || kind == kBareUpper;
  // Shared prefix, then distinct first own tokens; at least one exact member.
  const size_t shared = SharedPrefix(seqs);
  bool fits = shared <= kMaxPrefixTokens;
  bool exact = false;
  for (const auto& seq : seqs) {
    fits = fits && seq.size() > shared && seq.size() - shared <= kMaxOwnTokens;
    if (fits) {
      form->tokens.push_back(seq[shared]);
      form->rest.emplace_back(seq.begin() + static_cast<ptrdiff_t>(shared) + 1, seq.end());
      exact = exact || form->rest.back().empty();
    }
  }
  if (fits) {
    std::vector<int32_t> sorted = form->tokens;
    std::sort(sorted.begin(), sorted.end());
    fits = exact && std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  }
  if (!fits) return false;
  form->prefix.assign(seqs[0].begin(), seqs[0].begin() + static_cast<ptrdiff_t>(shared));
  return true;
}

bool CanaryProcessor::Clashes(const Form& form) const {
  // A token can serve two forms only with different prefixes (the longer applies first).
  bool clash = false;
  for (int32_t t : form.tokens) {
    auto it = by_token_.find(t);
    if (it == by_token_.end()) continue;
    for (uint32_t other : it->second) clash = clash || forms_[other].prefix == form.prefix;
  }
  return clash;
}

void CanaryProcessor::AddForm(Form form, int kind) {
  static constexpr uint8_t kBits[kFormKinds] = {kFormSpaceLower, kFormSpaceUpper, kFormBareLower,
                                                kFormBareUpper};
  active_forms_[form.set] |= kBits[kind];
  const auto index = static_cast<uint32_t>(forms_.size());
  for (int32_t t : form.tokens) by_token_[t].push_back(index);
  if (form.prefix.empty()) {
    unprefixed_.push_back(index);
  } else {
    by_last_prefix_[form.prefix.back()].push_back(index);
  }
  forms_.push_back(std::move(form));
}

void CanaryProcessor::IndexMemberTokens() {
  is_member_token_.assign(static_cast<size_t>(vocab_size_), 0);
  for (const auto& [t, forms] : by_token_) {
    is_member_token_[static_cast<size_t>(t)] = 1;
    if (forms.size() > 1) {
      for (uint32_t f : forms) forms_[f].shared = true;
    }
  }
}

absl::Status CanaryProcessor::CheckHistory(absl::Span<const int32_t> history) const {
  // Only the ids the choice can read: the longest prefix and the look-back before it.
  return watermark::CheckIds(history.last(std::min(history.size(), kHistoryIds)), vocab_size_,
                             "history: ");
}

std::vector<bool> CanaryProcessor::active_sets() const {
  std::vector<bool> active(active_forms_.size());
  for (size_t s = 0; s < active.size(); ++s) active[s] = active_forms_[s] != 0;
  return active;
}

size_t CanaryProcessor::active_count() const {
  return static_cast<size_t>(
      std::count_if(active_forms_.begin(), active_forms_.end(), [](uint8_t f) { return f != 0; }));
}

bool CanaryProcessor::Applies(const Form& form, absl::Span<const int32_t> history,
                              Context* ctx) const {
  const size_t n = form.prefix.size();
  if (history.size() < n) return false;
  if (!std::equal(form.prefix.begin(), form.prefix.end(), history.end() - n)) return false;
  if (!form.needs_boundary) return true;
  int8_t& known = ctx->boundary[n];
  if (known < 0) {
    // The member starts a word only after a byte that is neither a word byte nor a joiner.
    known = 1;
    for (size_t j = history.size() - n; j > 0; --j) {
      const std::string& b = token_bytes_[static_cast<size_t>(history[j - 1])];
      if (b.empty()) continue;
      const char last = b.back();
      known = !IsWordByte(static_cast<unsigned char>(last)) && !IsJoiner(last);
      break;
    }
  }
  return known == 1;
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

bool CanaryProcessor::Continue(absl::Span<const int32_t> history, CanaryState* state,
                               absl::Span<watermark::Candidate> candidates,
                               absl::Span<float> logits) {
  if (state == nullptr || !state->busy()) return false;
  const bool on_track =
      state->steps_ == state->at_ && !history.empty() && history.back() == state->expect_;
  if (!on_track || (state->pending_ && !state->force_) || state->next_ >= state->rest_.size()) {
    state->Reset();
    return false;
  }
  state->pending_ = false;
  state->forcing_ = true;
  const int32_t t = state->rest_[state->next_++];
  if (logits.empty()) {
    size_t keep = 0;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].id == t || candidates[i].logit > candidates[keep].logit) keep = i;
      if (candidates[i].id == t) break;
    }
    candidates[keep].id = t;
    for (size_t i = 0; i < candidates.size(); ++i)
      candidates[i].logit = i == keep ? 0.0f : -INFINITY;
  } else {
    for (float& l : logits) l = -INFINITY;
    logits[static_cast<size_t>(t)] = 0.0f;
  }
  state->at_ = state->steps_ + 1;
  state->expect_ = t;
  if (state->next_ == state->rest_.size()) state->forcing_ = false, state->pending_ = false;
  if (!state->forcing_) state->Reset();
  return true;
}

bool CanaryProcessor::MoveMass(const Form& form, absl::Span<Slot> slots, const CanaryKey& key,
                               absl::Span<const int32_t> history, Context* ctx, CanaryState* state,
                               absl::Span<const watermark::Candidate> list) const {
  // The exact members present, and their total mass (log-sum-exp of their logits).
  double max_logit = -INFINITY;
  Slot* best = nullptr;
  for (Slot& s : slots) {
    if (!form.rest[s.member].empty() || !(*s.logit > max_logit)) continue;
    max_logit = *s.logit;
    best = &s;
  }
  if (best == nullptr) return false;
  double sum = 0;
  for (const Slot& s : slots) {
    if (form.rest[s.member].empty()) sum += std::exp(*s.logit - max_logit);
  }
  const double mass = max_logit + std::log(sum);
  const uint64_t context = ContextFor(form, history, ctx);
  const uint32_t k = key.Choice(form.set, static_cast<uint32_t>(form.tokens.size()), context);
  const int32_t target_id = form.tokens[k];
  const bool multi = !form.rest[k].empty();
  if (multi && (state == nullptr || state->busy())) return false;
  Slot* target = nullptr;
  for (Slot& s : slots) {
    if (s.member == k) target = &s;
  }
  double ratio = 1.0;  // share of the target's first-token mass that is moved mass
  if (target == nullptr) {
    // Sparse, keyed member not a candidate: the best exact member's slot becomes it, unless its
    // token is in the list under another form (then the set is left alone at this step).
    for (const auto& c : list) {
      if (c.id == target_id) return false;
    }
    *best->id = target_id;
    best->member = k;
    target = best;
    *target->logit = static_cast<float>(mass);
  } else if (multi) {
    const double q = *target->logit;
    const double total =
        q > mass ? q + std::log1p(std::exp(mass - q)) : mass + std::log1p(std::exp(q - mass));
    ratio = std::exp(mass - total);
    *target->logit = static_cast<float>(total);
  } else {
    *target->logit = static_cast<float>(mass);
  }
  for (Slot& s : slots) {
    if (&s != target && form.rest[s.member].empty()) *s.logit = -INFINITY;
  }
  if (multi) {
    state->pending_ = true;
    state->at_ = state->steps_ + 1;
    state->expect_ = target_id;
    state->force_ = key.Uniform(form.set, context) < ratio;
    state->rest_ = form.rest[k];
    state->next_ = 0;
  }
  return true;
}

absl::StatusOr<int> CanaryProcessor::ProcessSparse(const CanaryKey* key,
                                                   absl::Span<const int32_t> history,
                                                   absl::Span<watermark::Candidate> candidates,
                                                   CanaryState* state) const {
  TRACEMARK_RETURN_IF_ERROR(watermark::CheckCandidates(candidates, vocab_size_));
  TRACEMARK_RETURN_IF_ERROR(CheckHistory(history));
  return SparseChecked(key, history, candidates, state);
}

int CanaryProcessor::SparseChecked(const CanaryKey* key, absl::Span<const int32_t> history,
                                   absl::Span<watermark::Candidate> candidates,
                                   CanaryState* state) const {
  const int moved = SparseStep(key, history, candidates, state);
  if (state != nullptr) ++state->steps_;
  return moved;
}

int CanaryProcessor::SparseStep(const CanaryKey* key, absl::Span<const int32_t> history,
                                absl::Span<watermark::Candidate> candidates,
                                CanaryState* state) const {
  if (key == nullptr) return 0;
  if (Continue(history, state, candidates, {})) return 1;
  Context ctx;
  // Group candidates by the applicable form with the longest prefix that owns their token.
  // A form's slots among the candidates (a repeated candidate id beyond the set size is ignored).
  struct Group {
    uint32_t form = 0;
    size_t n = 0;
    std::array<Slot, kMaxSetSize> slots{};
  };
  absl::InlinedVector<Group, 2> groups;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!is_member_token_[static_cast<size_t>(candidates[i].id)]) continue;
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
    const Form& form = forms_[static_cast<size_t>(best)];
    const auto member = static_cast<uint32_t>(
        std::find(form.tokens.begin(), form.tokens.end(), candidates[i].id) - form.tokens.begin());
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const Group& x) { return x.form == static_cast<uint32_t>(best); });
    if (g == groups.end()) {
      groups.emplace_back();
      g = groups.end() - 1;
      g->form = static_cast<uint32_t>(best);
    }
    if (g->n < g->slots.size())
      g->slots[g->n++] = {member, &candidates[i].logit, &candidates[i].id};
  }
  int moved = 0;
  for (Group& g : groups) {
    moved += MoveMass(forms_[g.form], absl::MakeSpan(g.slots.data(), g.n), *key, history, &ctx,
                      state, candidates);
  }
  return moved;
}

int CanaryProcessor::DenseChecked(const CanaryKey* key, absl::Span<const int32_t> history,
                                  absl::Span<float> logits, float row_max,
                                  CanaryState* state) const {
  const int moved = DenseStep(key, history, logits, row_max, state);
  if (state != nullptr) ++state->steps_;
  return moved;
}

int CanaryProcessor::DenseStep(const CanaryKey* key, absl::Span<const int32_t> history,
                               absl::Span<float> logits, float row_max, CanaryState* state) const {
  if (key == nullptr) return 0;
  if (Continue(history, state, {}, logits)) return 1;
  Context ctx;
  int moved = 0;
  std::vector<Slot> slots;
  const float floor = row_max - kNegligible;
  ForEachForm(history, [&](uint32_t f) {
    const Form& form = forms_[f];
    bool worth = false;
    for (size_t m = 0; m < form.tokens.size() && !worth; ++m) {
      worth = form.rest[m].empty() && logits[static_cast<size_t>(form.tokens[m])] >= floor;
    }
    if (!worth || !Applies(form, history, &ctx)) return;
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
    slots.clear();
    for (uint32_t m = 0; m < form.tokens.size(); ++m) {
      if (form.shared && !owned(form.tokens[m])) return;
      slots.push_back({m, &logits[static_cast<size_t>(form.tokens[m])], nullptr});
    }
    moved += MoveMass(form, absl::MakeSpan(slots), *key, history, &ctx, state, {});
  });
  return moved;
}

absl::StatusOr<int> CanaryProcessor::ProcessDense(const CanaryKey* key,
                                                  absl::Span<const int32_t> history,
                                                  absl::Span<float> logits,
                                                  CanaryState* state) const {
  TRACEMARK_ASSIGN_OR_RETURN(const float row_max, watermark::CheckRow(logits, vocab_size_));
  TRACEMARK_RETURN_IF_ERROR(CheckHistory(history));
  return DenseChecked(key, history, logits, row_max, state);
}

absl::Status CanaryProcessor::ProcessBatch(absl::Span<const CanaryKey* const> keys,
                                           absl::Span<const absl::Span<const int32_t>> histories,
                                           absl::Span<float> logits, absl::Span<int> counts,
                                           absl::Span<CanaryState* const> states) const {
  const size_t rows = keys.size();
  const auto v = static_cast<size_t>(vocab_size_);
  if (histories.size() != rows || counts.size() != rows || logits.size() != rows * v ||
      (!states.empty() && states.size() != rows)) {
    return absl::InvalidArgumentError(absl::StrCat("batch of ", rows, " keys needs ", rows,
                                                   " histories, ", rows, " counts, ", rows, " x ",
                                                   v, " logits and ", rows, " states or none"));
  }
  std::vector<float> row_max(rows);
  for (size_t b = 0; b < rows; ++b) {
    TRACEMARK_ASSIGN_OR_RETURN(
        row_max[b],
        watermark::CheckRow(logits.subspan(b * v, v), vocab_size_, absl::StrCat("row ", b, ": ")));
    TRACEMARK_RETURN_IF_ERROR(CheckHistory(histories[b]));
  }
  for (size_t b = 0; b < rows; ++b) {
    counts[b] = DenseChecked(keys[b], histories[b], logits.subspan(b * v, v), row_max[b],
                             states.empty() ? nullptr : states[b]);
  }
  return absl::OkStatus();
}

}  // namespace tracemark::canary
