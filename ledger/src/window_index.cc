#include "tracemark/ledger/window_index.h"

#include <algorithm>
#include <vector>

#include "tracemark/base/status_macros.h"
#include "tracemark/base/window_key.h"

namespace tracemark::ledger {

absl::StatusOr<WindowIndex> WindowIndex::Create(int h) {
  if (h < 1) return absl::InvalidArgumentError("window width h must be >= 1");
  return WindowIndex(h);
}

absl::StatusOr<WindowIndex> WindowIndex::Build(const std::string& path, int h,
                                               const ReadOptions& options, ReadReport* report) {
  TRACEMARK_ASSIGN_OR_RETURN(WindowIndex index, Create(h));
  TRACEMARK_RETURN_IF_ERROR(ReadLedger(
      path,
      [&](const Record& r) {
        index.Add(r);
        return absl::OkStatus();
      },
      report, options));
  return index;
}

void WindowIndex::Add(const Record& record) {
  ++records_;
  const auto h = static_cast<size_t>(h_);
  // The record's ids as the model saw them: the kept prompt ids, then the response.
  std::vector<int32_t> ids;
  ids.reserve(record.prompt_ids.size() + record.response_ids.size());
  ids.insert(ids.end(), record.prompt_ids.begin(), record.prompt_ids.end());
  ids.insert(ids.end(), record.response_ids.begin(), record.response_ids.end());
  for (size_t i = record.prompt_ids.size(); i < ids.size(); ++i) {
    if (i < h) {
      ++skipped_;
      continue;
    }
    ++positions_;
    Served& s = windows_[base::WindowKey(ids, i, h)];
    ++s.positions;
    if (!record.account.has_value()) {
      s.anonymous = true;
      continue;
    }
    const auto at = std::lower_bound(s.accounts.begin(), s.accounts.end(), *record.account);
    if (at == s.accounts.end() || *at != *record.account) s.accounts.insert(at, *record.account);
  }
}

const WindowIndex::Served* WindowIndex::Find(absl::Span<const int32_t> ids, size_t i) const {
  const auto h = static_cast<size_t>(h_);
  if (i < h || i > ids.size()) return nullptr;
  const auto it = windows_.find(base::WindowKey(ids, i, h));
  return it == windows_.end() ? nullptr : &it->second;
}

WindowIndex::Stats WindowIndex::stats() const {
  Stats s;
  s.records = records_;
  s.positions = positions_;
  s.positions_skipped = skipped_;
  s.windows = windows_.size();
  for (const auto& [key, served] : windows_) {
    s.exclusive_windows += served.exclusive();
    s.anonymous_only += served.accounts.empty();
  }
  return s;
}

}  // namespace tracemark::ledger
