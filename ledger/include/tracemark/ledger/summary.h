// What a ledger holds, in one pass: records, accounts, epochs, tokenizers, ids, the time range
// and its size on disk (bytes per served token).
//
//   TRACEMARK_ASSIGN_OR_RETURN(ledger::Summary s, ledger::Summarize(dir));
#ifndef TRACEMARK_LEDGER_SUMMARY_H_
#define TRACEMARK_LEDGER_SUMMARY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "tracemark/ledger/reader.h"

namespace tracemark::ledger {

struct Summary {
  ReadReport read;  // the segments, their state and bytes on disk
  uint64_t records = 0;
  uint64_t anonymous = 0;  // records of requests without an account
  uint64_t accounts = 0;   // distinct accounts served
  std::map<uint32_t, uint64_t> records_per_epoch;
  std::map<std::string, uint64_t> records_per_tokenizer;
  uint64_t prompt_ids = 0, response_ids = 0;
  int64_t first_time_us = 0, last_time_us = 0;  // 0 when empty

  // Bytes on disk per served (response) token; 0 for an empty ledger.
  double bytes_per_response_id() const;
};

// Reads the ledger at `path` once (ReadLedger's errors); `visit`, when set, also sees each record.
absl::StatusOr<Summary> Summarize(const std::string& path, const ReadOptions& options = {},
                                  const std::function<void(const Record&)>& visit = nullptr);

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_SUMMARY_H_
