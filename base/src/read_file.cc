#include "tracemark/base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tracemark/base/file_io.h"

namespace tracemark::base {

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  const absl::string_view kind(what.data(), what.size());  // absl's, for StrCat
  const std::string opening = absl::StrCat("cannot open ", kind, " ", path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, opening);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return ErrnoStatus(EISDIR, opening);
  }
  std::string out;
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buf, sizeof(buf));
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      explicit_bzero(buf, sizeof(buf));
      return ErrnoStatus(err, absl::StrCat("cannot read ", kind, " ", path));
    }
    out.append(buf, static_cast<size_t>(got));
  }
  ::close(fd);
  explicit_bzero(buf, sizeof(buf));  // some files read are secrets (tokens, keys)
  return out;
}

}  // namespace tracemark::base
