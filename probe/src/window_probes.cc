#include "tracemark/probe/window_probes.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/detect/seen_windows.h"

namespace tracemark::probe {

absl::StatusOr<WindowProbeSample> WindowProbes(dataset::DocumentReader& reader,
                                               const tokenizer::Tokenizer& tokenizer, int h,
                                               size_t max_windows) {
  if (h <= 0) return absl::InvalidArgumentError("window probes need a context width h >= 1");
  const auto width = static_cast<size_t>(h);
  absl::flat_hash_map<uint64_t, std::vector<int32_t>> windows;
  TRACEMARK_RETURN_IF_ERROR(
      detect::SeenWindows::ForEachWindow(reader, tokenizer, h, [&](absl::Span<const int32_t> w) {
        windows.try_emplace(detect::SeenWindows::WindowKey(w, width, width), w.begin(), w.end());
      }));
  if (windows.empty()) return absl::InvalidArgumentError("no windows in the data");
  std::vector<uint64_t> keys;
  keys.reserve(windows.size());
  for (const auto& [k, w] : windows) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  if (keys.size() > max_windows) keys.resize(max_windows);
  WindowProbeSample sample;
  sample.distinct_windows = windows.size();
  for (uint64_t k : keys) {
    const std::vector<int32_t>& w = windows[k];
    TRACEMARK_ASSIGN_OR_RETURN(std::string text, tokenizer.Decode(w));
    sample.prompts.push_back({absl::StrFormat("w%016x", k), std::move(text), w});
  }
  return sample;
}

}  // namespace tracemark::probe
