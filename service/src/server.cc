// VerifierServer: the gRPC handlers of tracemark.v1.Verifier, and Start, which assembles the
// server from its parts: admission (admission.h), inputs and uploads (uploads.h), the running
// scans (live_scans.h), the worker pool (workers.h) and the start-up checks (startup.h).
#include "tracemark/service/server.h"

#include <grpcpp/grpcpp.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "admission.h"
#include "convert.h"
#include "grpc_logs.h"
#include "live_scans.h"
#include "nlohmann/json.hpp"
#include "server_common.h"
#include "startup.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/evidence/report.h"
#include "tracemark/service/access.h"
#include "tracemark/service/job_store.h"
#include "tracemark/service/scan_parameters.h"
#include "tracemark/v1/verifier.grpc.pb.h"
#include "uploads.h"
#include "workers.h"

namespace tracemark::service {
namespace {

namespace v1 = tracemark::v1;
using nlohmann::json;

// The bounds on a ScanRequest's own fields.
absl::Status CheckRequestFields(const v1::ScanRequest& req) {
  if (req.request_id().size() > 128) {
    return absl::InvalidArgumentError("request_id is longer than 128 bytes");
  }
  if (req.label().size() > 1024) return absl::InvalidArgumentError("label is over 1024 bytes");
  return absl::OkStatus();
}

}  // namespace

// The server's state, and the handlers of its calls. Each handler enters (authentication, role,
// admission) before it reads the store; a handler's status is the absl status of its first
// failure, as ToGrpc maps it.
struct VerifierServer::Impl final : public v1::Verifier::Service {
  Impl(const ServerOptions& o, watermark::Key m, AccessTokens t)
      : opt(o),
        log(o.quiet),
        master(std::move(m)),
        tokens(std::move(t)),
        limiter(o.max_inflight, o.per_client_inflight),
        uploads(o) {}

  absl::StatusOr<std::pair<Client, Limiter::Admission>> Enter(grpc::ServerContext* ctx, Role needed,
                                                              std::string_view what) {
    return service::Enter(*ctx, tokens, &limiter, needed, what);
  }

  // The reply for `job`, with live progress while it runs.
  v1::Scan Describe(const JobRecord& job, bool with_result) {
    v1::Scan s = ToProto(job, &summaries);
    if (job.state == JobState::kRunning) {
      if (std::optional<detect::ScanProgress> p = live.Progress(job.id)) {
        SetProgress(*p, s.mutable_progress());
      }
    }
    if (with_result) s.set_result_json(job.result);
    return s;
  }

  // ---- calls ----

  grpc::Status SubmitScan(grpc::ServerContext* ctx, grpc::ServerReader<v1::SubmitScanRequest>* in,
                          v1::Scan* reply) override {
    auto entered = Enter(ctx, Role::kSubmit, "SubmitScan");
    if (!entered.ok()) return ToGrpc(entered.status());
    v1::SubmitScanRequest msg;
    if (!in->Read(&msg) || !msg.has_request()) {
      return ToGrpc(absl::InvalidArgumentError("the first message must be a ScanRequest"));
    }
    const std::string staging = Uploads::NewStaging();
    absl::StatusOr<JobRecord> job = Submit(ctx, entered->first, msg.request(), in, staging);
    if (!job.ok()) {
      uploads.Discard(staging);
      if (ctx->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "the call ended before the upload");
      }
      return ToGrpc(job.status());
    }
    *reply = Describe(*job, false);
    return grpc::Status::OK;
  }

  // Checks the request, receives its uploads into `staging` and queues its job; a resubmission
  // (same client, same request id) gets its scan back before anything else: no upload is stored
  // again, and a full queue does not refuse it.
  absl::StatusOr<JobRecord> Submit(grpc::ServerContext* ctx, const Client& client,
                                   const v1::ScanRequest& req,
                                   grpc::ServerReader<v1::SubmitScanRequest>* in,
                                   const std::string& staging) {
    TRACEMARK_RETURN_IF_ERROR(CheckRequestFields(req));
    TRACEMARK_ASSIGN_OR_RETURN(std::optional<JobRecord> existing,
                               store->FindRequest(client.name, req.request_id()));
    if (existing.has_value()) return *std::move(existing);
    TRACEMARK_ASSIGN_OR_RETURN(detect::ScanJobSpec spec, FromScanParameters(req.parameters()));
    TRACEMARK_RETURN_IF_ERROR(CheckEpochs(spec));
    TRACEMARK_RETURN_IF_ERROR(CheckQueueRoom());
    json files = json::array();
    TRACEMARK_RETURN_IF_ERROR(uploads.AddServerPaths(req, &spec, &files));
    TRACEMARK_RETURN_IF_ERROR(uploads.CheckDeclared(req));
    TRACEMARK_RETURN_IF_ERROR(CheckParameters(req, spec));
    TRACEMARK_RETURN_IF_ERROR(uploads.Receive(ctx, req, in, staging, &spec, &files));
    TRACEMARK_RETURN_IF_ERROR(spec.Validate());
    return Queue(client, req, spec, files, staging);
  }

