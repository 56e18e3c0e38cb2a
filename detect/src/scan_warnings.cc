#include "tracemark/detect/scan_warnings.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tracemark::detect {
namespace {

std::string Share(uint64_t part, uint64_t whole) {
  return absl::StrFormat(
      "%d of %d (%.1f %%)", part, whole,
      whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
}

}  // namespace

std::vector<std::string> ScanWarnings(const ScanResult& result, const ScanSummary& summary,
                                      std::string_view tokenizer) {
  std::vector<std::string> out;
  const uint64_t n = result.documents.size();
  uint64_t not_round_trip = 0, repaired = 0;
  for (const DocumentResult& d : result.documents) {
    not_round_trip += d.round_trips ? 0 : 1;
    repaired += d.repaired_utf8 ? 1 : 0;
  }
  if (not_round_trip > 0) {
    out.push_back(absl::StrCat(
        Share(not_round_trip, n), " documents do not round-trip through the tokenizer ",
        std::string(tokenizer),
        " (decoding its tokens does not give the text back, or the suspect's own reported "
        "tokens split the text elsewhere), so the ids scored are not those a model wrote",
        2 * not_round_trip > n ? ": the text is most likely not from a model with this tokenizer "
                                 "(check --tokenizer)"
                               : ""));
  }
  if (summary.white_box.has_value() && summary.white_box->unusable > 0) {
    const WhiteBoxSummary& w = *summary.white_box;
    out.push_back(absl::StrCat(
        Share(w.unusable, w.unusable + w.documents),
        " answers' log-probabilities were not used by the white-box test: ", w.problem));
  }
  if (!result.skipped.empty()) {
    out.push_back(absl::StrCat(result.skipped.size(), " input(s) skipped, not tested; the first, ",
                               result.skipped.front().source, ": ", result.skipped.front().reason));
  }
  if (repaired > 0) {
    out.push_back(absl::StrCat(Share(repaired, n),
                               " documents held invalid UTF-8, replaced by U+FFFD before scoring"));
  }
  return out;
}

}  // namespace tracemark::detect
