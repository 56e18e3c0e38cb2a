// Writing result files so that neither a crash nor a full disk leaves a torn or silently empty
// file behind, and the system calls that takes (a whole write, a directory's flush).
//
//   TRACEMARK_RETURN_IF_ERROR(base::CheckWritable(out));  // before an hour of work, not after
//   ... compute ...
//   TRACEMARK_RETURN_IF_ERROR(base::WriteFileAtomically(out, text));
#ifndef TRACEMARK_BASE_FILE_IO_H_
#define TRACEMARK_BASE_FILE_IO_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tracemark::base {

// Replaces the file at `path` with `contents` so that a reader, or a crash at any moment, sees the
// old contents or the new ones, never a mix: the bytes go to a new file beside it, are flushed to
// the disk, and that file is renamed over `path`; then the directory is flushed. A symbolic link
// is followed (the file it names is replaced; the link stays). A path that exists but is not a
// regular file (a terminal, /dev/stdout, a pipe, a device) is written in place and never
// replaced. On error nothing is left beside `path`, and the status names the path and the
// system's reason: ResourceExhausted for a full disk or a file-size limit, PermissionDenied,
// NotFound for a missing directory, FailedPrecondition for a directory at `path`, Unavailable
// for other I/O errors.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Whether WriteFileAtomically(path, ...) can create its file: the directory exists and may be
// written, and `path` is not a directory (a path that is not a regular file must open for
// writing). Errors as above. For checking an output path before long work.
absl::Status CheckWritable(const std::string& path);

// A status for the system error `err` (errno) while doing `what` ("cannot write FILE"), with
// the codes above.
absl::Status ErrnoStatus(int err, std::string_view what);

// Writes all of `data` to the open file `fd`, retrying short writes and interruptions;
// ErrnoStatus(errno, what) on failure (EIO when the system writes nothing).
absl::Status WriteAll(int fd, std::string_view data, std::string_view what);

// Flushes the directory `dir`, so that the names just made in it survive a power loss. A
// directory that cannot be opened, or a file system that cannot sync one (EINVAL), counts as
// done; ErrnoStatus(errno, what) for any other failure.
absl::Status SyncDirectory(const std::string& dir, std::string_view what);

}  // namespace tracemark::base

#endif  // TRACEMARK_BASE_FILE_IO_H_
