// A client of the verifier service (server.h), as `tracemark remote` uses it. Replies are the
// tracemark.v1 messages themselves: this is the service's edge.
//
//   ClientOptions o;
//   o.server = "verifier.internal:50051";
//   o.token = getenv("TRACEMARK_TOKEN");
//   o.tls_ca = "ca.pem";
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<VerifierClient> c, VerifierClient::Connect(o));
//   v1::ScanRequest req;
//   req.set_request_id("case-17-harvest");  // a retry after a lost reply gets the same scan
//   TRACEMARK_ASSIGN_OR_RETURN(v1::Scan s, c->Submit(req, {"harvest.jsonl.zst"}, {}));
//   TRACEMARK_RETURN_IF_ERROR(c->Watch(s.id(), [](const v1::Scan& now) { ... }));
//
// Every call has the options' deadline (Watch: none unless given); failures are the server's
// gRPC status as an absl::Status with the same code and message. Thread-safe.
#ifndef TRACEMARK_SERVICE_CLIENT_H_
#define TRACEMARK_SERVICE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/v1/verifier.pb.h"

namespace tracemark::service {

struct ClientOptions {
  std::string server = "127.0.0.1:50051";
  std::string token;  // bearer token
  // TLS: the CA that signed the server's certificate (PEM); for mutual TLS also this client's
  // certificate and key. Plaintext only with `insecure`.
  std::string tls_ca, tls_cert, tls_key;
  std::string tls_server_name;  // override the name checked in the server's certificate
  bool insecure = false;
  double deadline_seconds = 60;  // per call; uploads get this per 64 MiB as well
  size_t chunk_bytes = 1 << 20;  // upload chunk size
};

class VerifierClient {
 public:
  static absl::StatusOr<std::unique_ptr<VerifierClient>> Connect(const ClientOptions& options);
  ~VerifierClient();

  // Submits `request` with the bytes of `uploads` (inputs) and `seen_in_uploads` (suspected
  // training data) streamed after it; `request.uploads` is filled in from the files (name, size,
  // SHA-256). `progress`, if set, gets the bytes sent so far and the total.
  absl::StatusOr<v1::Scan> Submit(
      v1::ScanRequest request, const std::vector<std::string>& uploads,
      const std::vector<std::string>& seen_in_uploads,
      const std::function<void(uint64_t sent, uint64_t total)>& progress = {});
  absl::StatusOr<v1::Scan> Get(const std::string& id, bool with_result = false);
  absl::StatusOr<v1::ListScansResponse> List(const v1::ListScansRequest& request);
  // Calls `on_update` for each message until the scan is final; `seconds` > 0 bounds the wait.
  absl::Status Watch(const std::string& id, const std::function<void(const v1::Scan&)>& on_update,
                     double seconds = 0);
  absl::StatusOr<v1::Scan> Cancel(const std::string& id);
  absl::StatusOr<v1::Report> GetReport(const std::string& id, v1::ReportFormat format);
  absl::StatusOr<v1::Keys> GetKeys();
  // The standard gRPC health check (grpc.health.v1.Health/Check, overall server): true when
  // SERVING. Needs no token.
  absl::StatusOr<bool> Healthy();

  struct Impl;

 private:
  explicit VerifierClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_CLIENT_H_
