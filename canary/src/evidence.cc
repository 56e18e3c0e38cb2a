#include "tracemark/canary/evidence.h"

#include <algorithm>
#include <thread>

#include "absl/container/flat_hash_set.h"

namespace tracemark::canary {

void CanaryStatistics::Add(absl::Span<const Event> events) {
  for (const Event& e : events) {
    auto& c = counts_[Key{e.set, e.context}];
    if (e.member < kMaxSetSize) ++c[e.member];
  }
  events_ += events.size();
}

void CanaryStatistics::Merge(const CanaryStatistics& other) {
  for (const auto& [key, c] : other.counts_) {
    auto& mine = counts_[key];
    for (size_t i = 0; i < kMaxSetSize; ++i) mine[i] += c[i];
  }
  events_ += other.events_;
}

std::vector<CanaryStatistics::Entry> CanaryStatistics::Entries() const {
  std::vector<Entry> out;
  out.reserve(counts_.size());
  for (const auto& [key, c] : counts_) out.push_back({key.set, key.context, c});
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.set != b.set ? a.set < b.set : a.context < b.context;
  });
  return out;
}

void CanaryStatistics::AddEntry(const Entry& entry) {
  auto& mine = counts_[Key{entry.set, entry.context}];
  for (size_t i = 0; i < kMaxSetSize; ++i) mine[i] += entry.counts[i];
}

std::vector<Tuple> CanaryStatistics::Tuples(const Lexicon& lexicon) const {
  std::vector<Tuple> out;
  out.reserve(counts_.size());
  for (const auto& [key, c] : counts_) {
    if (key.set >= lexicon.sets().size()) continue;  // not from this lexicon
    Tuple t;
    t.set = key.set;
    t.context = key.context;
    t.set_size = static_cast<uint32_t>(lexicon.sets()[key.set].members.size());
    t.member =
        static_cast<uint32_t>(std::max_element(c.begin(), c.begin() + t.set_size) - c.begin());
    out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const Tuple& a, const Tuple& b) {
    return a.set != b.set ? a.set < b.set : a.context < b.context;
  });
  return out;
}

stats::BinomialSum NullOfMatches(absl::Span<const Tuple> tuples, uint64_t accounts) {
  std::array<uint64_t, kMaxSetSize + 1> by_size{};
  for (const Tuple& t : tuples) ++by_size[std::min<size_t>(t.set_size, kMaxSetSize)];
  stats::BinomialSum null;
  for (size_t k = 2; k <= kMaxSetSize; ++k) {
    null.Add(by_size[k] * accounts, 1.0 / static_cast<double>(k));
  }
  return null;
}

uint64_t CountMatches(absl::Span<const Tuple> tuples, const CanaryKey& key) {
  uint64_t m = 0;
  for (const Tuple& t : tuples) m += key.Choice(t.set, t.set_size, t.context) == t.member;
  return m;
}

CanaryResult TestAccount(absl::Span<const Tuple> tuples, const CanaryKey& key) {
  const stats::BinomialSum null = NullOfMatches(tuples);
  CanaryResult r;
  r.account = key.account();
  r.tuples = tuples.size();
  r.matches = CountMatches(tuples, key);
  r.expected = null.Mean();
  r.p = null.UpperTail(r.matches);
  return r;
}

CanaryAttribution AttributeAmong(absl::Span<const Tuple> tuples, absl::Span<const CanaryKey> keys,
                                 size_t top, int threads) {
  std::vector<uint64_t> matches(keys.size());
  const size_t workers = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1,
                                            std::max<size_t>(keys.size(), 1));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = w; i < keys.size(); i += workers) matches[i] = CountMatches(tuples, keys[i]);
    });
  }
  for (auto& t : pool) t.join();
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t k = std::min(top, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(),
                    [&](size_t a, size_t b) {
                      return matches[a] != matches[b] ? matches[a] > matches[b]
                                                      : keys[a].account() < keys[b].account();
                    });
  const stats::BinomialSum null = NullOfMatches(tuples);
  CanaryAttribution out;
  out.accounts_tried = keys.size();
  out.exact = null.exact();
  for (size_t i = 0; i < k; ++i) {
    CanaryResult r;
    r.account = keys[order[i]].account();
    r.tuples = tuples.size();
    r.matches = matches[order[i]];
    r.expected = null.Mean();
    r.p = null.UpperTail(r.matches);
    out.top.push_back(r);
  }
  if (!out.top.empty()) out.corrected = stats::Bonferroni(out.top[0].p, out.accounts_tried);
  return out;
}

CohortResult TestCohort(absl::Span<const Tuple> tuples, absl::Span<const CanaryKey> cohort) {
  // Distinct accounts only: the null needs independent keys.
  absl::flat_hash_set<uint64_t> seen;
  CohortResult r;
  r.tuples = tuples.size();
  const stats::BinomialSum one = NullOfMatches(tuples, 1);
  for (const CanaryKey& key : cohort) {
    if (!seen.insert(key.account()).second) continue;
    ++r.accounts;
    const uint64_t m = CountMatches(tuples, key);
    r.matches += m;
    const stats::PValue p = one.UpperTail(m);
    if (r.accounts == 1 || p < r.best_member_p) {
      r.best_member_p = p;
      r.best_account = key.account();
      r.best_matches = m;
    }
  }
  const stats::BinomialSum null = NullOfMatches(tuples, r.accounts);
  r.expected = null.Mean();
  r.p = null.UpperTail(r.matches);
  r.best_member_p = stats::Bonferroni(r.best_member_p, std::max<uint64_t>(r.accounts, 1));
  r.combined_p = stats::Bonferroni(std::min(r.p, r.best_member_p), 2);
  return r;
}

}  // namespace tracemark::canary
