// The verifier service (proto/tracemark/v1/verifier.proto, docs/service.md): scan jobs over gRPC,
// persisted in a JobStore so that a killed server loses none, run by a pool of workers with the
// same RunScanJob as `tracemark scan`, with signed evidence reports.
//
//   ServerOptions opt;
//   opt.listen = "127.0.0.1:0";
//   opt.db = "jobs.db";
//   opt.tokens_file = "tokens.txt";
//   opt.tls_cert = "server.pem"; opt.tls_key = "server.key";
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<VerifierServer> s,
//                              VerifierServer::Start(opt, std::move(master_key)));
//   ... s->port() ...
//   s->Shutdown();  // running scans go back to the queue, to run again at the next start
//
// Every call is authenticated (access.h) and admitted against a server-wide and a per-client limit
// of calls in progress; a call over a limit fails at once with RESOURCE_EXHAUSTED, so overload
// costs neither unbounded memory nor queueing delay. The master key is held for the server's life
// and wiped when it ends; it is never logged, and replies and reports carry only its id and
// commitment.
#ifndef TRACEMARK_SERVICE_SERVER_H_
#define TRACEMARK_SERVICE_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::service {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  std::string db = "tracemark-jobs.db";    // the job store (job_store.h)
  std::string files_dir;                   // uploaded inputs; default: db + ".files"
  std::string data_dir = "data";           // tokenizer data, as for `tracemark scan`
  std::string tokens_file;                 // required: access.h
  // TLS from PEM files: the server's certificate chain and key; with a client CA, mutual TLS
  // (clients must present a certificate it signed). Plaintext only with `insecure`, and only on
  // a loopback address.
  std::string tls_cert, tls_key, tls_client_ca;
  bool insecure = false;
  std::string signing_key;                 // Ed25519 seed file; without it reports are not signed
  std::vector<std::string> inputs_roots;   // server-side inputs must lie under one of these
  std::vector<uint32_t> epochs = {0};      // the key epochs scans may name (GetKeys lists them)
  int workers = 1;                         // scans run at once
  int scan_threads = 0;                    // threads per scan (0: one per core)
  int max_inflight = 64;                   // calls served at once, all clients together
  int per_client_inflight = 8;             // calls served at once for one client
  uint64_t max_queued = 10000;             // scans waiting at most; SubmitScan beyond it is refused
  uint64_t max_upload_bytes = 1ull << 30;  // one SubmitScan's uploaded bytes at most
  int max_message_bytes = 4 << 20;         // one gRPC message at most
  int max_attempts = 3;  // a scan interrupted by this many restarts fails instead of running again
  bool reflection = false;  // the gRPC reflection service
  bool quiet = false;       // no line per scan event on standard error
};

class VerifierServer {
 public:
  // Opens the store (requeueing the scans a killed server left running), loads the tokens, TLS
  // files and signing key, and starts serving and running scans. InvalidArgument for inconsistent
  // options, NotFound for missing files, Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<VerifierServer>> Start(const ServerOptions& options,
                                                               watermark::Key master);
  ~VerifierServer();  // Shutdown()

  int port() const;
  // How many scans Start put back in the queue (a previous server was killed while running them).
  int requeued() const;

  // Stops taking calls (those in progress get a few seconds), stops the workers; a scan they were
  // running stays in the store as running and is requeued at the next start. Idempotent.
  void Shutdown();
  // Blocks until Shutdown.
  void Wait();

  struct Impl;

 private:
  explicit VerifierServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SERVER_H_
