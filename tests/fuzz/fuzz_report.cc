// Report verification and rendering. The input is tried as an envelope against a fixed key (a
// bad signature must be a status), and as a report payload signed with that key, so that
// OpenReport and both renderings see every shape of JSON a signer could have put there.
#include <cstdint>
#include <string>
#include <vector>

#include "tracemark/evidence/envelope.h"
#include "tracemark/evidence/report.h"
#include "tracemark/watermark/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* signer =
      new tracemark::evidence::EnvelopeSigner(*tracemark::evidence::EnvelopeSigner::FromSeed(
          *tracemark::watermark::Key::FromBytes(std::vector<uint8_t>(32, 7))));
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)tracemark::evidence::OpenReport(bytes, signer->public_key_hex());
  auto envelope = signer->Sign(tracemark::evidence::kReportPayloadType, bytes);
  if (!envelope.ok()) return 0;
  auto opened = tracemark::evidence::OpenReport(*envelope, signer->public_key_hex());
  if (!opened.ok()) return 0;
  (void)tracemark::evidence::RenderReportMarkdown(*opened);
  (void)tracemark::evidence::RenderReportHtml(*opened);
  return 0;
}
