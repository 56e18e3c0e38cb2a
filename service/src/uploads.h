// A scan's inputs as SubmitScan receives them (proto/tracemark/v1/verifier.proto): server-side
// paths, which must lie under one of the server's inputs roots, and uploads, streamed into a
// staging folder ("u-" and 16 hex digits) of the uploads folder, checked against their declared
// sizes and SHA-256, and made durable before the job that names them is queued. A staging folder
// no job names (a server killed between storing and queueing) is removed at the next start.
#ifndef TRACEMARK_SERVICE_SRC_UPLOADS_H_
#define TRACEMARK_SERVICE_SRC_UPLOADS_H_

#include <grpcpp/server_context.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server_common.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/service/job_store.h"
#include "tracemark/service/server.h"
#include "tracemark/v1/verifier.grpc.pb.h"

namespace tracemark::service {

// Thread-safe: calls for different staging folders may run at once.
class Uploads {
 public:
  // The uploads folder is options.files_dir, or options.db + ".files"; the inputs roots and the
  // upload limit are options'. Nothing is created yet (CreateFolder).
  explicit Uploads(const ServerOptions& options);

  const std::filesystem::path& folder() const { return folder_; }

  // Creates the uploads folder if it is missing; Unavailable when it cannot.
  absl::Status CreateFolder() const;

  // A fresh staging folder name for one SubmitScan's uploads.
  static std::string NewStaging();

  // Resolves req.server_paths() (appended to spec->inputs) and then req.seen_in_server_paths()
  // (to spec->seen_in), each also to `files` as {name, path, seen_in}. PermissionDenied when the
  // server has no inputs roots or a path lies under none, NotFound for a path that does not exist.
  absl::Status AddServerPaths(const v1::ScanRequest& req, detect::ScanJobSpec* spec,
                              nlohmann::json* files) const;

  // Checks the declared uploads before any byte is taken: at most 1000, plain file names, SHA-256
  // empty or 64 lowercase hex digits (InvalidArgument), and their sizes together within the
  // server's limit (ResourceExhausted).
  absl::Status CheckDeclared(const v1::ScanRequest& req) const;

  // Receives the declared uploads of `req` from the messages that follow it on `in`, whole and in
  // the declared order, into the staging folder `staging`; checks each against its declared size
  // and SHA-256, syncs it to disk, and appends it to spec->inputs (or spec->seen_in) and to
  // `files` as {name, path, bytes, sha256, seen_in}. InvalidArgument for a stream that breaks the
  // protocol, DataLoss for a SHA-256 mismatch, DeadlineExceeded when the call is cancelled, and
  // the system's reason for a failed write (ResourceExhausted for a full disk). On error the
  // staging folder may hold part of the uploads: Discard it.
  absl::Status Receive(grpc::ServerContext* ctx, const v1::ScanRequest& req,
                       grpc::ServerReader<v1::SubmitScanRequest>* in, const std::string& staging,
                       detect::ScanJobSpec* spec, nlohmann::json* files) const;

  // Removes the staging folder `staging` and what it holds, if it exists.
  void Discard(const std::string& staging) const;

  // Removes the staging folders that no job in `store` names (its spec's "staging"), logging
  // each. Call before serving, while no upload is in progress.
  void RemoveOrphans(JobStore* store, const ServeLog& log) const;

 private:
  // A server-side input: its canonical path, which must exist and lie under an inputs root.
  absl::StatusOr<std::string> ServerPath(const std::string& p) const;
  // Hashes, checks and syncs the received uploads at `paths`, and records them.
  absl::Status Seal(const v1::ScanRequest& req, const std::vector<std::filesystem::path>& paths,
                    detect::ScanJobSpec* spec, nlohmann::json* files) const;

  std::filesystem::path folder_;
  std::vector<std::string> inputs_roots_;
  uint64_t max_upload_bytes_;
};

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_UPLOADS_H_
