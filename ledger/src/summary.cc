#include "tracemark/ledger/summary.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::ledger {

double Summary::bytes_per_response_id() const {
  return response_ids == 0
             ? 0.0
             : static_cast<double>(read.file_bytes) / static_cast<double>(response_ids);
}

absl::StatusOr<Summary> Summarize(const std::string& path, const ReadOptions& options,
                                  const std::function<void(const Record&)>& visit) {
  Summary s;
  absl::flat_hash_set<uint64_t> accounts;
  TRACEMARK_RETURN_IF_ERROR(ReadLedger(
      path,
      [&](const Record& r) {
        ++s.records;
        if (r.account.has_value()) {
          accounts.insert(*r.account);
        } else {
          ++s.anonymous;
        }
        ++s.records_per_epoch[r.epoch];
        ++s.records_per_tokenizer[r.tokenizer];
        s.prompt_ids += r.prompt_ids.size();
        s.response_ids += r.response_ids.size();
        s.first_time_us = s.records == 1 ? r.time_us : std::min(s.first_time_us, r.time_us);
        s.last_time_us = std::max(s.last_time_us, r.time_us);
        if (visit) visit(r);
        return absl::OkStatus();
      },
      &s.read, options));
  s.accounts = accounts.size();
  return s;
}

}  // namespace tracemark::ledger
