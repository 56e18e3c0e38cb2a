// The scan's one spec type (detect::ScanJobSpec) as the service's ScanParameters proto, both ways:
// the one place where the two convert (the CLI's flags convert to the spec in cli/
// scan_spec_flags.cc, JSON in detect/scan_job.cc). Inputs are not parameters: a request names its
// uploads and server paths beside them.
#ifndef TRACEMARK_SERVICE_SCAN_PARAMETERS_H_
#define TRACEMARK_SERVICE_SCAN_PARAMETERS_H_

#include "absl/status/statusor.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/v1/verifier.pb.h"

namespace tracemark::service {

// InvalidArgument for what the service cannot take: a canary lexicon file (it scans with the
// built-in lexicon).
absl::StatusOr<v1::ScanParameters> ToScanParameters(const detect::ScanJobSpec& spec);

// A spec without inputs; fields left at their proto defaults keep the spec's defaults.
// InvalidArgument for malformed epochs and the like.
absl::StatusOr<detect::ScanJobSpec> FromScanParameters(const v1::ScanParameters& p);

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SCAN_PARAMETERS_H_
