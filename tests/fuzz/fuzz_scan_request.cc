// What a client sends the service: a SubmitScanRequest as bytes (parsed, converted to a scan
// spec, validated), and scan options as JSON (a report's "options", read back by report verify).
#include <cstdint>
#include <string>

#include "convert.h"
#include "nlohmann/json.hpp"
#include "tracemark/detect/scan_job.h"
#include "tracemark/service/scan_parameters.h"
#include "tracemark/v1/verifier.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tracemark::v1::SubmitScanRequest req;
  if (req.ParseFromArray(data, static_cast<int>(size)) && req.has_request()) {
    auto spec = tracemark::service::FromScanParameters(req.request().parameters());
    if (spec.ok()) (void)spec->Validate();
  }
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (!j.is_discarded()) {
    auto spec = tracemark::detect::ScanJobSpec::FromOptions(j);
    if (spec.ok()) (void)spec->Validate();
    (void)tracemark::detect::CanonicalResult(j, {"a", "b"});
  }
  return 0;
}
