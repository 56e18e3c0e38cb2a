#include "tracemark/service/scan_parameters.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::service {
namespace {

std::vector<uint64_t> SortedUnique(const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::vector<uint64_t> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

absl::StatusOr<v1::ScanParameters> ToScanParameters(const detect::ScanJobSpec& spec) {
  if (!spec.lexicon.empty()) {
    return absl::InvalidArgumentError(
        "--lexicon: the service scans with the built-in canary lexicon");
  }
  v1::ScanParameters p;
  p.set_encoding(spec.encoding);
  p.set_scheme(spec.scheme);
  p.set_watermark(spec.watermark);
  p.set_account_limit(spec.account_limit);
  for (uint64_t a : spec.account_ids) p.add_account_ids(a);
  std::string epochs;
  for (uint32_t e : spec.epochs) absl::StrAppend(&epochs, epochs.empty() ? "" : ",", e);
  p.set_epochs(epochs);
  p.set_alpha(spec.alpha);
  p.set_max_candidates(static_cast<uint32_t>(spec.max_candidates));
  p.set_no_canary(!spec.canary);
  for (uint64_t a : spec.cohort) p.add_cohort(a);
  p.set_independent_documents(spec.independent_documents);
  p.set_family_control(spec.family_control);
  return p;
}

absl::StatusOr<detect::ScanJobSpec> FromScanParameters(const v1::ScanParameters& p) {
  detect::ScanJobSpec s;
  if (!p.encoding().empty()) s.encoding = p.encoding();
  if (!p.scheme().empty()) s.scheme = p.scheme();
  s.watermark = p.watermark();
  s.account_limit = p.account_limit();
  s.account_ids = SortedUnique(p.account_ids());
  if (!p.epochs().empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(s.epochs, detect::ParseEpochs(p.epochs()));
  }
  if (p.alpha() != 0) s.alpha = p.alpha();
  if (p.max_candidates() != 0) s.max_candidates = p.max_candidates();
  s.canary = !p.no_canary();
  s.cohort = SortedUnique(p.cohort());
  s.independent_documents = p.independent_documents();
  if (!p.family_control().empty()) s.family_control = p.family_control();
  return s;
}

}  // namespace tracemark::service
