#include "workers.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convert.h"
#include "nlohmann/json.hpp"
#include "tracemark/evidence/report.h"

namespace tracemark::service {
namespace {

using nlohmann::json;

// Names each of a report's inputs as the client gave it (the job spec's "files"): an upload by
// its uploaded name, a file under a server path by that path; the path the server read stays
// beside it (the report's "path").
void NameInputs(const json& files, json* inputs) {
  for (json& in : *inputs) {
    const std::string path = in.value("path", "");
    for (const json& f : files) {
      const std::string stored = f.value("path", "");
      if (stored.empty() || path.compare(0, stored.size(), stored) != 0) continue;
      if (path.size() == stored.size()) {
        in["name"] = f.value("name", path);
        break;
      }
      if (path[stored.size()] == '/') {  // a file under a server-path directory
        in["name"] = f.value("name", stored) + path.substr(stored.size());
        break;
      }
    }
  }
}

}  // namespace

ScanWorkers::ScanWorkers(const ServerOptions& options, const watermark::Key& master,
                         const evidence::EnvelopeSigner* signer, JobStore* store, LiveScans* live,
                         detect::TokenizerCache* tokenizers, ServeLog log)
    : options_(options),
      master_(master),
      signer_(signer),
      store_(store),
      live_(live),
      tokenizers_(tokenizers),
      log_(log) {}

void ScanWorkers::Start(int n) {
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

void ScanWorkers::Join() {
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ScanWorkers::WorkerLoop() {
  for (;;) {
    if (live_->stopping()) return;
    absl::StatusOr<std::optional<JobRecord>> next = store_->ClaimNext(NowMs());
    if (!next.ok()) {
      log_(absl::StrCat("job store: ", next.status().message()));
    } else if (next->has_value()) {
      Run(**next);
      continue;
    }
    live_->WaitForNextChange(std::chrono::seconds(1));
  }
}

void ScanWorkers::Run(const JobRecord& job) {
  live_->Bump();
  std::optional<detect::ScanJobSpec> spec = SpecToRun(job);
  if (!spec.has_value()) return live_->Bump();
  std::shared_ptr<LiveScan> scan = live_->Add(job.id);
  // A CancelScan between ClaimNext and now found no live entry to flag: read the store again.
  if (absl::StatusOr<JobRecord> now = store_->Get(job.id); now.ok() && now->cancel_requested) {
    scan->cancel = true;
  }
  log_(absl::StrCat(job.id, " running (attempt ", job.attempts, ")"));
  const absl::StatusOr<detect::ScanJobOutput> out = Execute(*spec, *scan);
  Record(job, *spec, out);
  live_->Remove(job.id);
  live_->Bump();
}

std::optional<detect::ScanJobSpec> ScanWorkers::SpecToRun(const JobRecord& job) {
  if (job.cancel_requested) {
    Finish(job, JobState::kCancelled, {"", "", "cancelled before it ran again"});
    return std::nullopt;
  }
  if (static_cast<int>(job.attempts) > options_.max_attempts) {
    Finish(job, JobState::kFailed,
           {"", "",
            absl::StrCat("interrupted by ", job.attempts - 1,
                         " server restarts; not run again (it may be what brings the server "
                         "down)")});
    return std::nullopt;
  }
  absl::StatusOr<detect::ScanJobSpec> spec = SpecOf(job);
  if (!spec.ok()) {
    Finish(job, JobState::kFailed, {"", "", std::string(spec.status().message())});
    return std::nullopt;
  }
  spec->data_dir = options_.data_dir;
  spec->threads = options_.scan_threads;
  return *std::move(spec);
}

absl::StatusOr<detect::ScanJobOutput> ScanWorkers::Execute(const detect::ScanJobSpec& spec,
                                                           LiveScan& scan) {
  detect::ScanJobControl control;
  control.cancel = &scan.cancel;
  control.tokenizers = tokenizers_;
  auto last = std::chrono::steady_clock::now();
  control.progress = [&](const detect::ScanProgress& p) {
    live_->UpdateProgress(scan, p);
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::milliseconds(900)) {
      last = now;
      live_->Bump();
    }
  };
  return detect::RunScanJob(spec, master_, control);
}

void ScanWorkers::Record(const JobRecord& job, const detect::ScanJobSpec& spec,
                         const absl::StatusOr<detect::ScanJobOutput>& out) {
  const bool shutting_down = live_->stopping();
  if (!out.ok() && absl::IsCancelled(out.status()) && shutting_down) {
    // Left running in the store: the next start requeues it.
    log_(absl::StrCat(job.id, " interrupted by shutdown; it runs again at the next start"));
  } else if (!out.ok()) {
    Finish(job, absl::IsCancelled(out.status()) ? JobState::kCancelled : JobState::kFailed,
           {"", "",
            absl::IsCancelled(out.status()) ? "cancelled at a client's request"
                                            : std::string(out.status().message())});
  } else {
    RecordSuccess(job, spec, *out);
  }
}

void ScanWorkers::RecordSuccess(const JobRecord& job, const detect::ScanJobSpec& spec,
                                const detect::ScanJobOutput& out) {
  JobOutcome o;
  o.result = out.result.dump();
  if (signer_ != nullptr) {
    absl::StatusOr<std::string> envelope = SignedReport(job, spec, out);
    if (!envelope.ok()) {
      Finish(job, JobState::kFailed,
             {"", "", absl::StrCat("report: ", envelope.status().message())});
    } else {
      o.report = *std::move(envelope);
    }
  }
  if (signer_ == nullptr || !o.report.empty()) Finish(job, JobState::kSucceeded, o);
}

absl::StatusOr<std::string> ScanWorkers::SignedReport(const JobRecord& job,
                                                      const detect::ScanJobSpec& spec,
                                                      const detect::ScanJobOutput& out) const {
  absl::StatusOr<json> report = evidence::BuildReport(spec, out, "scan");
  if (!report.ok()) return report.status();
  // The inputs as the client named them; which job of which service.
  const json files = json::parse(job.spec, nullptr, false).value("files", json::array());
  NameInputs(files, &(*report)["inputs"]);
  NameInputs(files, &(*report)["seen_in"]);
  (*report)["service_job"] = {{"id", job.id},
                              {"owner", job.owner},
                              {"label", job.label},
                              {"request_id", job.request_id},
                              {"submitted_unix_ms", job.created_ms}};
  return evidence::SignReport(*report, *signer_);
}

void ScanWorkers::Finish(const JobRecord& job, JobState state, JobOutcome outcome) {
  std::chrono::milliseconds wait(100);
  for (;;) {
    const absl::Status s = store_->Finish(job.id, state, outcome, NowMs());
    if (s.ok()) break;
    if (!absl::IsUnavailable(s)) {
      log_(absl::StrCat(job.id, ": cannot record its end: ", s.message()));
      return;
    }
    log_(absl::StrCat(job.id, ": cannot record its end yet (", s.message(), "); trying again in ",
                      wait.count(), " ms"));
    if (live_->WaitForStop(wait)) {
      log_(absl::StrCat(job.id, " left running by the stop; it runs again at the next start"));
      return;
    }
    wait = std::min(wait * 2, std::chrono::milliseconds(30000));
  }
  log_(absl::StrCat(job.id, " ", std::string(JobStateName(state)),
                    outcome.error.empty() ? "" : absl::StrCat(": ", outcome.error)));
}

}  // namespace tracemark::service
