// The warnings of a scan: what its reader must know before trusting its figures. A wrong
// tokenizer, scheme or key gives unremarkable p-values and nothing else, so everything the scan
// noticed is said, in the text summary, the JSON result and the report, never only in --json:
//  - inputs skipped (unreadable, wrong shape, empty), with the first reason;
//  - documents whose invalid UTF-8 was replaced by U+FFFD before scoring;
//  - documents whose text the tokenizer does not reproduce (decode(encode(text)) != text): the
//    ids scored are then not those any model wrote, and a scan where this is common is most
//    likely run with the wrong --tokenizer;
//  - answers whose log-probabilities could not be used by the white-box test, with the reason.
#ifndef TRACEMARK_DETECT_SCAN_WARNINGS_H_
#define TRACEMARK_DETECT_SCAN_WARNINGS_H_

#include <string>
#include <string_view>
#include <vector>

#include "tracemark/detect/scanner.h"

namespace tracemark::detect {

// One sentence per warning, most consequential first; empty when there is nothing to say.
// `tokenizer` is the tokenizer's name, as the warnings quote it.
std::vector<std::string> ScanWarnings(const ScanResult& result, const ScanSummary& summary,
                                      std::string_view tokenizer);

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_SCAN_WARNINGS_H_
