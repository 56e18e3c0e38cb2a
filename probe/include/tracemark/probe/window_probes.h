// Window probes: prompts made of exactly one h-id window of model-written text each, so that a
// suspect's answer right after the window shows whether it learnt the provider's keyed choice
// there (docs/distillation.md, "Window probes").
//
//   auto reader = dataset::DocumentReader::Open({"harvest.jsonl"});
//   auto probes = WindowProbes(**reader, *tokenizer, /*h=*/3, /*max_windows=*/5000);
//
// The windows are the distinct h-id windows of the model-written segments (the scan's rule:
// prompts are not model-written), keyed by detect::SeenWindows::WindowKey; the sample is the
// max_windows smallest keys, so the same data gives the same sample on every run. Each prompt's id
// is "w" and the key's 16 hex digits; its text is the window decoded. InvalidArgument when the data
// has no window of h ids; a read error of the data is returned as it is.
#ifndef TRACEMARK_PROBE_WINDOW_PROBES_H_
#define TRACEMARK_PROBE_WINDOW_PROBES_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/dataset/input.h"
#include "tracemark/probe/probe.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::probe {

struct WindowProbeSample {
  std::vector<ProbePrompt> prompts;  // at most max_windows, by key
  size_t distinct_windows = 0;       // in the whole data
};

absl::StatusOr<WindowProbeSample> WindowProbes(dataset::DocumentReader& reader,
                                               const tokenizer::Tokenizer& tokenizer, int h,
                                               size_t max_windows);

}  // namespace tracemark::probe

#endif  // TRACEMARK_PROBE_WINDOW_PROBES_H_
