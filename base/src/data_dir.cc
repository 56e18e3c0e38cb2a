#include "tracemark/base/data_dir.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace tracemark::base {

std::string DataDir(const std::string& given) {
  if (!given.empty()) return given;
  const char* env = std::getenv("TRACEMARK_DATA_DIR");
  if (env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (std::filesystem::is_directory("data", ec)) return "data";  // a checkout
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path installed =
        self.parent_path().parent_path() / "share" / "tracemark";
    if (std::filesystem::is_directory(installed, ec)) return installed.string();
  }
  return "data";
}

}  // namespace tracemark::base
