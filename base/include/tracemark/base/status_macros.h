// Early-return helpers for absl::Status and absl::StatusOr.
//
// Debian's Abseil (20220623) ships no RETURN_IF_ERROR / ASSIGN_OR_RETURN, so tracemark keeps this
// small local pair. Both evaluate their argument exactly once.
//
//   absl::StatusOr<int> Parse(std::string_view s);
//   absl::Status Use(std::string_view s) {
//     TRACEMARK_ASSIGN_OR_RETURN(int v, Parse(s));
//     TRACEMARK_RETURN_IF_ERROR(Check(v));
//     return absl::OkStatus();
//   }
#ifndef TRACEMARK_BASE_STATUS_MACROS_H_
#define TRACEMARK_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TRACEMARK_RETURN_IF_ERROR(expr)                    \
  do {                                                     \
    ::absl::Status tracemark_status_ = (expr);             \
    if (!tracemark_status_.ok()) return tracemark_status_; \
  } while (0)

#define TRACEMARK_STATUS_CONCAT_INNER_(a, b) a##b
#define TRACEMARK_STATUS_CONCAT_(a, b) TRACEMARK_STATUS_CONCAT_INNER_(a, b)

#define TRACEMARK_ASSIGN_OR_RETURN(lhs, expr)                                                    \
  TRACEMARK_ASSIGN_OR_RETURN_IMPL_(TRACEMARK_STATUS_CONCAT_(tracemark_statusor_, __LINE__), lhs, \
                                   expr)

#define TRACEMARK_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return std::move(tmp).status();         \
  lhs = std::move(tmp).value()

#endif  // TRACEMARK_BASE_STATUS_MACROS_H_
