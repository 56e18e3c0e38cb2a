// Admission control for the verifier's calls (server.h): each call is authenticated by its bearer
// token (access.h), checked for the role it needs, and admitted against a server-wide and a
// per-client limit of calls in progress. A call over a limit is refused at once with
// ResourceExhausted, so overload costs neither unbounded memory nor queueing delay.
#ifndef TRACEMARK_SERVICE_SRC_ADMISSION_H_
#define TRACEMARK_SERVICE_SRC_ADMISSION_H_

#include <grpcpp/server_context.h>

#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "tracemark/service/access.h"

namespace tracemark::service {

// Calls in progress, server-wide and per client; an Admission holds one slot of each until it is
// destroyed. Thread-safe; must outlive every Admission it gives.
class Limiter {
 public:
  // At most `total` calls at once, and at most `per_client` of one client's.
  Limiter(int total, int per_client) : total_limit_(total), per_client_limit_(per_client) {}
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  // One call's slots; given back when it is destroyed. Movable, not assignable.
  class Admission {
   public:
    Admission() = default;
    Admission(Admission&& o) noexcept
        : limiter_(std::exchange(o.limiter_, nullptr)), client_(std::move(o.client_)) {}
    Admission& operator=(Admission&&) = delete;
    ~Admission() {
      if (limiter_ != nullptr) limiter_->Release(client_);
    }

   private:
    friend class Limiter;
    Admission(Limiter* l, std::string client) : limiter_(l), client_(std::move(client)) {}
    Limiter* limiter_ = nullptr;
    std::string client_;
  };

  // A slot for one call of `client`; ResourceExhausted ("server busy: ...", or "client '...' has
  // ...") when either limit is reached.
  absl::StatusOr<Admission> Admit(const std::string& client);

 private:
  void Release(const std::string& client);

  std::mutex mu_;
  const int total_limit_, per_client_limit_;
  int total_ = 0;                                     // guarded by mu_
  absl::flat_hash_map<std::string, int> per_client_;  // guarded by mu_; no zero counts
};

// Authenticates the call by its "authorization" metadata with `tokens`, requires the role
// `needed` for the call named `what` ("GetScan"), and admits it with `limiter`. Unauthenticated,
// PermissionDenied or ResourceExhausted, as access.h and Limiter::Admit say.
absl::StatusOr<std::pair<Client, Limiter::Admission>> Enter(const grpc::ServerContext& ctx,
                                                            const AccessTokens& tokens,
                                                            Limiter* limiter, Role needed,
                                                            std::string_view what);

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_ADMISSION_H_
