// The pool of workers that run the queued scans of a verifier server (server.h). Each worker
// claims the oldest queued job from the store, runs it with detect::RunScanJob (as `tracemark
// scan` does), signs its evidence report when the server has a signing key, and records its end.
// A scan the server's stop interrupts stays running in the store and is requeued at the next start
// (JobStore::RequeueRunning), where it runs again to the same result; one interrupted more than
// max_attempts times fails instead.
#ifndef TRACEMARK_SERVICE_SRC_WORKERS_H_
#define TRACEMARK_SERVICE_SRC_WORKERS_H_

#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "live_scans.h"
#include "server_common.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/service/job_store.h"
#include "tracemark/service/server.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::service {

class ScanWorkers {
 public:
  // Scans read options' data_dir, scan_threads and max_attempts. `signer` is null when reports
  // are not signed. Everything passed by pointer or reference must outlive the pool.
  ScanWorkers(const ServerOptions& options, const watermark::Key& master,
              const evidence::EnvelopeSigner* signer, JobStore* store, LiveScans* live,
              detect::TokenizerCache* tokenizers, ServeLog log);
  ScanWorkers(const ScanWorkers&) = delete;
  ScanWorkers& operator=(const ScanWorkers&) = delete;

  // Starts `n` workers. They run until live->Stop(); Join them before the pool is destroyed.
  void Start(int n);
  // Waits for every worker to return; after live->Stop(), a worker returns once its scan has
  // stopped (within a fraction of a second). Idempotent.
  void Join();

 private:
  // Claims and runs jobs until the server stops; waits for a change (a scan queued) at most a
  // second between looks at an empty queue.
  void WorkerLoop();
  // Runs one claimed job to its end, showing it in `live_` while it runs.
  void Run(const JobRecord& job);
  // The spec `job` runs, with this server's data folder and threads; nullopt, with the job's end
  // recorded, when it may not run: a cancel was asked before it ran again, restarts interrupted
  // it more than max_attempts times, or its stored spec does not parse.
  std::optional<detect::ScanJobSpec> SpecToRun(const JobRecord& job);
  // Runs the scan, reporting its progress into `scan` and bumping the version about once a
  // second; it stops early when scan.cancel is set.
  absl::StatusOr<detect::ScanJobOutput> Execute(const detect::ScanJobSpec& spec, LiveScan& scan);
  // Records how the scan of `job` ended; a scan cancelled by the server's stop is left running
  // in the store.
  void Record(const JobRecord& job, const detect::ScanJobSpec& spec,
              const absl::StatusOr<detect::ScanJobOutput>& out);
  // Records a scan that succeeded, with its signed report when there is a signer (a report
  // that cannot be made or signed fails the job instead).
  void RecordSuccess(const JobRecord& job, const detect::ScanJobSpec& spec,
                     const detect::ScanJobOutput& out);
  // The envelope of the scan's evidence report, naming its inputs as the client did and the
  // service job it was.
  absl::StatusOr<std::string> SignedReport(const JobRecord& job, const detect::ScanJobSpec& spec,
                                           const detect::ScanJobOutput& out) const;
  // Records the job's end. While the store cannot take it (disk full, I/O errors: Unavailable),
  // the outcome is kept here and the write retried, backing off to 30 s, until it lands or the
  // server stops; a computed result is not dropped for a passing fault. A job left running by a
  // stop is requeued at the next start and runs again, to the same result.
  void Finish(const JobRecord& job, JobState state, JobOutcome outcome);

  const ServerOptions& options_;
  const watermark::Key& master_;
  const evidence::EnvelopeSigner* const signer_;
  JobStore* const store_;
  LiveScans* const live_;
  detect::TokenizerCache* const tokenizers_;
  const ServeLog log_;
  std::vector<std::thread> threads_;
};

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_WORKERS_H_
