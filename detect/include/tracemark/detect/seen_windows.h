// The context windows of a suspected training set, for restricting a scan's dataset-level tests to
// the positions where a suspect model can have learnt the watermark (the radioactivity work's
// "seen windows"; docs/distillation.md measures how much this gains).
//
// A provider that knows what it served to suspected accounts (its own logs) collects the windows
// of those answers; `tracemark scan --seen-in FILE...` then tests the suspect's text only at
// positions whose window (the h tokens before) is among them. Under the null this is valid: which
// windows are chosen depends on the served text, while a position's colour is the key's function
// of that window and the suspect's token, evaluated nowhere in choosing it (measured for the
// distillation study in docs/distillation.md).
//
//   TRACEMARK_ASSIGN_OR_RETURN(auto reader, DocumentReader::Open({"served.jsonl"}));
//   TRACEMARK_ASSIGN_OR_RETURN(SeenWindows seen, SeenWindows::Collect(*reader, tokenizer, 3));
//   options.seen = &seen;
//
// Thread-safe after Collect (Contains is const).
#ifndef TRACEMARK_DETECT_SEEN_WINDOWS_H_
#define TRACEMARK_DETECT_SEEN_WINDOWS_H_

#include <cstdint>
#include <functional>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tracemark/dataset/input.h"
#include "tracemark/tokenizer/tokenizer.h"

namespace tracemark::detect {

class SeenWindows {
 public:
  // Every window of h ids inside the model-written text of every document `reader` yields
  // (tokenised with `tokenizer`, each turn on its own). Bad records are skipped as in a scan
  // (reader.skipped() lists them).
  static absl::StatusOr<SeenWindows> Collect(dataset::DocumentReader& reader,
                                             const tokenizer::Tokenizer& tokenizer, int h);

  // Whether the h ids before position i of `ids` form a seen window (false for i < h).
  bool Contains(absl::Span<const int32_t> ids, size_t i) const;

  // Calls `fn` with every window of h ids (every occurrence) of the model-written text of every
  // document `reader` yields, as Collect reads them: each turn on its own, a long text's pieces
  // joined, invalid UTF-8 replaced. `documents`, if given, receives how many were read.
  static absl::Status ForEachWindow(dataset::DocumentReader& reader,
                                    const tokenizer::Tokenizer& tokenizer, int h,
                                    const std::function<void(absl::Span<const int32_t>)>& fn,
                                    uint64_t* documents = nullptr);

  // A 64-bit key of the window `ids[i - h .. i)`: base::WindowKey (the ledger's window index uses
  // the same key).
  static uint64_t WindowKey(absl::Span<const int32_t> ids, size_t i, size_t h);

  int h() const { return h_; }
  size_t size() const { return windows_.size(); }
  uint64_t documents() const { return documents_; }

 private:
  explicit SeenWindows(int h) : h_(h) {}
  int h_;
  uint64_t documents_ = 0;
  absl::flat_hash_set<uint64_t> windows_;
};

}  // namespace tracemark::detect

#endif  // TRACEMARK_DETECT_SEEN_WINDOWS_H_
