#include "startup.h"

#include <dlfcn.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::service {
namespace {

bool IsLoopback(const std::string& listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:");
}

// gRPC's reflection library registers its server plugin when it is loaded, for every server the
// process builds from then on; so it is not linked, and loaded only when --reflection asks.
absl::Status LoadReflection() {
  std::string version = grpc::Version();  // "1.51.1"
  version = version.substr(0, version.rfind('.'));
  const std::string names[] = {"libgrpc++_reflection.so." + version, "libgrpc++_reflection.so"};
  std::string tried;
  for (const std::string& name : names) {
    if (dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL) != nullptr) return absl::OkStatus();
    const char* why = dlerror();
    absl::StrAppend(&tried, " ", name, " (", why != nullptr ? why : "?", ")");
  }
  return absl::UnavailableError(
      absl::StrCat("--reflection: cannot load gRPC's reflection "
                   "library (install libgrpc++1.51); tried:",
                   tried));
}

// TLS credentials from options' PEM files (mutual with a client CA), or plaintext ones.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (!UsesTls(options)) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      options.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  TRACEMARK_ASSIGN_OR_RETURN(pair.cert_chain,
                             base::ReadFile(options.tls_cert, "the TLS certificate"));
  TRACEMARK_ASSIGN_OR_RETURN(pair.private_key, base::ReadFile(options.tls_key, "the TLS key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                               base::ReadFile(options.tls_client_ca, "the client CA"));
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

bool UsesTls(const ServerOptions& options) {
  return !options.tls_cert.empty() || !options.tls_key.empty();
}

absl::Status CheckServerOptions(const ServerOptions& options) {
  if (options.tokens_file.empty()) {
    return absl::InvalidArgumentError("a tokens file is required (--tokens FILE)");
  }
  const bool tls = UsesTls(options);
  if (tls && (options.tls_cert.empty() || options.tls_key.empty())) {
    return absl::InvalidArgumentError("TLS needs both a certificate and its key");
  }
  if (!tls && !options.insecure) {
    return absl::InvalidArgumentError(
        "give --tls-cert and --tls-key, or --insecure for plaintext on a loopback address");
  }
  if (tls && options.insecure) {
    return absl::InvalidArgumentError("--insecure and TLS exclude each other");
  }
  if (!tls && !IsLoopback(options.listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("plaintext is only served on a loopback address, not ", options.listen));
  }
  if (!options.tls_client_ca.empty() && !tls) {
    return absl::InvalidArgumentError("mutual TLS (--tls-client-ca) needs TLS");
  }
  if (options.workers < 1 || options.max_inflight < 1 || options.per_client_inflight < 1 ||
      options.max_message_bytes < 1024 || options.max_attempts < 1 || options.epochs.empty()) {
    return absl::InvalidArgumentError(
        "workers, max-inflight, per-client-inflight and max-attempts must be >= 1, the message "
        "limit >= 1024 bytes, and the epoch list not empty");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<evidence::EnvelopeSigner>> LoadSigner(const std::string& path) {
  if (path.empty()) return std::optional<evidence::EnvelopeSigner>();
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed, watermark::ReadMasterKeyFile(path));
  TRACEMARK_ASSIGN_OR_RETURN(evidence::EnvelopeSigner signer,
                             evidence::EnvelopeSigner::FromSeed(seed));
  return std::optional<evidence::EnvelopeSigner>(std::move(signer));
}

absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(const ServerOptions& options,
                                                          grpc::Service* service, int* port) {
  TRACEMARK_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds, Credentials(options));
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) TRACEMARK_RETURN_IF_ERROR(LoadReflection());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, port);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(std::max(options.max_message_bytes, 64 << 20));
  // Streams a connection may open at once: beyond the call limit they would only wait in the
  // server's memory; this way they wait in the client's, and the server's memory stays bounded.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_inflight);
  grpc::ResourceQuota quota("tracemark-verifier");
  quota.SetMaxThreads(options.max_inflight + 16);
  builder.SetResourceQuota(quota);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

}  // namespace tracemark::service
