// Who may call the verifier service: bearer tokens, each mapped to a client name and a role.
//
// The tokens file has one "TOKEN ROLE NAME" line per client ('#' starts a comment), ROLE one of
// read (look at every scan and report), submit (also submit scans and cancel its own) and admin
// (also cancel every client's scans). Tokens are at least 16 characters. Only SHA-256 digests
// of the tokens are kept in memory, so the lookup's timing tells nothing about a token.
//
//   TRACEMARK_ASSIGN_OR_RETURN(AccessTokens tokens, AccessTokens::ReadFile("tokens.txt"));
//   absl::StatusOr<Client> who = tokens.Authenticate(bearer_header_value);
//
// Immutable once made, so thread-safe.
#ifndef TRACEMARK_SERVICE_ACCESS_H_
#define TRACEMARK_SERVICE_ACCESS_H_

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace tracemark::service {

enum class Role { kRead = 1, kSubmit = 2, kAdmin = 3 };

// "read", "submit", "admin".
std::string_view RoleName(Role r);

struct Client {
  std::string name;
  Role role = Role::kRead;
};

class AccessTokens {
 public:
  // InvalidArgument naming the line for a malformed entry, a short token, an unknown role or a
  // repeated token or name; NotFound when the file cannot be read.
  static absl::StatusOr<AccessTokens> ReadFile(const std::string& path);
  static absl::StatusOr<AccessTokens> Parse(const std::string& text, const std::string& origin);

  // `authorization` is the request's header value, "Bearer TOKEN". Unauthenticated (saying only
  // that the token is missing or unknown) otherwise.
  absl::StatusOr<Client> Authenticate(std::string_view authorization) const;

  size_t size() const { return clients_.size(); }

 private:
  absl::flat_hash_map<std::string, Client> clients_;  // SHA-256(token) -> client
};

// PermissionDenied unless `client` has at least `needed`.
absl::Status Require(const Client& client, Role needed, std::string_view what);

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_ACCESS_H_
