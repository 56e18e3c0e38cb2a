// Reading the ledger: every record of a ledger directory (its segments in name order, which is
// the order they were opened in) or of one segment file, streamed with bounded memory.
//
//   ledger::ReadReport report;
//   TRACEMARK_RETURN_IF_ERROR(ledger::ReadLedger(dir, [&](const ledger::Record& r) {
//     ...; return absl::OkStatus();
//   }, &report));
//
// A segment whose stream does not end (its writer was killed, or is still writing) is read up to
// its last whole record and reported as unfinished: that is what crash safety promises, not an
// error. Damage inside a segment (bytes that fail their checksum or do not decode) is DataLoss
// naming the file and the offset in its stream, unless ReadOptions::skip_damaged, which reads
// the segment up to the damage, reports it and goes on with the next segment.
#ifndef TRACEMARK_LEDGER_READER_H_
#define TRACEMARK_LEDGER_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tracemark/ledger/record.h"

namespace tracemark::ledger {

struct SegmentReport {
  std::string path;
  uint64_t records = 0;
  uint64_t file_bytes = 0;
  bool finished = false;       // the stream ended as its writer closed it
  uint64_t dropped_bytes = 0;  // bytes of a record in flight when an unfinished stream stopped
  std::string damage;          // empty, or what was wrong and where (with skip_damaged)
};

struct ReadReport {
  std::vector<SegmentReport> segments;
  uint64_t records = 0;
  uint64_t file_bytes = 0;
};

struct ReadOptions {
  bool skip_damaged = false;
};

// Calls `visit` for each record, in order; a non-OK status from it stops the read and is returned.
// NotFound for a missing path; InvalidArgument for a file that is not a ledger segment (its
// magic); DataLoss for damage (above). `report` (may be null) says what was read, also on error.
absl::Status ReadLedger(const std::string& path,
                        const std::function<absl::Status(const Record&)>& visit,
                        ReadReport* report = nullptr, const ReadOptions& options = {});

// The segment files of a ledger directory, in name order (a segment file: itself).
absl::StatusOr<std::vector<std::string>> SegmentFiles(const std::string& path);

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_READER_H_
