// The one place where the service's plain C++ types meet tracemark.v1 protos and gRPC.
#ifndef TRACEMARK_SERVICE_SRC_CONVERT_H_
#define TRACEMARK_SERVICE_SRC_CONVERT_H_

#include <list>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/service/job_store.h"
#include "tracemark/v1/verifier.pb.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::service {

// absl and gRPC statuses share their codes.
grpc::Status ToGrpc(const absl::Status& s);
absl::Status FromGrpc(const grpc::Status& s);

// The spec a stored job runs (its "options").
absl::StatusOr<detect::ScanJobSpec> SpecOf(const JobRecord& job);

// Summaries of succeeded scans, parsed once from their (possibly large) result. Thread-safe; keeps
// the most recently used 1,000.
class SummaryCache {
 public:
  struct Entry {
    v1::ScanSummary summary;
    v1::Progress progress;  // the final figures
  };
  Entry Get(const JobRecord& job);

 private:
  std::mutex mu_;
  std::list<std::pair<std::string, Entry>> lru_;  // most recent first
  absl::flat_hash_map<std::string, decltype(lru_)::iterator> index_;
};

// The stored job as the API shows it (no result JSON).
v1::Scan ToProto(const JobRecord& job, SummaryCache* summaries);
void SetProgress(const detect::ScanProgress& p, v1::Progress* out);

struct KeysInfo {
  std::string master_key_id, master_key_commitment;
  std::vector<std::pair<uint32_t, std::string>> epochs;  // epoch, its key's id
  std::string signing_key_id, signing_public_key;
};
absl::StatusOr<KeysInfo> DescribeKeys(const watermark::Key& master,
                                      const std::vector<uint32_t>& epochs,
                                      const evidence::EnvelopeSigner* signer);
v1::Keys ToProto(const KeysInfo& k);

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_CONVERT_H_
