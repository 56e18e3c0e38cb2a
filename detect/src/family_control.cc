#include "tracemark/detect/family_control.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace tracemark::detect {

absl::StatusOr<FamilyControl> ParseFamilyControl(std::string_view name) {
  if (name == "none") return FamilyControl::kNone;
  if (name == "fwer") return FamilyControl::kFwer;
  if (name == "fdr") return FamilyControl::kFdr;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown family control '", std::string(name), "' (none, fwer or fdr)"));
}

std::string FamilyControlName(FamilyControl c) {
  switch (c) {
    case FamilyControl::kFwer:
      return "fwer";
    case FamilyControl::kFdr:
      return "fdr";
    case FamilyControl::kNone:
      break;
  }
  return "none";
}

std::vector<bool> Rejected(absl::Span<const stats::PValue> p, double alpha, FamilyControl control,
                           bool independent) {
  const size_t n = p.size();
  std::vector<bool> out(n, false);
  if (n == 0) return out;
  const double log_alpha = std::log(alpha), log_n = std::log(static_cast<double>(n));
  if (control != FamilyControl::kFdr) {
    const double bound = control == FamilyControl::kFwer ? log_alpha - log_n : log_alpha;
    for (size_t i = 0; i < n; ++i) out[i] = p[i].log() <= bound;
    return out;
  }
  double harmonic = 1;  // Benjamini-Yekutieli's c(n) = 1 + 1/2 + ... + 1/n
  if (!independent) {
    harmonic = 0;
    for (size_t k = 1; k <= n; ++k) harmonic += 1.0 / static_cast<double>(k);
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  size_t reject = 0;  // the largest k with p_(k) <= k alpha / (n c(n))
  for (size_t k = 1; k <= n; ++k) {
    const double bound = log_alpha + std::log(static_cast<double>(k)) - log_n - std::log(harmonic);
    if (p[order[k - 1]].log() <= bound) reject = k;
  }
  for (size_t k = 0; k < reject; ++k) out[order[k]] = true;
  return out;
}

std::string DescribeControl(FamilyControl control, double alpha, bool independent) {
  switch (control) {
    case FamilyControl::kFwer:
      return absl::StrCat("documents flagged and attributed with the family-wise error rate at ",
                          alpha, " (Bonferroni over the documents tested)");
    case FamilyControl::kFdr:
      return absl::StrCat("documents flagged and attributed with the false-discovery rate at ",
                          alpha,
                          independent ? " (Benjamini-Hochberg; the per-document tests are "
                                        "independent, on unshared tuples)"
                                      : " (Benjamini-Yekutieli, valid under any dependence)");
    case FamilyControl::kNone:
      break;
  }
  return absl::StrCat("each document flagged and attributed at its own p <= ", alpha,
                      " (no correction for the number of documents)");
}

}  // namespace tracemark::detect
