#include "tracemark/service/server.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convert.h"
#include "grpc_logs.h"
#include "tracemark/base/file_io.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/envelope.h"
#include "tracemark/evidence/report.h"
#include "tracemark/service/access.h"
#include "tracemark/service/job_store.h"
#include "tracemark/v1/verifier.grpc.pb.h"
#include "tracemark/watermark/digest.h"

namespace tracemark::service {
namespace {

namespace fs = std::filesystem;
namespace v1 = tracemark::v1;
using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string hex(2 * bytes + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  hex.pop_back();
  return hex;
}

// A failed write of an upload, with the system's reason when there is one (a full disk is
// ResourceExhausted: the client may retry later or elsewhere).
absl::Status UploadError(const std::string& name) {
  const std::string what = absl::StrCat("cannot store upload '", name, "'");
  return errno != 0 ? base::ErrnoStatus(errno, what) : absl::UnavailableError(what);
}

// Makes a written file (or directory) durable.
absl::Status SyncPath(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", p.string()));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("cannot sync ", p.string()));
  return absl::OkStatus();
}

bool IsLoopback(const std::string& listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:");
}

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

// A valid upload name: a plain file name, printable, no path.
bool PlainFileName(const std::string& n) {
  if (n.empty() || n.size() > 255 || n == "." || n == "..") return false;
  for (unsigned char c : n) {
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
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

bool LowerHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Calls in progress, server-wide and per client; an Admission holds one slot of each.
class Limiter {
 public:
  Limiter(int total, int per_client) : total_limit_(total), per_client_limit_(per_client) {}

  class Admission {
   public:
    Admission() = default;
    Admission(Limiter* l, std::string client) : limiter_(l), client_(std::move(client)) {}
    Admission(Admission&& o) noexcept
        : limiter_(std::exchange(o.limiter_, nullptr)), client_(std::move(o.client_)) {}
    Admission& operator=(Admission&&) = delete;
    ~Admission() {
      if (limiter_ != nullptr) limiter_->Release(client_);
    }

   private:
    Limiter* limiter_ = nullptr;
    std::string client_;
  };

  absl::StatusOr<Admission> Admit(const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    if (total_ >= total_limit_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("server busy: ", total_limit_, " calls in progress; retry later"));
    }
    int& mine = per_client_[client];
    if (mine >= per_client_limit_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "client '", client, "' has ", per_client_limit_, " calls in progress; retry later"));
    }
    ++mine;
    ++total_;
    return Admission(this, client);
  }

 private:
  void Release(const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    --total_;
    auto it = per_client_.find(client);
    if (--it->second == 0) per_client_.erase(it);
  }
  std::mutex mu_;
  const int total_limit_, per_client_limit_;
  int total_ = 0;
  absl::flat_hash_map<std::string, int> per_client_;
};

// What a running scan shares with the calls that look at it.
struct Live {
  detect::ScanProgress progress;
  std::atomic<bool> cancel{false};
};

}  // namespace

struct VerifierServer::Impl final : public v1::Verifier::Service {
  ServerOptions opt;
  watermark::Key master;
  std::optional<evidence::EnvelopeSigner> signer;
  AccessTokens tokens;
  std::unique_ptr<JobStore> store;
  Limiter limiter;
  KeysInfo keys;
  fs::path files_dir;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  int requeued = 0;

  // Live state of running scans, and a version that changes on every event watchers care about.
  std::mutex mu;
  std::condition_variable changed;
  uint64_t version = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<Live>> live;
  SummaryCache summaries;
  detect::TokenizerCache tokenizers;
  bool stopping = false;
  std::vector<std::thread> workers;
  std::once_flag shutdown_once;
  std::mutex wait_mu;
  std::condition_variable stopped_cv;
  bool stopped = false;

  Impl(const ServerOptions& o, watermark::Key m, AccessTokens t)
      : opt(o),
        master(std::move(m)),
        tokens(std::move(t)),
        limiter(o.max_inflight, o.per_client_inflight) {}

  void Log(const std::string& line) {
    if (!opt.quiet) std::fprintf(stderr, "tracemark serve: %s\n", line.c_str());
  }

