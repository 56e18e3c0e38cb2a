// The documents of a scan's inputs, in a fixed order, read as a stream.
//
// Inputs are files and directories (walked recursively, entries in name order, hidden ones
// skipped). By content name (after a ".gz" or ".zst" suffix, see byte_stream.h):
//  - ".jsonl", ".ndjson": one record a line (document.h lists the shapes); a line that is not a
//    record is skipped and reported with its file and line number, and reading goes on;
//  - ".json": one record or an array of records (read whole; sources are "file#N");
//  - anything else: one text document per file, read in pieces of bounded size by whoever scores
//    it, so a file larger than memory is scored whole.
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<DocumentReader> r, DocumentReader::Open({"data/"}));
//   Document d;
//   while (true) {
//     TRACEMARK_ASSIGN_OR_RETURN(bool more, r->Next(&d));
//     if (!more) break;
//     ...
//   }
//
// Next() is not thread-safe; bytes_read() and the SegmentSource of a text document may be used
// from other threads.
#ifndef TRACEMARK_DATASET_INPUT_H_
#define TRACEMARK_DATASET_INPUT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/dataset/byte_stream.h"
#include "tracemark/dataset/document.h"

namespace tracemark::dataset {

struct ReaderOptions {
  size_t max_record_bytes = size_t{64} << 20;    // longer JSONL lines are skipped
  size_t text_piece_bytes = size_t{4} << 20;     // text files are scored in pieces of about this
  size_t max_json_file_bytes = size_t{1} << 30;  // a ".json" file is read whole, up to this
};

class DocumentReader {
 public:
  // NotFound naming the first path that does not exist; InvalidArgument for no path.
  static absl::StatusOr<std::unique_ptr<DocumentReader>> Open(std::vector<std::string> paths,
                                                              ReaderOptions options = {});

  // The next document, false at the end. A record or file that cannot be read is added to
  // skipped() and reading goes on; only a failure to list an input is an error.
  absl::StatusOr<bool> Next(Document* doc);

  const std::vector<Skipped>& skipped() const { return skipped_; }
  size_t files() const { return files_.size(); }
  // Every input file, in reading order (directories expanded).
  const std::vector<std::string>& paths() const { return files_; }
  // Bytes of the input files on disk (compressed sizes), and read so far, for progress.
  uint64_t total_bytes() const { return total_bytes_; }
  uint64_t bytes_read() const { return bytes_read_->load(std::memory_order_relaxed); }

 private:
  explicit DocumentReader(ReaderOptions options);
  absl::Status OpenNextFile();
  ReaderOptions options_;
  std::vector<std::string> files_;
  size_t next_file_ = 0;
  uint64_t total_bytes_ = 0;
  std::shared_ptr<std::atomic<uint64_t>> bytes_read_;
  uint64_t next_index_ = 0;
  std::vector<Skipped> skipped_;
  // The file being read record by record (JSONL), or the records of a JSON file.
  std::string current_;
  std::unique_ptr<LineReader> lines_;
  std::vector<Document> pending_;
  size_t pending_pos_ = 0;
};

}  // namespace tracemark::dataset

#endif  // TRACEMARK_DATASET_INPUT_H_
