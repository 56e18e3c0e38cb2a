// gRPC's own log lines ("E1204 01:41:01 ssl_transport_security.cc:1934] ...") are for gRPC's
// developers: the reason of a failed call or handshake reaches the user in its status, said once
// with the "tracemark: error:" prefix. QuietGrpcLogs drops them, unless GRPC_VERBOSITY or
// GRPC_TRACE is set in the environment (someone debugging gRPC itself).
#ifndef TRACEMARK_SERVICE_GRPC_LOGS_H_
#define TRACEMARK_SERVICE_GRPC_LOGS_H_

namespace tracemark::service {

// Idempotent and thread-safe; call before the first gRPC object is made.
void QuietGrpcLogs();

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_GRPC_LOGS_H_
