#include "tracemark/ledger/window_index.h"

#include <algorithm>
#include <utility>

#include "tracemark/base/status_macros.h"
#include "tracemark/base/window_key.h"

namespace tracemark::ledger {

absl::StatusOr<WindowIndex::Builder> WindowIndex::Builder::Create(int h) {
  if (h < 1) return absl::InvalidArgumentError("window width h must be >= 1");
  return Builder(h);
}

void WindowIndex::Builder::Add(const Record& record) {
  ++records_;
  const auto h = static_cast<size_t>(h_);
  const size_t first = record.prompt_ids.size();
  // The record's ids as the model saw them: the kept prompt ids, then the response.
  std::vector<int32_t> ids;
  ids.reserve(first + record.response_ids.size());
  ids.insert(ids.end(), record.prompt_ids.begin(), record.prompt_ids.end());
  ids.insert(ids.end(), record.response_ids.begin(), record.response_ids.end());
  const uint64_t account = record.account.value_or(kAnonymous);
  const size_t start = std::max(first, h);
  skipped_ += start - first;
  for (size_t i = start; i < ids.size(); ++i) {
    pairs_.emplace_back(base::WindowKey(ids, i, h), account);
  }
  positions_ += ids.size() > start ? ids.size() - start : 0;
}

WindowIndex WindowIndex::Builder::Finish() && {
  std::sort(pairs_.begin(), pairs_.end());
  pairs_.erase(std::unique(pairs_.begin(), pairs_.end()), pairs_.end());
  WindowIndex index(h_);
  Stats& s = index.stats_;
  s.records = records_;
  s.positions = positions_;
  s.positions_skipped = skipped_;
  s.pairs = pairs_.size();
  index.keys_.reserve(pairs_.size());
  index.accounts_.reserve(pairs_.size());
  for (size_t i = 0; i < pairs_.size();) {
    size_t end = i;
    while (end < pairs_.size() && pairs_[end].first == pairs_[i].first) ++end;
    const bool anonymous = pairs_[end - 1].second == kAnonymous;
    const size_t accounts = end - i - (anonymous ? 1 : 0);
    ++s.windows;
    s.exclusive_windows += accounts == 1 && !anonymous;
    s.anonymous_only += accounts == 0;
    for (; i < end; ++i) {
      index.keys_.push_back(pairs_[i].first);
      index.accounts_.push_back(pairs_[i].second);
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>>().swap(pairs_);
  return index;
}

absl::StatusOr<WindowIndex> WindowIndex::Build(const std::string& path, int h,
                                               const ReadOptions& options, ReadReport* report) {
  TRACEMARK_ASSIGN_OR_RETURN(Builder builder, Builder::Create(h));
  TRACEMARK_RETURN_IF_ERROR(ReadLedger(
      path,
      [&](const Record& r) {
        builder.Add(r);
        return absl::OkStatus();
      },
      report, options));
  return std::move(builder).Finish();
}

std::optional<WindowIndex::Served> WindowIndex::Find(absl::Span<const int32_t> ids,
                                                     size_t i) const {
  const auto h = static_cast<size_t>(h_);
  if (i < h || i > ids.size()) return std::nullopt;
  const uint64_t key = base::WindowKey(ids, i, h);
  const auto [lo, hi] = std::equal_range(keys_.begin(), keys_.end(), key);
  if (lo == hi) return std::nullopt;
  const auto from = static_cast<size_t>(lo - keys_.begin());
  auto n = static_cast<size_t>(hi - lo);
  Served s;
  s.anonymous = accounts_[from + n - 1] == kAnonymous;
  if (s.anonymous) --n;
  s.accounts = absl::MakeConstSpan(accounts_.data() + from, n);
  return s;
}

}  // namespace tracemark::ledger
