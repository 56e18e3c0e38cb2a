#include "tracemark/service/access.h"

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/watermark/digest.h"
#include "tracemark/watermark/secret.h"

namespace tracemark::service {
namespace {

constexpr size_t kMinTokenLength = 16;

}  // namespace

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kRead:
      return "read";
    case Role::kSubmit:
      return "submit";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

absl::StatusOr<AccessTokens> AccessTokens::ReadFile(const std::string& path) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string text, base::ReadFile(path, "the tokens file"));
  absl::StatusOr<AccessTokens> t = Parse(text, path);
  watermark::Wipe(text.data(), text.size());
  return t;
}

absl::StatusOr<AccessTokens> AccessTokens::Parse(const std::string& text,
                                                 const std::string& origin) {
  AccessTokens t;
  absl::flat_hash_set<std::string> names;
  size_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.empty()) continue;
    const std::string where = absl::StrCat(origin, ":", line_no, ": ");
    if (f.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected TOKEN ROLE NAME"));
    }
    if (f[0].size() < kMinTokenLength) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "a token must be at least ", kMinTokenLength, " characters"));
    }
    Client c;
    c.name = std::string(f[2]);
    if (f[1] == "read") {
      c.role = Role::kRead;
    } else if (f[1] == "submit") {
      c.role = Role::kSubmit;
    } else if (f[1] == "admin") {
      c.role = Role::kAdmin;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "unknown role '", f[1], "' (read, submit or admin)"));
    }
    if (!names.insert(c.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "client '", c.name, "' twice"));
    }
    if (!t.clients_.emplace(watermark::Sha256Hex(std::string_view(f[0].data(), f[0].size())), c)
             .second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "a token given twice"));
    }
  }
  if (t.clients_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": no tokens"));
  }
  return t;
}

absl::StatusOr<Client> AccessTokens::Authenticate(std::string_view authorization) const {
  absl::string_view v(authorization.data(), authorization.size());
  if (!absl::ConsumePrefix(&v, "Bearer ") || v.empty()) {
    return absl::UnauthenticatedError("a bearer token is required (authorization: Bearer TOKEN)");
  }
  const auto it = clients_.find(watermark::Sha256Hex(std::string_view(v.data(), v.size())));
  if (it == clients_.end()) return absl::UnauthenticatedError("unknown token");
  return it->second;
}

absl::Status Require(const Client& client, Role needed, std::string_view what) {
  if (client.role >= needed) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(std::string(what), " needs the ", std::string(RoleName(needed)), " role; '",
                   client.name, "' has ", std::string(RoleName(client.role))));
}

}  // namespace tracemark::service
