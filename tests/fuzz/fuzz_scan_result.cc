// A scan partition's serialized result (scan_result_io.h), as a Dask worker returns it: any bytes
// end in a result or a status, never a crash; a parsed result serializes canonically (serialize,
// parse, serialize gives the same bytes) and merges with itself.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tracemark/detect/scan_result_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = tracemark::detect::ParseScanResult(bytes);
  if (!parsed.ok()) return 0;
  const std::string once = tracemark::detect::SerializeScanResult(*parsed);
  auto again = tracemark::detect::ParseScanResult(once);
  if (!again.ok() || tracemark::detect::SerializeScanResult(*again) != once) std::abort();
  tracemark::detect::ScanResult copy = *again;
  (void)parsed->Merge(std::move(copy));
  return 0;
}