  void Bump() {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++version;
    }
    changed.notify_all();
  }

  // Authenticates the call and admits it; `needed` is the role the call requires.
  absl::StatusOr<std::pair<Client, Limiter::Admission>> Enter(grpc::ServerContext* ctx, Role needed,
                                                              std::string_view what) {
    const auto& md = ctx->client_metadata();
    const auto it = md.find("authorization");
    const std::string_view header = it == md.end()
                                        ? std::string_view()
                                        : std::string_view(it->second.data(), it->second.size());
    TRACEMARK_ASSIGN_OR_RETURN(Client c, tokens.Authenticate(header));
    TRACEMARK_RETURN_IF_ERROR(Require(c, needed, what));
    TRACEMARK_ASSIGN_OR_RETURN(Limiter::Admission a, limiter.Admit(c.name));
    return std::make_pair(std::move(c), std::move(a));
  }

  // The reply for `job`, with live progress while it runs.
  v1::Scan Describe(const JobRecord& job, bool with_result) {
    v1::Scan s = ToProto(job, &summaries);
    if (job.state == JobState::kRunning) {
      std::lock_guard<std::mutex> lock(mu);
      const auto it = live.find(job.id);
      if (it != live.end()) SetProgress(it->second->progress, s.mutable_progress());
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
    const std::string staging = absl::StrCat("u-", RandomHex(8));
    absl::StatusOr<JobRecord> job = Submit(ctx, entered->first, msg.request(), in, staging);
    if (!job.ok()) {
      std::error_code ec;
      fs::remove_all(files_dir / staging, ec);
      if (ctx->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "the call ended before the upload");
      }
      return ToGrpc(job.status());
    }
    *reply = Describe(*job, false);
    return grpc::Status::OK;
  }

  absl::StatusOr<JobRecord> Submit(grpc::ServerContext* ctx, const Client& client,
                                   const v1::ScanRequest& req,
                                   grpc::ServerReader<v1::SubmitScanRequest>* in,
                                   const std::string& staging) {
    if (req.request_id().size() > 128) {
      return absl::InvalidArgumentError("request_id is longer than 128 bytes");
    }
    if (req.label().size() > 1024) return absl::InvalidArgumentError("label is over 1024 bytes");
    // A resubmission (same client, same request id) gets its scan back before anything else:
    // no upload is stored again, and a full queue does not refuse it.
    TRACEMARK_ASSIGN_OR_RETURN(std::optional<JobRecord> existing,
                               store->FindRequest(client.name, req.request_id()));
    if (existing.has_value()) return *std::move(existing);
    TRACEMARK_ASSIGN_OR_RETURN(detect::ScanJobSpec spec, FromProto(req.parameters()));
    for (uint32_t e : spec.epochs) {
      if (std::find(opt.epochs.begin(), opt.epochs.end(), e) == opt.epochs.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("epoch ", e, " is not among the server's epochs (GetKeys lists them)"));
      }
    }
    TRACEMARK_ASSIGN_OR_RETURN(const uint64_t queued, QueuedCount());
    if (queued >= opt.max_queued) {
      return absl::ResourceExhaustedError(
          absl::StrCat(queued, " scans are waiting already; retry later"));
    }
    json files = json::array();
    for (const std::string& p : req.server_paths()) {
      TRACEMARK_ASSIGN_OR_RETURN(std::string path, ServerPath(p));
      spec.inputs.push_back(path);
      files.push_back({{"name", p}, {"path", path}, {"seen_in", false}});
    }
    for (const std::string& p : req.seen_in_server_paths()) {
      TRACEMARK_ASSIGN_OR_RETURN(std::string path, ServerPath(p));
      spec.seen_in.push_back(path);
      files.push_back({{"name", p}, {"path", path}, {"seen_in", true}});
    }
    if (req.uploads_size() > 1000) return absl::InvalidArgumentError("more than 1000 uploads");
    uint64_t total = 0;
    for (const v1::UploadedFile& u : req.uploads()) {
      if (!PlainFileName(u.name())) {
        return absl::InvalidArgumentError(
            absl::StrCat("upload name '", u.name(), "' is not a plain file name"));
      }
      if (!u.sha256().empty() && !LowerHex64(u.sha256())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "upload '", u.name(), "': sha256 must be 64 lowercase hex digits, or empty"));
      }
      total += u.size();
      if (total > opt.max_upload_bytes || u.size() > opt.max_upload_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the uploads exceed the server's limit of ", opt.max_upload_bytes, " bytes"));
      }
    }
    if (spec.inputs.empty() &&
        std::none_of(req.uploads().begin(), req.uploads().end(),
                     [](const v1::UploadedFile& u) { return !u.seen_in(); })) {
      return absl::InvalidArgumentError("a scan needs at least one input (server path or upload)");
    }
    {  // the parameters, before any bytes are taken (the uploads are inputs not yet named)
      detect::ScanJobSpec check = spec;
      check.data_dir = opt.data_dir;
      detect::ScanJobControl control;
      control.tokenizers = &tokenizers;
      TRACEMARK_RETURN_IF_ERROR(detect::CheckScanParameters(check, control));
    }
    TRACEMARK_RETURN_IF_ERROR(ReceiveUploads(ctx, req, in, staging, &spec, &files));
    TRACEMARK_RETURN_IF_ERROR(spec.Validate());
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
      std::error_code ec;
      fs::remove_all(files_dir / staging, ec);  // a retry: the first upload is the job's
    } else {
      Log(absl::StrCat(c.job.id, " queued for ", client.name,
                       c.job.label.empty() ? "" : absl::StrCat(" (", c.job.label, ")")));
    }
    Bump();
    return c.job;
  }

  absl::StatusOr<uint64_t> QueuedCount() {
    TRACEMARK_ASSIGN_OR_RETURN(std::vector<uint64_t> counts, store->CountByState());
    return counts[static_cast<size_t>(JobState::kQueued)];
  }

  // A server-side input: must exist and lie under one of the inputs roots.
  absl::StatusOr<std::string> ServerPath(const std::string& p) {
    if (opt.inputs_roots.empty()) {
      return absl::PermissionDeniedError(
          "this server takes no server-side paths (start it with --inputs-root)");
    }
    std::error_code ec;
    const fs::path real = fs::canonical(p, ec);
    if (ec) return absl::NotFoundError(absl::StrCat("server path '", p, "' does not exist"));
    for (const std::string& root : opt.inputs_roots) {
      const fs::path r = fs::canonical(root, ec);
      if (ec) continue;
      const auto mismatch = std::mismatch(r.begin(), r.end(), real.begin(), real.end());
      if (mismatch.first == r.end()) return real.string();
    }
    return absl::PermissionDeniedError(
        absl::StrCat("server path '", p, "' is not under an inputs root of this server"));
  }

  absl::Status ReceiveUploads(grpc::ServerContext* ctx, const v1::ScanRequest& req,
                              grpc::ServerReader<v1::SubmitScanRequest>* in,
                              const std::string& staging, detect::ScanJobSpec* spec, json* files) {
    const fs::path dir = files_dir / staging;
    if (req.uploads_size() > 0) {
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir.string()));
    }
    std::vector<fs::path> paths;
    for (int i = 0; i < req.uploads_size(); ++i) {
      paths.push_back(dir / absl::StrFormat("%04d-%s", i, req.uploads(i).name()));
    }
    int current = 0;
    uint64_t written = 0;
    std::ofstream out;
    auto open_next = [&]() -> absl::Status {
      while (current < req.uploads_size()) {
        errno = 0;
        out = std::ofstream(paths[current], std::ios::binary | std::ios::trunc);
        if (!out) return UploadError(req.uploads(current).name());
        if (req.uploads(current).size() > 0) return absl::OkStatus();
        out.close();  // an empty file is complete as soon as it exists
        ++current;
      }
      return absl::OkStatus();
    };
    TRACEMARK_RETURN_IF_ERROR(open_next());
    v1::SubmitScanRequest msg;
    while (in->Read(&msg)) {
      if (ctx->IsCancelled()) return absl::DeadlineExceededError("the call was cancelled");
      if (!msg.has_chunk()) {
        return absl::InvalidArgumentError("only InputChunks may follow the ScanRequest");
      }
      const v1::InputChunk& ch = msg.chunk();
      if (current >= req.uploads_size() || ch.file() != static_cast<uint32_t>(current)) {
        return absl::InvalidArgumentError(
            absl::StrCat("a chunk for upload ", ch.file(), " arrived while upload ", current,
                         " was expected (uploads are sent whole, in the declared order)"));
      }
      const uint64_t size = req.uploads(current).size();
      if (written + ch.data().size() > size) {
        return absl::InvalidArgumentError(absl::StrCat("upload '", req.uploads(current).name(),
                                                       "' is longer than its declared ", size,
                                                       " bytes"));
      }
      errno = 0;
      out.write(ch.data().data(), static_cast<std::streamsize>(ch.data().size()));
      if (!out) return UploadError(req.uploads(current).name());
      written += ch.data().size();
      if (written == size) {
        out.close();
        if (!out) return UploadError(req.uploads(current).name());
        ++current;
        written = 0;
        TRACEMARK_RETURN_IF_ERROR(open_next());
      }
    }
    if (ctx->IsCancelled()) return absl::DeadlineExceededError("the call was cancelled");
    if (current < req.uploads_size()) {
      return absl::InvalidArgumentError(absl::StrCat("upload '", req.uploads(current).name(),
                                                     "' ended after ", written, " of ",
                                                     req.uploads(current).size(), " bytes"));
    }
    for (int i = 0; i < req.uploads_size(); ++i) {
      const v1::UploadedFile& u = req.uploads(i);
      TRACEMARK_ASSIGN_OR_RETURN(std::string sha, watermark::Sha256HexOfFile(paths[i].string()));
      if (!u.sha256().empty() && u.sha256() != sha) {
        return absl::DataLossError(absl::StrCat("upload '", u.name(), "' has SHA-256 ", sha,
                                                ", not the declared ", u.sha256()));
      }
      TRACEMARK_RETURN_IF_ERROR(SyncPath(paths[i], false));
      (u.seen_in() ? spec->seen_in : spec->inputs).push_back(paths[i].string());
      files->push_back({{"name", u.name()},
                        {"path", paths[i].string()},
                        {"bytes", u.size()},
                        {"sha256", sha},
                        {"seen_in", u.seen_in()}});
    }
    if (req.uploads_size() > 0) {
      TRACEMARK_RETURN_IF_ERROR(SyncPath(dir, true));
      TRACEMARK_RETURN_IF_ERROR(SyncPath(files_dir, true));
    }
    return absl::OkStatus();
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
      uint64_t seen = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        seen = version;
      }
      absl::StatusOr<JobRecord> job = store->Get(req->id());
      if (!job.ok()) return ToGrpc(job.status());
      if (!out->Write(Describe(*job, false))) return grpc::Status::OK;  // the client went away
      if (IsFinal(job->state)) return grpc::Status::OK;
      std::unique_lock<std::mutex> lock(mu);
      changed.wait_for(lock, std::chrono::seconds(1), [&] { return version != seen || stopping; });
      if (stopping) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is stopping");
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
    {
      std::lock_guard<std::mutex> lock(mu);
      const auto it = live.find(job->id);
      if (it != live.end()) it->second->cancel = true;
    }
    if (!IsFinal(job->state) || job->finished_ms == 0) {
      Log(absl::StrCat(job->id, " cancel requested by ", c.name));
    }
    Bump();
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

  // ---- workers ----

  void WorkerLoop() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      absl::StatusOr<std::optional<JobRecord>> next = store->ClaimNext(NowMs());
      if (!next.ok()) {
        Log(absl::StrCat("job store: ", next.status().message()));
      } else if (next->has_value()) {
        Run(**next);
        continue;
      }
      std::unique_lock<std::mutex> lock(mu);
      const uint64_t seen = version;
      changed.wait_for(lock, std::chrono::seconds(1), [&] { return stopping || version != seen; });
    }
  }

  // Records the job's end. While the store cannot take it (disk full, I/O errors: Unavailable),
  // the outcome is kept here and the write retried, backing off to 30 s, until it lands or the
  // server stops; a computed result is not dropped for a passing fault. A job left running by a
  // stop is requeued at the next start and runs again, to the same result.
  void Finish(const JobRecord& job, JobState state, JobOutcome outcome) {
    std::chrono::milliseconds wait(100);
    for (;;) {
      const absl::Status s = store->Finish(job.id, state, outcome, NowMs());
      if (s.ok()) break;
      if (!absl::IsUnavailable(s)) {
        Log(absl::StrCat(job.id, ": cannot record its end: ", s.message()));
        return;
      }
      Log(absl::StrCat(job.id, ": cannot record its end yet (", s.message(), "); trying again in ",
                       wait.count(), " ms"));
      std::unique_lock<std::mutex> lock(mu);
      if (changed.wait_for(lock, wait, [&] { return stopping; })) {
        Log(absl::StrCat(job.id, " left running by the stop; it runs again at the next start"));
        return;
      }
      wait = std::min(wait * 2, std::chrono::milliseconds(30000));
    }
    Log(absl::StrCat(job.id, " ", std::string(JobStateName(state)),
                     outcome.error.empty() ? "" : absl::StrCat(": ", outcome.error)));
  }

  void Run(const JobRecord& job) {
    Bump();
    if (job.cancel_requested) {
      Finish(job, JobState::kCancelled, {"", "", "cancelled before it ran again"});
      return Bump();
    }
    if (static_cast<int>(job.attempts) > opt.max_attempts) {
      Finish(job, JobState::kFailed,
             {"", "",
              absl::StrCat("interrupted by ", job.attempts - 1,
                           " server restarts; not run again (it may be what brings the server "
                           "down)")});
      return Bump();
    }
    absl::StatusOr<detect::ScanJobSpec> spec = SpecOf(job);
    if (!spec.ok()) {
      Finish(job, JobState::kFailed, {"", "", std::string(spec.status().message())});
      return Bump();
    }
    spec->data_dir = opt.data_dir;
    spec->threads = opt.scan_threads;
    auto state = std::make_shared<Live>();
    {
      std::lock_guard<std::mutex> lock(mu);
      live[job.id] = state;
    }
    // A CancelScan between ClaimNext and now found no live entry to flag: read the store again.
    if (absl::StatusOr<JobRecord> now = store->Get(job.id); now.ok() && now->cancel_requested) {
      state->cancel = true;
    }
    Log(absl::StrCat(job.id, " running (attempt ", job.attempts, ")"));
    detect::ScanJobControl control;
    control.cancel = &state->cancel;
    control.tokenizers = &tokenizers;
    auto last = std::chrono::steady_clock::now();
    control.progress = [&](const detect::ScanProgress& p) {
      {
        std::lock_guard<std::mutex> lock(mu);
        state->progress = p;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now - last > std::chrono::milliseconds(900)) {
        last = now;
        Bump();
      }
    };
    absl::StatusOr<detect::ScanJobOutput> out = detect::RunScanJob(*spec, master, control);
    bool shutting_down = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      shutting_down = stopping;
    }
    if (!out.ok() && absl::IsCancelled(out.status()) && shutting_down) {
      // Left running in the store: the next start requeues it.
      Log(absl::StrCat(job.id, " interrupted by shutdown; it runs again at the next start"));
    } else if (!out.ok()) {
      Finish(job, absl::IsCancelled(out.status()) ? JobState::kCancelled : JobState::kFailed,
             {"", "",
              absl::IsCancelled(out.status()) ? "cancelled at a client's request"
                                              : std::string(out.status().message())});
    } else {
      JobOutcome o;
      o.result = out->result.dump();
      if (signer.has_value()) {
        absl::StatusOr<json> report = evidence::BuildReport(*spec, *out, "scan");
        if (report.ok()) {  // the inputs as the client named them; which job of which service
          const json files = json::parse(job.spec, nullptr, false).value("files", json::array());
          NameInputs(files, &(*report)["inputs"]);
          NameInputs(files, &(*report)["seen_in"]);
          (*report)["service_job"] = {{"id", job.id},
                                      {"owner", job.owner},
                                      {"label", job.label},
                                      {"request_id", job.request_id},
                                      {"submitted_unix_ms", job.created_ms}};
        }
        absl::StatusOr<std::string> envelope =
            report.ok() ? evidence::SignReport(*report, *signer) : report.status();
        if (!envelope.ok()) {
          Finish(job, JobState::kFailed,
                 {"", "", absl::StrCat("report: ", envelope.status().message())});
        } else {
          o.report = *std::move(envelope);
        }
      }
      if (!signer.has_value() || !o.report.empty()) Finish(job, JobState::kSucceeded, o);
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      live.erase(job.id);
    }
    Bump();
  }

  // Removes upload folders no job names (a server killed between storing and queueing).
  void RemoveOrphanUploads() {
    std::error_code ec;
    if (!fs::is_directory(files_dir, ec)) return;
    absl::flat_hash_map<std::string, bool> used;
    ListQuery q;
    q.limit = 1000;
    for (;;) {
      absl::StatusOr<std::vector<JobRecord>> page = store->List(q);
      if (!page.ok() || page->empty()) break;
      for (const JobRecord& j : *page) {
        json s = json::parse(j.spec, nullptr, false);
        if (s.is_object()) used[s.value("staging", "")] = true;
      }
      q.before_sequence = page->back().sequence;
    }
    for (const fs::directory_entry& e : fs::directory_iterator(files_dir, ec)) {
      const std::string name = e.path().filename().string();
      if (absl::StartsWith(name, "u-") && !used.contains(name)) {
        fs::remove_all(e.path(), ec);
        Log(absl::StrCat("removed ", name, ", an upload no scan names"));
      }
    }
  }

  void Stop() {
    std::call_once(shutdown_once, [this] {
      {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
        for (auto& [id, state] : live) state->cancel = true;
      }
      changed.notify_all();
      if (server != nullptr) {
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      }
      for (std::thread& t : workers) t.join();
      workers.clear();
      {
        std::lock_guard<std::mutex> lock(wait_mu);
        stopped = true;
      }
      stopped_cv.notify_all();
    });
  }
};

