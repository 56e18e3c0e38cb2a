#include "admission.h"

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::service {

absl::StatusOr<Limiter::Admission> Limiter::Admit(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (total_ >= total_limit_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", total_limit_, " calls in progress; retry later"));
  }
  int& mine = per_client_[client];
  if (mine >= per_client_limit_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "client '", client, "' has ", per_client_limit_, " calls in progress; retry later"));
  }
  ++mine;
  ++total_;
  return Admission(this, client);
}

void Limiter::Release(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  --total_;
  auto it = per_client_.find(client);
  if (--it->second == 0) per_client_.erase(it);
}

absl::StatusOr<std::pair<Client, Limiter::Admission>> Enter(const grpc::ServerContext& ctx,
                                                            const AccessTokens& tokens,
                                                            Limiter* limiter, Role needed,
                                                            std::string_view what) {
  const auto& md = ctx.client_metadata();
  const auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  TRACEMARK_ASSIGN_OR_RETURN(Client c, tokens.Authenticate(header));
  TRACEMARK_RETURN_IF_ERROR(Require(c, needed, what));
  TRACEMARK_ASSIGN_OR_RETURN(Limiter::Admission a, limiter->Admit(c.name));
  return std::make_pair(std::move(c), std::move(a));
}

}  // namespace tracemark::service