  // InvalidArgument for an epoch the server does not hold.
  absl::Status CheckEpochs(const detect::ScanJobSpec& spec) const {
    for (uint32_t e : spec.epochs) {
      if (std::find(opt.epochs.begin(), opt.epochs.end(), e) == opt.epochs.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("epoch ", e, " is not among the server's epochs (GetKeys lists them)"));
      }
    }
    return absl::OkStatus();
  }

  // ResourceExhausted when max_queued scans wait already.
  absl::Status CheckQueueRoom() {
    TRACEMARK_ASSIGN_OR_RETURN(std::vector<uint64_t> counts, store->CountByState());
    const uint64_t queued = counts[static_cast<size_t>(JobState::kQueued)];
    if (queued >= opt.max_queued) {
      return absl::ResourceExhaustedError(
          absl::StrCat(queued, " scans are waiting already; retry later"));
    }
    return absl::OkStatus();
  }

  // The scan has an input, and its parameters hold (tokenizer, watermark, lexicon), before any
  // bytes are taken: the uploads are inputs not yet named.
  absl::Status CheckParameters(const v1::ScanRequest& req, const detect::ScanJobSpec& spec) {
    if (spec.inputs.empty() &&
        std::none_of(req.uploads().begin(), req.uploads().end(),
                     [](const v1::UploadedFile& u) { return !u.seen_in(); })) {
      return absl::InvalidArgumentError("a scan needs at least one input (server path or upload)");
    }
    detect::ScanJobSpec check = spec;
    check.data_dir = opt.data_dir;
    detect::ScanJobControl control;
    control.tokenizers = &tokenizers;
    return detect::CheckScanParameters(check, control);
  }

  // Stores the job; a concurrent retry of the same request gets the first one's job, and its
  // own uploads are discarded.
  absl::StatusOr<JobRecord> Queue(const Client& client, const v1::ScanRequest& req,
                                  const detect::ScanJobSpec& spec, const json& files,
                                  const std::string& staging) {
    JobRecord job;
    job.owner = client.name;
    job.request_id = req.request_id();
    job.label = req.label();
    job.spec = json{{"options", spec.Options()},
                    {"files", files},
                    {"staging", req.uploads_size() > 0 ? staging : ""}}
                   .dump();
    job.created_ms = NowMs();
    TRACEMARK_ASSIGN_OR_RETURN(CreatedJob c, store->Create(std::move(job)));
    if (!c.created) {
      uploads.Discard(staging);  // a retry: the first upload is the job's
    } else {
      log(absl::StrCat(c.job.id, " queued for ", client.name,
                       c.job.label.empty() ? "" : absl::StrCat(" (", c.job.label, ")")));
    }
    live.Bump();
    return c.job;
  }

  grpc::Status GetScan(grpc::ServerContext* ctx, const v1::GetScanRequest* req,
                       v1::Scan* reply) override {
    auto entered = Enter(ctx, Role::kRead, "GetScan");
    if (!entered.ok()) return ToGrpc(entered.status());
    absl::StatusOr<JobRecord> job = store->Get(req->id());
    if (!job.ok()) return ToGrpc(job.status());
    *reply = Describe(*job, req->include_result_json());
    return grpc::Status::OK;
  }

  grpc::Status ListScans(grpc::ServerContext* ctx, const v1::ListScansRequest* req,
                         v1::ListScansResponse* reply) override {
    auto entered = Enter(ctx, Role::kRead, "ListScans");
    if (!entered.ok()) return ToGrpc(entered.status());
    ListQuery q;
    q.owner = req->all_owners() ? "" : entered->first.name;
    q.limit = req->page_size() == 0 ? 50 : req->page_size();
    if (q.limit > 1000) return ToGrpc(absl::InvalidArgumentError("page_size is at most 1000"));
    if (req->state() != v1::SCAN_STATE_UNSPECIFIED) {
      q.state = static_cast<JobState>(req->state());
    }
    if (!req->page_token().empty() && !absl::SimpleAtoi(req->page_token(), &q.before_sequence)) {
      return ToGrpc(absl::InvalidArgumentError("bad page_token"));
    }
    absl::StatusOr<std::vector<JobRecord>> jobs = store->List(q);
    if (!jobs.ok()) return ToGrpc(jobs.status());
    for (const JobRecord& j : *jobs) *reply->add_scans() = Describe(j, false);
    if (jobs->size() == q.limit && !jobs->empty()) {
      reply->set_next_page_token(std::to_string(jobs->back().sequence));
    }
    return grpc::Status::OK;
  }

  grpc::Status WatchScan(grpc::ServerContext* ctx, const v1::WatchScanRequest* req,
                         grpc::ServerWriter<v1::Scan>* out) override {
    auto entered = Enter(ctx, Role::kRead, "WatchScan");
    if (!entered.ok()) return ToGrpc(entered.status());
    for (;;) {
      const uint64_t seen = live.version();
      absl::StatusOr<JobRecord> job = store->Get(req->id());
      if (!job.ok()) return ToGrpc(job.status());
      if (!out->Write(Describe(*job, false))) return grpc::Status::OK;  // the client went away
      if (IsFinal(job->state)) return grpc::Status::OK;
      if (live.WaitForChange(seen, std::chrono::seconds(1))) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is stopping");
      }
      if (ctx->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the watch's deadline passed");
      }
    }
  }

  grpc::Status CancelScan(grpc::ServerContext* ctx, const v1::CancelScanRequest* req,
                          v1::Scan* reply) override {
    auto entered = Enter(ctx, Role::kSubmit, "CancelScan");
    if (!entered.ok()) return ToGrpc(entered.status());
    const Client& c = entered->first;
    absl::StatusOr<JobRecord> job = store->Get(req->id());
    if (!job.ok()) return ToGrpc(job.status());
    if (job->owner != c.name && c.role != Role::kAdmin) {
      return ToGrpc(absl::PermissionDeniedError(
          absl::StrCat("scan ", job->id, " is another client's; only an admin may cancel it")));
    }
    job = store->RequestCancel(req->id(), absl::StrCat("cancelled by ", c.name), NowMs());
    if (!job.ok()) return ToGrpc(job.status());
    live.Cancel(job->id);
    if (!IsFinal(job->state) || job->finished_ms == 0) {
      log(absl::StrCat(job->id, " cancel requested by ", c.name));
    }
    live.Bump();
    *reply = Describe(*job, false);
    return grpc::Status::OK;
  }

  grpc::Status GetReport(grpc::ServerContext* ctx, const v1::GetReportRequest* req,
                         v1::Report* reply) override {
    auto entered = Enter(ctx, Role::kRead, "GetReport");
    if (!entered.ok()) return ToGrpc(entered.status());
    absl::StatusOr<JobRecord> job = store->Get(req->id());
    if (!job.ok()) return ToGrpc(job.status());
    if (job->state != JobState::kSucceeded) {
      return ToGrpc(absl::FailedPreconditionError(
          absl::StrCat("scan ", job->id, " is ", std::string(JobStateName(job->state)),
                       "; only a succeeded scan has a report")));
    }
    if (job->report.empty()) {
      return ToGrpc(absl::FailedPreconditionError(
          "this server signs no reports (start it with --signing-key)"));
    }
    reply->set_scan_id(job->id);
    reply->set_format(req->format());
    reply->set_signing_key_id(signer->key_id());
    reply->set_signing_public_key(signer->public_key_hex());
    if (req->format() == v1::ENVELOPE) {
      reply->set_content(job->report);
      return grpc::Status::OK;
    }
    absl::StatusOr<evidence::OpenedReport> opened =
        evidence::OpenReport(job->report, signer->public_key_hex());
    if (!opened.ok()) return ToGrpc(opened.status());
    reply->set_content(req->format() == v1::HTML ? evidence::RenderReportHtml(*opened)
                                                 : evidence::RenderReportMarkdown(*opened));
    return grpc::Status::OK;
  }

  grpc::Status GetKeys(grpc::ServerContext* ctx, const v1::GetKeysRequest*,
                       v1::Keys* reply) override {
    auto entered = Enter(ctx, Role::kRead, "GetKeys");
    if (!entered.ok()) return ToGrpc(entered.status());
    *reply = ToProto(keys);
    return grpc::Status::OK;
  }

  // ---- life ----

  // Opens the job store, queues again the scans a killed server left running, and removes the
  // uploads no job names.
  absl::Status OpenStore() {
    TRACEMARK_ASSIGN_OR_RETURN(store, JobStore::Open(opt.db));
    TRACEMARK_ASSIGN_OR_RETURN(requeued, store->RequeueRunning());
    if (requeued > 0) {
      log(absl::StrCat(requeued, " scan(s) a previous server left running are queued again"));
    }
    uploads.RemoveOrphans(store.get(), log);
    return absl::OkStatus();
  }

  // Starts opt.workers workers on the open store.
  void StartWorkers() {
    workers = std::make_unique<ScanWorkers>(opt, master, signer ? &*signer : nullptr, store.get(),
                                            &live, &tokenizers, log);
    workers->Start(opt.workers);
  }

  // Stops the running scans and the workers, gives calls in progress 5 s, and wakes Wait.
  void Stop() {
    std::call_once(shutdown_once, [this] {
      live.Stop();
      if (server != nullptr) {
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      }
      if (workers != nullptr) workers->Join();
      {
        std::lock_guard<std::mutex> lock(wait_mu);
        stopped = true;
      }
      stopped_cv.notify_all();
    });
  }

  const ServerOptions opt;
  const ServeLog log;
  watermark::Key master;
  std::optional<evidence::EnvelopeSigner> signer;
  AccessTokens tokens;
  KeysInfo keys;
  Limiter limiter;
  Uploads uploads;
  std::unique_ptr<JobStore> store;
  int requeued = 0;
  LiveScans live;
  SummaryCache summaries;
  detect::TokenizerCache tokenizers;
  std::unique_ptr<ScanWorkers> workers;  // once the server is up
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  std::once_flag shutdown_once;
  std::mutex wait_mu;
  std::condition_variable stopped_cv;
  bool stopped = false;  // guarded by wait_mu
};

