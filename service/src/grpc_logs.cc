#include "grpc_logs.h"

#include <grpc/support/log.h>

#include <cstdlib>
#include <mutex>

namespace tracemark::service {
namespace {

void Drop(gpr_log_func_args* /*args*/) {}

}  // namespace

void QuietGrpcLogs() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("GRPC_VERBOSITY") != nullptr || std::getenv("GRPC_TRACE") != nullptr) return;
    gpr_set_log_function(Drop);
  });
}

}  // namespace tracemark::service
