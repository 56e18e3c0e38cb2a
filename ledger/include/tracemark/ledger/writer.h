// Appending served responses to the ledger: one segment file per writer, under the ledger's
// directory, written append-only as one Zstandard stream flushed after every record, so that a
// writer killed at any moment (kill -9) loses at most the record it was writing, and the segment
// stays readable up to it (ledger/reader.h). Writers never reopen a segment: several processes may
// write one ledger at once, each its own segment.
//
//   auto writer = ledger::Writer::Open("/var/lib/tracemark/ledger");
//   TRACEMARK_RETURN_IF_ERROR((*writer)->Append(record));   // at the end of each response
//   TRACEMARK_RETURN_IF_ERROR((*writer)->Close());          // finishes the stream
//
// Thread-safe: Append may be called from several threads (records are written whole, one at a
// time). After a failed write the writer refuses every further Append with that status (the
// stream on disk ends at the last whole record); open a new writer to go on.
#ifndef TRACEMARK_LEDGER_WRITER_H_
#define TRACEMARK_LEDGER_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tracemark/ledger/record.h"

namespace tracemark::ledger {

struct WriterOptions {
  int compression_level = 3;  // Zstandard level, 1..19
  // fdatasync after each record, so that a power loss too loses at most the record in flight
  // (a killed process loses nothing the kernel has: without it a record is on disk within the
  // kernel's write-back interval).
  bool sync_each_record = false;
  // The segment is written under a temporary name and appears in the ledger only at Close
  // (imports: all or nothing). Serving writers leave it false, so the records are in the ledger
  // as they are written.
  bool publish_on_close = false;
};

struct WriterStats {
  uint64_t records = 0;
  uint64_t prompt_ids = 0;
  uint64_t response_ids = 0;
  uint64_t bytes = 0;  // bytes written to the segment file so far, header included
};

class Writer {
 public:
  // Creates a new segment in `directory` (created if missing; its parent must exist).
  // InvalidArgument for a bad compression level; the system's reason (base/file_io.h's codes)
  // when the directory or the file cannot be made.
  static absl::StatusOr<std::unique_ptr<Writer>> Open(const std::string& directory,
                                                      const WriterOptions& options = {});
  ~Writer();  // Close(), its status dropped; call Close() to see it

  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Appends one record (CheckRecord's errors, nothing written). The record is in the file (and in
  // the kernel's page cache at least) when this returns OK.
  absl::Status Append(const Record& record);

  // Ends the stream, flushes the file to disk and, with publish_on_close, gives it its final
  // name. Further Appends are refused. Idempotent.
  absl::Status Close();

  // With publish_on_close: removes the unpublished segment (an import that failed). Otherwise
  // the same as Close().
  absl::Status Abandon();

  // The segment's path (its final name).
  const std::string& path() const;
  WriterStats stats() const;

 private:
  struct State;
  explicit Writer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_WRITER_H_