absl::StatusOr<std::unique_ptr<VerifierServer>> VerifierServer::Start(const ServerOptions& options,
                                                                      watermark::Key master) {
  QuietGrpcLogs();
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  TRACEMARK_RETURN_IF_ERROR(CheckServerOptions(options));
  TRACEMARK_ASSIGN_OR_RETURN(AccessTokens tokens, AccessTokens::ReadFile(options.tokens_file));
  auto impl = std::make_unique<Impl>(options, std::move(master), std::move(tokens));
  TRACEMARK_ASSIGN_OR_RETURN(impl->signer, LoadSigner(options.signing_key));
  TRACEMARK_ASSIGN_OR_RETURN(impl->keys, DescribeKeys(impl->master, options.epochs,
                                                      impl->signer ? &*impl->signer : nullptr));
  TRACEMARK_RETURN_IF_ERROR(impl->uploads.CreateFolder());
  TRACEMARK_RETURN_IF_ERROR(impl->OpenStore());
  TRACEMARK_ASSIGN_OR_RETURN(impl->server, BuildServer(options, impl.get(), &impl->port));
  impl->StartWorkers();
  impl->log(
      absl::StrCat("listening on port ", impl->port, UsesTls(options) ? " (TLS" : " (plaintext",
                   options.tls_client_ca.empty() ? ")" : ", mutual)", "; ", impl->tokens.size(),
                   " client token(s); master key id ", impl->master.Id()));
  return std::unique_ptr<VerifierServer>(new VerifierServer(std::move(impl)));
}

VerifierServer::VerifierServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VerifierServer::~VerifierServer() { Shutdown(); }
int VerifierServer::port() const { return impl_->port; }
int VerifierServer::requeued() const { return impl_->requeued; }
void VerifierServer::Shutdown() { impl_->Stop(); }
void VerifierServer::Wait() {
  std::unique_lock<std::mutex> lock(impl_->wait_mu);
  impl_->stopped_cv.wait(lock, [&] { return impl_->stopped; });
}

}  // namespace tracemark::service
