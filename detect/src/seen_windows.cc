#include "tracemark/detect/seen_windows.h"

#include "absl/strings/str_cat.h"
#include "segments.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/base/window_key.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::detect {

uint64_t SeenWindows::WindowKey(absl::Span<const int32_t> ids, size_t i, size_t h) {
  return base::WindowKey(ids, i, h);
}

absl::Status SeenWindows::ForEachWindow(dataset::DocumentReader& reader,
                                        const tokenizer::Tokenizer& tokenizer, int h,
                                        const std::function<void(absl::Span<const int32_t>)>& fn,
                                        uint64_t* documents) {
  if (h < 1) return absl::InvalidArgumentError("window width must be >= 1");
  const auto hw = static_cast<size_t>(h);
  uint64_t read = 0;
  dataset::Document doc;
  while (true) {
    TRACEMARK_ASSIGN_OR_RETURN(bool more, reader.Next(&doc));
    if (!more) break;
    ++read;
    std::vector<int32_t> tail;  // the last h ids of the previous piece of a long text
    auto add = [&](dataset::Segment& seg) -> absl::StatusOr<bool> {
      if (!tokenizer::IsValidUtf8(seg.text)) seg.text = tokenizer::ReplaceInvalidUtf8(seg.text);
      TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> body, tokenizer.Encode(seg.text));
      std::vector<int32_t> ids = seg.continues ? tail : std::vector<int32_t>();
      ids.insert(ids.end(), body.begin(), body.end());
      for (size_t i = hw; i <= ids.size(); ++i) {
        fn(absl::Span<const int32_t>(ids.data() + i - hw, hw));
      }
      KeepTail(ids, hw, &tail);
      return true;
    };
    absl::Status read_error;  // a read error ends the document, as in a scan
    TRACEMARK_RETURN_IF_ERROR(WalkSegments(doc, add, &read_error).status());
  }
  if (documents != nullptr) *documents = read;
  return absl::OkStatus();
}

absl::StatusOr<SeenWindows> SeenWindows::Collect(dataset::DocumentReader& reader,
                                                 const tokenizer::Tokenizer& tokenizer, int h) {
  SeenWindows seen(h);
  const auto hw = static_cast<size_t>(h);
  TRACEMARK_RETURN_IF_ERROR(ForEachWindow(
      reader, tokenizer, h,
      [&](absl::Span<const int32_t> w) { seen.windows_.insert(WindowKey(w, hw, hw)); },
      &seen.documents_));
  return seen;
}

bool SeenWindows::Contains(absl::Span<const int32_t> ids, size_t i) const {
  const auto hw = static_cast<size_t>(h_);
  if (i < hw || i > ids.size()) return false;
  return windows_.contains(WindowKey(ids, i, hw));
}

}  // namespace tracemark::detect
