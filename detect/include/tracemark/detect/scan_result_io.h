// A scan partition's result as bytes, so that partitions scored in other processes or on other
// machines (docs/scale-out.md: Dask) can be merged into one scan.
//
//   std::string bytes = SerializeScanResult(partial);      // on a worker
//   TRACEMARK_ASSIGN_OR_RETURN(ScanResult r, ParseScanResult(bytes));
//   TRACEMARK_RETURN_IF_ERROR(merged.Merge(std::move(r)));  // on the client, in input order
//
// The encoding is versioned, little-endian and canonical: equal results give equal bytes (maps are
// written sorted). It carries statistics and per-document results, no key material. Parsing checks
// every length against the bytes left and every p-value's range, and refuses trailing bytes, so a
// truncated or corrupted partition is InvalidArgument, never a crash or a partial result; it does
// not authenticate the statistics (whoever can hand over a partition can shape its evidence), so
// partitions must come from the scan's own workers.
#ifndef TRACEMARK_DETECT_SCAN_RESULT_IO_H_
#define TRACEMARK_DETECT_SCAN_RESULT_IO_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tracemark/detect/scanner.h"

namespace tracemark::detect {

std::string SerializeScanResult(const ScanResult& result);
absl::StatusOr<ScanResult> ParseScanResult(std::string_view bytes);

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_SCAN_RESULT_IO_H_
