// Every record of a ledger directory or segment, in order, for tests (a real ledger is streamed:
// ledger/reader.h).
//
//   auto records = test_support::ReadRecords(dir);
//   ASSERT_TRUE(records.ok()) << records.status();
#ifndef TRACEMARK_TESTS_TESTING_LEDGER_RECORDS_H_
#define TRACEMARK_TESTS_TESTING_LEDGER_RECORDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/record.h"

namespace tracemark::test_support {

inline absl::StatusOr<std::vector<ledger::Record>> ReadRecords(
    const std::string& path, ledger::ReadReport* report = nullptr,
    const ledger::ReadOptions& options = {}) {
  std::vector<ledger::Record> out;
  const absl::Status s = ledger::ReadLedger(
      path,
      [&](const ledger::Record& r) {
        out.push_back(r);
        return absl::OkStatus();
      },
      report, options);
  if (!s.ok()) return s;
  return out;
}

}  // namespace tracemark::test_support

#endif  // TRACEMARK_TESTS_TESTING_LEDGER_RECORDS_H_