absl::StatusOr<std::unique_ptr<VerifierServer>> VerifierServer::Start(const ServerOptions& options,
                                                                      watermark::Key master) {
  QuietGrpcLogs();
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  if (options.tokens_file.empty()) {
    return absl::InvalidArgumentError("a tokens file is required (--tokens FILE)");
  }
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
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
  TRACEMARK_ASSIGN_OR_RETURN(AccessTokens tokens, AccessTokens::ReadFile(options.tokens_file));
  auto impl = std::make_unique<Impl>(options, std::move(master), std::move(tokens));
  if (!options.signing_key.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key seed,
                               watermark::ReadMasterKeyFile(options.signing_key));
    TRACEMARK_ASSIGN_OR_RETURN(impl->signer, evidence::EnvelopeSigner::FromSeed(seed));
  }
  TRACEMARK_ASSIGN_OR_RETURN(impl->keys, DescribeKeys(impl->master, options.epochs,
                                                      impl->signer ? &*impl->signer : nullptr));
  impl->files_dir =
      options.files_dir.empty() ? fs::path(options.db + ".files") : fs::path(options.files_dir);
  std::error_code ec;
  fs::create_directories(impl->files_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the uploads folder ", impl->files_dir.string()));
  }
  TRACEMARK_ASSIGN_OR_RETURN(impl->store, JobStore::Open(options.db));
  TRACEMARK_ASSIGN_OR_RETURN(impl->requeued, impl->store->RequeueRunning());
  if (impl->requeued > 0) {
    impl->Log(absl::StrCat(impl->requeued,
                           " scan(s) a previous server left running are queued "
                           "again"));
  }
  impl->RemoveOrphanUploads();

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls) {
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
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) TRACEMARK_RETURN_IF_ERROR(LoadReflection());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &impl->port);
  builder.RegisterService(impl.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(std::max(options.max_message_bytes, 64 << 20));
  // Streams a connection may open at once: beyond the call limit they would only wait in the
  // server's memory; this way they wait in the client's, and the server's memory stays bounded.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_inflight);
  grpc::ResourceQuota quota("tracemark-verifier");
  quota.SetMaxThreads(options.max_inflight + 16);
  builder.SetResourceQuota(quota);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  impl->server->GetHealthCheckService()->SetServingStatus(true);
  for (int i = 0; i < options.workers; ++i) {
    impl->workers.emplace_back([p = impl.get()] { p->WorkerLoop(); });
  }
  impl->Log(absl::StrCat("listening on port ", impl->port, tls ? " (TLS" : " (plaintext",
                         options.tls_client_ca.empty() ? ")" : ", mutual)", "; ",
                         impl->tokens.size(), " client token(s); master key id ",
                         impl->master.Id()));
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
