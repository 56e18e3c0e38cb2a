// The one walk over a dataset::Document's segments, shared by the Scanner (scoring, the
// shared-tuple pass) and SeenWindows, so that every reader of documents sees the same segments in
// the same order; each caller decides what a read error means for it. Private to the detect module.
#ifndef TRACEMARK_DETECT_SRC_SEGMENTS_H_
#define TRACEMARK_DETECT_SRC_SEGMENTS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/dataset/document.h"

namespace tracemark::detect {

// Keeps the last (at most) h ids of `ids` in *tail: the context of the piece that continues them.
inline void KeepTail(const std::vector<int32_t>& ids, size_t h, std::vector<int32_t>* tail) {
  tail->assign(ids.end() - static_cast<ptrdiff_t>(std::min(h, ids.size())), ids.end());
}

// How a walk over a document's segments ended.
enum class WalkEnd {
  kAll,         // every segment was visited
  kStopped,     // `visit` returned false for one
  kReadFailed,  // doc.more could not read the next one
};

// The one walk over a document's segments (the scan, its shared-tuple pass and the seen windows
// read documents alike):
// calls `visit` (returning StatusOr<bool>, false to stop) on each in order, those read with the
// document, then those doc.more yields. An error from `visit` is returned as is; a read error of
// doc.more ends the walk, its status in *read_error.
template <typename Visit>
inline absl::StatusOr<WalkEnd> WalkSegments(dataset::Document& doc, Visit visit,
                                            absl::Status* read_error) {
  for (dataset::Segment& seg : doc.segments) {
    TRACEMARK_ASSIGN_OR_RETURN(const bool go_on, visit(seg));
    if (!go_on) return WalkEnd::kStopped;
  }
  if (doc.more == nullptr) return WalkEnd::kAll;
  dataset::Segment seg;
  for (;;) {
    absl::StatusOr<bool> more = doc.more->Next(&seg);
    if (!more.ok()) {
      *read_error = more.status();
      return WalkEnd::kReadFailed;
    }
    if (!*more) return WalkEnd::kAll;
    TRACEMARK_ASSIGN_OR_RETURN(const bool go_on, visit(seg));
    if (!go_on) return WalkEnd::kStopped;
  }
}

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_SRC_SEGMENTS_H_
