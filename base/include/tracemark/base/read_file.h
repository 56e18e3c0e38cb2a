// Reading a whole file, with errors that name it and the system's reason: the one place the
// project does so (tokenizer files, lexicons, keys' neighbours, inputs given on the command line).
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::string text, base::ReadFile(path, "lexicon"));
#ifndef TRACEMARK_BASE_READ_FILE_H_
#define TRACEMARK_BASE_READ_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tracemark::base {

// The bytes of the file at `path`. `what` names the file in messages ("cannot open tokenizer
// file PATH: No such file or directory"). NotFound for a missing file or directory on the way,
// PermissionDenied, FailedPrecondition for a directory, Unavailable for other I/O errors
// (file_io.h's ErrnoStatus codes).
absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what);

}  // namespace tracemark::base

#endif  // TRACEMARK_BASE_READ_FILE_H_
