#include "tracemark/base/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace tracemark::base {
namespace {

namespace fs = std::filesystem;

absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Writes all of `data` to `fd`, retrying short writes and interruptions; 0 or an errno (EIO when
// the system writes nothing).
int WriteAllErrno(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// The file a path names: a symbolic link's target (when it resolves), otherwise the path.
fs::path Resolve(const std::string& path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    fs::path target = fs::canonical(path, ec);
    if (!ec) return target;
  }
  return fs::path(path);
}

fs::path DirectoryOf(const fs::path& p) {
  return p.has_parent_path() ? p.parent_path() : fs::path(".");
}

// A name beside `target` that no other writer uses: TARGET.tmp.PID.RANDOM.
fs::path TempBeside(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return fs::path(absl::StrCat(target.string(), ".tmp.", ::getpid(), ".",
                               absl::Hex(salt ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ull))));
}

// For a path that exists and is not a regular file: writes `contents` there in place (when null,
// only opens it for writing), with the outcome. nullopt for a regular file or a missing path.
std::optional<absl::Status> InPlace(const fs::path& target, const std::string& what,
                                    const std::string_view* contents) {
  struct stat st;
  if (::stat(target.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return std::nullopt;
  if (S_ISDIR(st.st_mode)) return ErrnoStatus(EISDIR, what);
  const int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, what);
  const int err = contents != nullptr ? WriteAllErrno(fd, *contents) : 0;
  if (::close(fd) != 0 && err == 0) return ErrnoStatus(errno, what);
  return err == 0 ? absl::OkStatus() : ErrnoStatus(err, what);
}

}  // namespace

absl::Status ErrnoStatus(int err, std::string_view what) {
  const std::string message = absl::StrCat(AsAbsl(what), ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EISDIR:
      return absl::FailedPreconditionError(message);
    default:
      return absl::UnavailableError(message);
  }
}

absl::Status WriteAll(int fd, std::string_view data, std::string_view what) {
  const int err = WriteAllErrno(fd, data);
  return err == 0 ? absl::OkStatus() : ErrnoStatus(err, what);
}

absl::Status SyncDirectory(const std::string& dir, std::string_view what) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::OkStatus();  // nothing to flush through
  const int rc = ::fsync(fd);
  const int err = rc != 0 && errno != EINVAL ? errno : 0;  // some file systems cannot sync one
  ::close(fd);
  return err == 0 ? absl::OkStatus() : ErrnoStatus(err, what);
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string what = absl::StrCat("cannot write ", path);
  const fs::path target = Resolve(path);
  if (std::optional<absl::Status> s = InPlace(target, what, &contents)) return *s;
  const fs::path tmp = TempBeside(target);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return ErrnoStatus(errno, what);
  int err = WriteAllErrno(fd, contents);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), target.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, what);
  }
  return SyncDirectory(DirectoryOf(target).string(), what);
}

absl::Status CheckWritable(const std::string& path) {
  const std::string what = absl::StrCat("cannot write ", path);
  const fs::path target = Resolve(path);
  if (std::optional<absl::Status> s = InPlace(target, what, nullptr)) return *s;
  const fs::path dir = DirectoryOf(target);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, what);
  if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, what);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return ErrnoStatus(errno, what);
  return absl::OkStatus();
}

}  // namespace tracemark::base
