// The serving ledger's formats on arbitrary bytes: a record's encoding (what decodes must encode
// back to a record equal to it), a segment file (read whole or to its damage, never a crash,
// with and without skip_damaged) and an import line (a record or a status).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "tracemark/ledger/import.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/record.h"
#include "tracemark/tokenizer/load.h"

namespace {

namespace ledger = tracemark::ledger;

const tracemark::tokenizer::Tokenizer& Cl100k() {
  static auto* tok = [] {
    auto t = tracemark::tokenizer::LoadTokenizer("cl100k_base", TRACEMARK_DATA_DIR);
    if (!t.ok()) std::abort();  // no data: run scripts/setup.sh
    return t->release();
  }();
  return *tok;
}

void CheckRecordRoundTrip(std::string_view bytes) {
  auto record = ledger::DecodeRecord(bytes);
  if (!record.ok()) return;
  if (!ledger::CheckRecord(*record).ok()) std::abort();  // decoded, so it can be encoded
  auto back = ledger::DecodeRecord(ledger::EncodeRecord(*record));
  if (!back.ok() || !(*back == *record)) {
    std::fprintf(stderr, "DecodeRecord(EncodeRecord(r)) != r for %zu bytes\n", bytes.size());
    std::abort();
  }
}

void ReadAsSegment(std::string_view bytes) {
  const std::string path = "/tmp/tracemark_fuzz_ledger_" + std::to_string(getpid()) + ".tml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  for (bool skip : {false, true}) {
    ledger::ReadReport report;
    uint64_t visited = 0;
    const absl::Status s = ledger::ReadLedger(path,
                                              [&](const ledger::Record& r) {
                                                if (!ledger::CheckRecord(r).ok()) std::abort();
                                                ++visited;
                                                return absl::OkStatus();
                                              },
                                              &report, {.skip_damaged = skip});
    if (s.ok() && visited != report.records) std::abort();  // the report counts what was read
  }
  std::remove(path.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckRecordRoundTrip(bytes);
  ReadAsSegment(bytes);
  const ledger::ImportDefaults defaults{
      .epoch = 3, .epoch_key_id = "k", .tokenizer = "cl100k_base"};
  auto r = ledger::ParseImportLine(bytes, defaults, Cl100k());
  if (r.ok() && !ledger::CheckRecord(*r).ok()) std::abort();
  return 0;
}
