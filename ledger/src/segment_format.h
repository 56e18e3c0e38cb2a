// A ledger segment's file format (internal; docs/ledger.md): the 8-byte magic, then one Zstandard
// stream whose content is a sequence of frames, each a varint length, the record's bytes
// (EncodeRecord) and their CRC-32 (zlib's), 4 bytes little-endian.
#ifndef TRACEMARK_LEDGER_SRC_SEGMENT_FORMAT_H_
#define TRACEMARK_LEDGER_SRC_SEGMENT_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "varint.h"
#include "zlib.h"

namespace tracemark::ledger::internal {

inline constexpr std::string_view kSegmentMagic{"TMLEDG\x01\n", 8};
inline constexpr char kSegmentSuffix[] = ".tml";
inline constexpr char kUnpublishedSuffix[] = ".tml.partial";
// No record is larger (a response of millions of ids is not a served answer).
inline constexpr uint64_t kMaxRecordBytes = 64u << 20;

inline uint32_t Crc32(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

inline void AppendFrame(std::string_view record, std::string* out) {
  PutVarint(record.size(), out);
  out->append(record);
  const uint32_t crc = Crc32(record);
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
}

}  // namespace tracemark::ledger::internal

#endif  // TRACEMARK_LEDGER_SRC_SEGMENT_FORMAT_H_
