// The serving ledger's record: what one served response was, to whom, under which key — the
// account, the epoch and its key's public id, the time, the tokenizer, the prompt's last ids (the
// contexts of the response's first positions) and the response's ids. Never a key.
//
//   ledger::Record r;
//   r.account = 42; r.epoch = 0; r.epoch_key_id = wm->key_id(); r.tokenizer = "cl100k_base";
//   r.time_us = ledger::NowMicros(); r.prompt_ids = {...}; r.response_ids = {...};
//   std::string bytes = ledger::EncodeRecord(r);
//   absl::StatusOr<ledger::Record> back = ledger::DecodeRecord(bytes);
//
// The encoding (docs/ledger.md) is a version byte, then LEB128 varints for the integers and
// length-prefixed strings and id lists; it is what a segment file compresses (ledger/writer.h).
#ifndef TRACEMARK_LEDGER_RECORD_H_
#define TRACEMARK_LEDGER_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracemark::ledger {

struct Record {
  // The account served; none for an anonymous request (the provider layer only).
  std::optional<uint64_t> account;
  uint32_t epoch = 0;
  std::string epoch_key_id;  // the epoch key's public id (watermark::Key::Id), never the key
  int64_t time_us = 0;       // when the response ended, microseconds since the Unix epoch (UTC)
  std::string tokenizer;     // the tokenizer spec the ids belong to (--tokenizer)
  // The prompt's ids as the model saw them, the last `prompt_ids.size()` of it (at least the
  // watermark's h, so that every response position's context is known).
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> response_ids;

  friend bool operator==(const Record&, const Record&) = default;
};

// The largest account id a record holds (2^64 - 1 is reserved: the window index's mark of an
// anonymous request).
inline constexpr uint64_t kMaxAccount = ~0ull - 1;

// The current encoding's version byte.
inline constexpr uint8_t kRecordVersion = 1;

// Refuses what no encoding can hold: negative ids, strings over 64 KiB, a time before 1970, an
// account over kMaxAccount.
absl::Status CheckRecord(const Record& record);

// The record's bytes. The record must pass CheckRecord.
std::string EncodeRecord(const Record& record);

// The record from EncodeRecord's bytes. InvalidArgument, naming the field, for bytes that are not
// one whole record of a known version (truncated, trailing bytes, an id over 2^31 - 1, an
// overlong varint).
absl::StatusOr<Record> DecodeRecord(std::string_view bytes);

// The current time in microseconds since the Unix epoch.
int64_t NowMicros();

}  // namespace tracemark::ledger

#endif  // TRACEMARK_LEDGER_RECORD_H_
