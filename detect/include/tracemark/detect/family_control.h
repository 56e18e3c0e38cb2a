// How many of a scan's documents are flagged (or attributed) when each has its own p-value: per
// document at alpha, or with the family of documents tested under control (docs/validity.md).
//
//   none  each document at p <= alpha: the error rate of one document (the default);
//   fwer  Bonferroni, p <= alpha / n: the chance of any false flag among the n documents tested
//         is at most alpha, whatever their dependence;
//   fdr   Benjamini-Hochberg at alpha: the expected share of false flags among those flagged is
//         at most alpha. BH needs independent (or positively dependent) p-values, which
//         per-document tests on unshared tuples are (shared_tuples.h); otherwise
//         Benjamini-Yekutieli (alpha divided by 1 + 1/2 + ... + 1/n), valid under any dependence.
#ifndef TRACEMARK_DETECT_FAMILY_CONTROL_H_
#define TRACEMARK_DETECT_FAMILY_CONTROL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/stats/pvalue.h"

namespace tracemark::detect {

enum class FamilyControl { kNone, kFwer, kFdr };

// "none", "fwer" or "fdr"; InvalidArgument naming them for anything else.
absl::StatusOr<FamilyControl> ParseFamilyControl(std::string_view name);
std::string FamilyControlName(FamilyControl c);

// Which of `p` are rejected at level `alpha` under `control`; `independent` chooses BH over BY
// for kFdr.
std::vector<bool> Rejected(absl::Span<const stats::PValue> p, double alpha, FamilyControl control,
                           bool independent);

// One sentence for a method string: the rule Rejected applied.
std::string DescribeControl(FamilyControl control, double alpha, bool independent);

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_FAMILY_CONTROL_H_
