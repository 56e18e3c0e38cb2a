// Key files and token files: a master key file of any content (mode 0600), and a service tokens
// file; both must end in a key or a status, never a crash.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "tracemark/service/access.h"
#include "tracemark/watermark/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = "/tmp/tracemark_fuzz_key_" + std::to_string(getpid());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  chmod(path.c_str(), 0600);
  (void)tracemark::watermark::ReadMasterKeyFile(path);
  std::remove(path.c_str());
  auto tokens = tracemark::service::AccessTokens::Parse(bytes, "fuzz");
  if (tokens.ok()) {
    (void)tokens->Authenticate("Bearer " + bytes.substr(0, 40));
    (void)tokens->Authenticate(bytes);
  }
  return 0;
}
