// Dataset inputs as a scan reads them: the first byte picks the file's kind (JSONL, JSON, text,
// gzip or zstd JSONL), the rest is the file. Every document and every segment is read; nothing
// may crash, whatever the bytes (bad records are skipped with a reason).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "tracemark/dataset/input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kinds[] = {".jsonl", ".json", ".txt", ".jsonl.gz", ".jsonl.zst"};
  if (size == 0) return 0;
  const std::string path = "/tmp/tracemark_fuzz_reader_" + std::to_string(getpid()) +
                           kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))];
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  tracemark::dataset::ReaderOptions opt;
  opt.max_record_bytes = 1 << 16;
  opt.text_piece_bytes = 1 << 10;
  auto reader = tracemark::dataset::DocumentReader::Open({path}, opt);
  if (reader.ok()) {
    for (int n = 0; n < 10000; ++n) {
      tracemark::dataset::Document d;
      auto more = (*reader)->Next(&d);
      if (!more.ok() || !*more) break;
      if (d.more != nullptr) {
        tracemark::dataset::Segment s;
        for (int k = 0; k < 10000; ++k) {
          auto seg = d.more->Next(&s);
          if (!seg.ok() || !*seg) break;
        }
      }
    }
  }
  std::remove(path.c_str());
  return 0;
}
