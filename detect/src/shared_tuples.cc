#include "tracemark/detect/shared_tuples.h"

#include "tracemark/detect/seen_windows.h"

namespace tracemark::detect {

void SharedTuples::Add(uint64_t document, absl::Span<const int32_t> ids, size_t from) {
  for (size_t i = std::max(from, h_); i < ids.size(); ++i) {
    const uint64_t key = SeenWindows::WindowKey(ids, i + 1, h_ + 1);
    auto [it, inserted] = first_document_.try_emplace(key, document);
    if (!inserted && it->second != document && it->second != kShared) {
      it->second = kShared;
      ++shared_;
    }
  }
}

bool SharedTuples::Shared(absl::Span<const int32_t> ids, size_t i) const {
  if (i < h_ || i >= ids.size()) return true;
  const auto it = first_document_.find(SeenWindows::WindowKey(ids, i + 1, h_ + 1));
  return it == first_document_.end() || it->second == kShared;
}

}  // namespace tracemark::detect
