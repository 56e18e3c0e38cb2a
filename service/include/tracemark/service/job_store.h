// A durable store of scan jobs in one SQLite database file (WAL journal, synchronous=FULL), the
// verifier service's embedded default. Every method that changes a job commits before it returns,
// so a job id handed to a client survives kill -9 of the process and a power cut.
//
//   TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open("jobs.db"));
//   TRACEMARK_ASSIGN_OR_RETURN(int requeued, store->RequeueRunning());  // once, at start-up
//   TRACEMARK_ASSIGN_OR_RETURN(CreatedJob c, store->Create(job));      // durable when it returns
//   TRACEMARK_ASSIGN_OR_RETURN(std::optional<JobRecord> next, store->ClaimNext(now_ms));
//   ... run it ...
//   TRACEMARK_RETURN_IF_ERROR(store->Finish(next->id, JobState::kSucceeded, outcome, now_ms));
//
// A job moves queued -> running -> succeeded | failed | cancelled; a queued job may be cancelled
// directly, and RequeueRunning() puts jobs a killed process left running back in the queue (each
// start counts in `attempts`). Thread-safe: one connection behind a mutex.
#ifndef TRACEMARK_SERVICE_JOB_STORE_H_
#define TRACEMARK_SERVICE_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tracemark::service {

enum class JobState { kQueued = 1, kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5 };

// "queued", "running", "succeeded", "failed", "cancelled".
std::string_view JobStateName(JobState s);
inline bool IsFinal(JobState s) { return s >= JobState::kSucceeded; }

struct JobRecord {
  std::string id;          // assigned by Create: "scan-" and 16 lowercase hex digits, random
  std::string owner;       // the client that submitted it
  std::string request_id;  // the owner's idempotency key; "" for none
  std::string label;       // free text from the client
  JobState state = JobState::kQueued;
  std::string spec;    // the scan's parameters and input files (JSON, opaque to the store)
  std::string result;  // the scan's result (JSON) once succeeded
  std::string report;  // the signed evidence report (an envelope) once succeeded, if signed
  std::string error;   // why it failed, or who cancelled it
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;  // Unix milliseconds; 0: not yet
  uint32_t attempts = 0;                                    // times a worker has started it
  bool cancel_requested = false;                            // set on a running job by RequestCancel
  uint64_t sequence = 0;  // creation order, assigned by Create (1, 2, ...)
};

struct CreatedJob {
  JobRecord job;
  bool created = false;  // false: (owner, request_id) named an existing job, returned as it is
};

struct ListQuery {
  std::string owner;              // "" for every owner
  std::optional<JobState> state;  // only jobs in this state
  size_t limit = 50;              // at most this many (1..1000)
  uint64_t before_sequence = 0;   // only jobs created before this one (paging); 0: from newest
};

// What Finish records; `result` and `report` only for kSucceeded.
struct JobOutcome {
  std::string result, report, error;
};

class JobStore {
 public:
  // Opens or creates the database at `path` and its schema; FailedPrecondition for a file that is
  // not a tracemark job store (or of a newer schema), Unavailable when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Inserts `job` as queued with a new id and sequence, created_ms as given (ignores its id, state,
  // attempts, sequence and outcome fields). With a non-empty request_id, a second Create with the
  // same (owner, request_id) inserts nothing and returns the first job (created = false), so a
  // client that retries after losing the reply gets one job, not two.
  absl::StatusOr<CreatedJob> Create(JobRecord job);

  // NotFound for an unknown id.
  absl::StatusOr<JobRecord> Get(std::string_view id);

  // The job `owner` created with `request_id` (non-empty), or nullopt.
  absl::StatusOr<std::optional<JobRecord>> FindRequest(std::string_view owner,
                                                       std::string_view request_id);

  // Newest first; without the large result and report fields (Get has them).
  absl::StatusOr<std::vector<JobRecord>> List(const ListQuery& query);

  // The oldest queued job, now running: started_ms = now_ms, attempts + 1. nullopt when none.
  absl::StatusOr<std::optional<JobRecord>> ClaimNext(int64_t now_ms);

  // Ends a running job in `state` (succeeded, failed or cancelled) with `outcome` (result and
  // report are kept only for succeeded; error for every state). FailedPrecondition when the job
  // is not running, InvalidArgument for a state that is not final, NotFound for an unknown id;
  // nothing is changed then.
  absl::Status Finish(std::string_view id, JobState state, const JobOutcome& outcome,
                      int64_t now_ms);

  // A queued job becomes cancelled at once (finished_ms = now_ms, error = `why`); a running one
  // gets cancel_requested (its worker stops and calls Finish with its own error; `why` is not
  // stored); a final one is left as it is.
  // Returns the job after the change; NotFound for an unknown id.
  absl::StatusOr<JobRecord> RequestCancel(std::string_view id, std::string_view why,
                                          int64_t now_ms);

  // Start-up recovery: every running job (its process was killed) goes back to queued, keeping
  // its attempts, started_ms and any cancel request. Returns how many. Call before any
  // ClaimNext.
  absl::StatusOr<int> RequeueRunning();

  // Counts of jobs per state (index JobState), for health and metrics.
  absl::StatusOr<std::vector<uint64_t>> CountByState();

 private:
  struct Impl;
  explicit JobStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_JOB_STORE_H_
