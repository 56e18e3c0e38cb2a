// The parts of VerifierServer::Start (server.h) that need no server state: the options' checks,
// the signing key, and building the gRPC server with its credentials and limits.
#ifndef TRACEMARK_SERVICE_SRC_STARTUP_H_
#define TRACEMARK_SERVICE_SRC_STARTUP_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/service/server.h"

namespace tracemark::service {

// Whether the server serves TLS: a certificate or a key is given.
bool UsesTls(const ServerOptions& options);

// InvalidArgument, naming the flags, for options that cannot start a server: no tokens file, a
// certificate without its key (or the reverse), neither TLS nor --insecure, both, plaintext on an
// address that is not loopback, mutual TLS without TLS, a limit below its minimum, or no epochs.
absl::Status CheckServerOptions(const ServerOptions& options);

// The report signer of the Ed25519 seed file `path`; none for an empty path. Errors as
// watermark::ReadMasterKeyFile and evidence::EnvelopeSigner::FromSeed say.
absl::StatusOr<std::optional<evidence::EnvelopeSigner>> LoadSigner(const std::string& path);

// Builds and starts a gRPC server for `service` on options.listen, with options' credentials
// (the TLS files are read here), message and stream limits, the health service (serving) and,
// when options.reflection, the reflection service; sets *port to the port bound. `service` must
// outlive the server. The errors of base::ReadFile for the TLS files; Unavailable when the
// reflection library cannot be loaded or the address cannot be bound.
absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(const ServerOptions& options,
                                                          grpc::Service* service, int* port);

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_STARTUP_H_
