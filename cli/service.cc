#include "service.h"

#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common.h"
#include "scan_spec_flags.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/service/client.h"
#include "tracemark/service/scan_parameters.h"
#include "tracemark/service/server.h"

namespace tracemark::cli {
namespace {

namespace v1 = tracemark::v1;

struct ServeFlags {
  CommonFlags common;
  service::ServerOptions server;
  std::string epochs = "0";
  double max_upload_mb = 1024, max_message_mb = 4;
  std::string port_file;
};

struct RemoteFlags {
  service::ClientOptions client;
  std::string token_env = "TRACEMARK_TOKEN";
  bool json = false;
  // submit: the scan's spec (inputs and seen_in are uploads), and where else its inputs are
  ScanSpecFlags spec;
  std::vector<std::string> server_paths, seen_in_server_paths;
  std::string label, request_id;
  bool watch = false;
  // get, watch, cancel, report
  std::string id;
  bool result = false;
  std::string format = "envelope", out;
  // list
  std::string state;
  bool all = false;
  uint32_t limit = 0;
  std::string page_token;
};

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string StateName(v1::ScanState s) {
  std::string n = v1::ScanState_Name(s);
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return n;
}

void PrintScan(const v1::Scan& s) {
  std::cout << s.id() << "  " << StateName(s.state()) << "  owner " << s.owner();
  if (!s.label().empty()) std::cout << "  \"" << s.label() << "\"";
  if (s.attempts() > 1) std::cout << "  (attempt " << s.attempts() << ")";
  std::cout << "\n";
  const v1::Progress& p = s.progress();
  if (s.state() == v1::RUNNING || s.state() == v1::SUCCEEDED) {
    std::cout << absl::StrFormat("  %d documents, %d tokens, %d of %d bytes, %.1f s\n",
                                 p.documents(), p.tokens(), p.bytes_read(), p.total_bytes(),
                                 p.seconds());
  }
  if (!s.error().empty()) std::cout << "  " << s.error() << "\n";
  if (s.state() == v1::SUCCEEDED) {
    const v1::ScanSummary& m = s.summary();
    std::cout << "  dataset provider p = " << m.provider_p_value().text() << " over "
              << m.provider_tuples() << " unique tuples; " << m.documents_flagged()
              << " documents flagged, " << m.documents_attributed() << " attributed\n";
    for (const v1::AccountFinding& a : m.accounts()) {
      std::cout << absl::StrFormat("  account %d: %d documents, %d attributed, p = %s\n",
                                   a.account(), a.documents(), a.attributed(),
                                   a.combined_p_value().text());
    }
    if (m.has_canary_p_value()) {
      std::cout << "  canary: best account " << m.canary_best_account()
                << ", p = " << m.canary_p_value().text() << " (corrected)\n";
    }
    if (s.has_report()) std::cout << "  signed report: tracemark remote report " << s.id() << "\n";
  }
}

void Print(const google::protobuf::Message& m, bool json) {
  if (json) {
    std::cout << Json(m) << "\n";
  } else if (const auto* s = dynamic_cast<const v1::Scan*>(&m)) {
    PrintScan(*s);
  } else {
    std::cout << m.DebugString();
  }
}

std::string ProgressLine(const v1::Scan& s) {
  const v1::Progress& p = s.progress();
  std::string line =
      absl::StrFormat("%s  %s  %d documents", s.id(), StateName(s.state()), p.documents());
  if (p.total_bytes() > 0 || p.bytes_read() > 0) {  // one large document: bytes move, documents not
    absl::StrAppendFormat(&line, ", %d of %d bytes", p.bytes_read(), p.total_bytes());
  }
  return line;
}

// Follows scan `id` until it ends: progress as it goes (one line per change, or one line
// rewritten in place on a terminal), then the final state. A scan that did not succeed is an
// error, its reason said once (on standard error, by the caller's status), so `remote watch` and
// `remote submit --watch` exit 1 for it.
absl::Status Follow(service::VerifierClient& client, const std::string& id, bool json,
                    bool in_place) {
  v1::Scan last;
  TRACEMARK_RETURN_IF_ERROR(client.Watch(id, [&](const v1::Scan& now) {
    last = now;
    if (in_place) {
      std::fprintf(stderr, "\r%s   ", ProgressLine(now).c_str());
    } else if (!json) {
      std::cout << ProgressLine(now) << "\n" << std::flush;
    }
  }));
  if (in_place) std::fputc('\n', stderr);
  if (last.state() == v1::SUCCEEDED || json) Print(last, json);
  if (last.state() != v1::SUCCEEDED) {
    return absl::AbortedError(absl::StrCat("scan ", last.id(), " ", StateName(last.state()),
                                           last.error().empty() ? "" : ": " + last.error()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<service::VerifierClient>> Connect(RemoteFlags& f) {
  const char* token = std::getenv(f.token_env.c_str());
  if (token == nullptr || *token == '\0') {
    return absl::InvalidArgumentError(
        absl::StrCat("no token: set $", f.token_env, " (or name another variable, --token-env)"));
  }
  f.client.token = token;
  return service::VerifierClient::Connect(f.client);
}

absl::Status Serve(ServeFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(f.server.epochs, detect::ParseEpochs(f.epochs));
  if (!(f.max_upload_mb > 0) || !(f.max_message_mb > 0) || f.max_message_mb > 1024) {
    return absl::InvalidArgumentError("--max-upload-mb and --max-message-mb must be positive");
  }
  f.server.max_upload_bytes = static_cast<uint64_t>(f.max_upload_mb * 1048576.0);
  f.server.max_message_bytes = static_cast<int>(f.max_message_mb * 1048576.0);
  f.server.data_dir = DataDir(f.common.data_dir);
  // No core dumps: the server holds the master key for its whole life (libsodium already keeps it
  // out of dumps; this keeps everything else, uploads and tokens included, out as well).
  const rlimit no_core{0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError("cannot disable core dumps");
  }
  // A file-size limit (or a quota) makes a write fail with EFBIG, which the store and the uploads
  // report per call; the default action of SIGXFSZ would kill the server instead.
  signal(SIGXFSZ, SIG_IGN);
  // Signals are taken by this thread only (sigwait below), so every server thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::unique_ptr<service::VerifierServer> server;
  {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    TRACEMARK_ASSIGN_OR_RETURN(server, service::VerifierServer::Start(f.server, std::move(master)));
  }
  if (!f.port_file.empty()) {
    TRACEMARK_RETURN_IF_ERROR(WriteFileAtomically(f.port_file, absl::StrCat(server->port(), "\n")));
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "tracemark serve: %s: stopping (running scans resume at the next start)\n",
               sig == SIGINT ? "interrupted" : "terminated");
  server->Shutdown();
  return absl::OkStatus();
}

absl::Status Submit(RemoteFlags& f) {
  v1::ScanRequest req;
  req.set_request_id(f.request_id);
  req.set_label(f.label);
  for (const std::string& p : f.server_paths) req.add_server_paths(p);
  for (const std::string& p : f.seen_in_server_paths) req.add_seen_in_server_paths(p);
  // The spec as `tracemark scan` reads it (scan_spec_flags.h), sent as its proto.
  TRACEMARK_ASSIGN_OR_RETURN(const detect::ScanJobSpec spec, SpecFromFlags(f.spec));
  TRACEMARK_ASSIGN_OR_RETURN(*req.mutable_parameters(), service::ToScanParameters(spec));
  if (f.spec.inputs.empty() && f.server_paths.empty()) {
    return absl::InvalidArgumentError("name inputs to upload, or --server-path");
  }
  TRACEMARK_ASSIGN_OR_RETURN(auto client, Connect(f));
  const bool bar = isatty(STDERR_FILENO);
  TRACEMARK_ASSIGN_OR_RETURN(
      v1::Scan s,
      client->Submit(req, f.spec.inputs, f.spec.seen_in, [bar](uint64_t sent, uint64_t total) {
        if (bar)
          std::fprintf(stderr, "\ruploading: %llu of %llu bytes   ",
                       static_cast<unsigned long long>(sent),
                       static_cast<unsigned long long>(total));
      }));
  if (bar && !f.spec.inputs.empty()) std::fputc('\n', stderr);
  if (!f.watch) {
    Print(s, f.json);
    return absl::OkStatus();
  }
  return Follow(*client, s.id(), f.json, bar);
}

absl::Status List(RemoteFlags& f) {
  v1::ListScansRequest req;
  req.set_page_size(f.limit);
  req.set_page_token(f.page_token);
  req.set_all_owners(f.all);
  if (!f.state.empty()) {
    std::string upper = f.state;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    v1::ScanState st;
    if (!v1::ScanState_Parse(upper, &st) || st == v1::SCAN_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          "--state is queued, running, succeeded, failed or cancelled");
    }
    req.set_state(st);
  }
  TRACEMARK_ASSIGN_OR_RETURN(auto client, Connect(f));
  TRACEMARK_ASSIGN_OR_RETURN(v1::ListScansResponse r, client->List(req));
  if (f.json) {
    std::cout << Json(r) << "\n";
    return absl::OkStatus();
  }
  if (r.scans_size() == 0) {
    std::cout << (f.page_token.empty() ? "no scans" : "no more scans")
              << (f.state.empty() ? "" : absl::StrCat(" in state ", f.state))
              << (f.all ? "" : " of yours (--all: every client's)") << "\n";
  }
  for (const v1::Scan& s : r.scans()) {
    std::cout << s.id() << "  " << StateName(s.state()) << "  " << s.owner() << "  " << s.label()
              << "\n";
  }
  if (!r.next_page_token().empty()) {
    std::cout << "(more: --page-token " << r.next_page_token() << ")\n";
  }
  return absl::OkStatus();
}

absl::Status Report(RemoteFlags& f) {
  v1::ReportFormat format;
  std::string upper = f.format;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!v1::ReportFormat_Parse(upper, &format)) {
    return absl::InvalidArgumentError("--format is envelope, markdown or html");
  }
  TRACEMARK_ASSIGN_OR_RETURN(auto client, Connect(f));
  TRACEMARK_ASSIGN_OR_RETURN(v1::Report r, client->GetReport(f.id, format));
  if (f.out.empty()) {
    std::cout << r.content();
  } else {
    TRACEMARK_RETURN_IF_ERROR(WriteFileAtomically(f.out, r.content()));
    std::cerr << "report of " << r.scan_id() << " written to " << f.out << "; signed by key id "
              << r.signing_key_id() << " (public key " << r.signing_public_key() << ")\n";
  }
  return absl::OkStatus();
}

}  // namespace

struct ServiceCommands::Flags {
  ServeFlags serve;
  RemoteFlags remote;
  CLI::App *serve_cmd = nullptr, *submit = nullptr, *get = nullptr, *list = nullptr,
           *watch = nullptr, *cancel = nullptr, *report = nullptr, *keys = nullptr,
           *health = nullptr;
};

ServiceCommands::ServiceCommands(CLI::App* app) : flags_(new Flags) {
  ServeFlags& s = flags_->serve;
  CLI::App* serve = flags_->serve_cmd = app->add_subcommand(
      "serve", "Run the verifier service: scan jobs over gRPC, persisted, with signed reports");
  serve->add_option("--listen", s.server.listen, "host:port (port 0: any free port)")
      ->capture_default_str();
  serve->add_option("--port-file", s.port_file, "Write the bound port here");
  serve->add_option("--db", s.server.db, "Job store (SQLite)")->capture_default_str();
  serve->add_option("--files-dir", s.server.files_dir, "Uploaded inputs (default: DB.files)");
  serve->add_option("--data-dir", s.common.data_dir,
                    "Directory set-up filled (default: $TRACEMARK_DATA_DIR or ./data)");
  serve->add_option("--key", s.common.key_file, "Master secret file (32 bytes, mode 0600)");
  serve->add_option("--key-env", s.common.key_env,
                    "Environment variable holding the master secret");
  serve->add_option("--tokens", s.server.tokens_file, "Client tokens: TOKEN ROLE NAME lines")
      ->required();
  serve->add_option("--tls-cert", s.server.tls_cert, "Server certificate chain (PEM)");
  serve->add_option("--tls-key", s.server.tls_key, "Server private key (PEM)");
  serve->add_option("--tls-client-ca", s.server.tls_client_ca,
                    "Require client certificates signed by this CA (mutual TLS)");
  serve->add_flag("--insecure", s.server.insecure, "Plaintext (loopback addresses only)");
  serve->add_option("--signing-key", s.server.signing_key,
                    "Ed25519 seed file: sign every scan's evidence report");
  serve->add_option("--inputs-root", s.server.inputs_roots,
                    "Directory whose files scans may name as server-side inputs");
  serve->add_option("--epochs", s.epochs, "Key epochs scans may name")->capture_default_str();
  serve->add_option("--workers", s.server.workers, "Scans run at once")->capture_default_str();
  serve->add_option("--scan-threads", s.server.scan_threads, "Threads per scan (0: one per core)")
      ->capture_default_str();
  serve->add_option("--max-inflight", s.server.max_inflight, "Calls served at once")
      ->capture_default_str();
  serve
      ->add_option("--per-client-inflight", s.server.per_client_inflight,
                   "Calls served at once for one client")
      ->capture_default_str();
  serve->add_option("--max-queued", s.server.max_queued, "Scans waiting at most")
      ->capture_default_str();
  serve->add_option("--max-upload-mb", s.max_upload_mb, "Uploaded MiB per scan at most")
      ->capture_default_str();
  serve->add_option("--max-message-mb", s.max_message_mb, "MiB per gRPC message at most")
      ->capture_default_str();
  serve
      ->add_option("--max-attempts", s.server.max_attempts,
                   "Restarts a scan survives before it is failed")
      ->capture_default_str();
  serve->add_flag("--reflection", s.server.reflection, "Serve gRPC reflection");
  serve->add_flag("--quiet", s.server.quiet, "No line per scan event");

  RemoteFlags& r = flags_->remote;
  CLI::App* remote = app->add_subcommand("remote", "Use a verifier service (tracemark serve)");
  remote->require_subcommand(1);
  remote->add_option("--server", r.client.server, "host:port")->capture_default_str();
  remote->add_option("--token-env", r.token_env, "Variable holding the bearer token")
      ->capture_default_str();
  remote->add_option("--tls-ca", r.client.tls_ca, "CA of the server's certificate (PEM)");
  remote->add_option("--tls-cert", r.client.tls_cert, "Client certificate (mutual TLS)");
  remote->add_option("--tls-key", r.client.tls_key, "Client key (mutual TLS)");
  remote->add_option("--tls-server-name", r.client.tls_server_name,
                     "Name to check in the server's certificate");
  remote->add_flag("--insecure", r.client.insecure, "Plaintext");
  remote->add_option("--deadline", r.client.deadline_seconds, "Seconds per call")
      ->capture_default_str();
  remote->add_flag("--json", r.json, "Print JSON");
  CLI::App* submit = flags_->submit =
      remote->add_subcommand("submit", "Submit a scan: upload inputs or name server-side ones");
  submit->add_option("inputs", r.spec.inputs, "Files to upload and scan");
  submit->add_option("--server-path", r.server_paths, "Server-side input (under --inputs-root)");
  submit->add_option("--seen-in-server-path", r.seen_in_server_paths,
                     "Server-side suspected training data");
  AddScanSpecFlags(submit, &r.spec, "Suspected training data to upload");
  submit->add_option("--label", r.label, "Free text shown with the scan");
  submit->add_option("--request-id", r.request_id,
                     "Idempotency key: resubmitting with it returns the same scan");
  submit->add_flag("--watch", r.watch, "Wait for the scan and print its result");
  for (CLI::App** cmd : {&flags_->get, &flags_->watch, &flags_->cancel, &flags_->report}) {
    const char* name = cmd == &flags_->get      ? "get"
                       : cmd == &flags_->watch  ? "watch"
                       : cmd == &flags_->cancel ? "cancel"
                                                : "report";
    const char* what = cmd == &flags_->get      ? "Show a scan"
                       : cmd == &flags_->watch  ? "Follow a scan until it ends"
                       : cmd == &flags_->cancel ? "Cancel a scan"
                                                : "Fetch a succeeded scan's signed report";
    *cmd = remote->add_subcommand(name, what);
    (*cmd)->add_option("id", r.id, "Scan id")->required();
  }
  flags_->get->add_flag("--result", r.result, "Include the complete result JSON");
  flags_->report->add_option("--format", r.format, "envelope, markdown or html")
      ->capture_default_str();
  flags_->report->add_option("--out", r.out, "Output file (default: standard output)");
  CLI::App* list = flags_->list = remote->add_subcommand("list", "List scans, newest first");
  list->add_option("--state", r.state, "Only scans in this state");
  list->add_flag("--all", r.all, "Every client's scans, not only yours");
  list->add_option("--limit", r.limit, "At most this many (default 50)");
  list->add_option("--page-token", r.page_token, "Continue a listing");
  flags_->keys = remote->add_subcommand("keys", "The server's key ids and commitments");
  flags_->health = remote->add_subcommand("health", "The standard gRPC health check");
}

ServiceCommands::~ServiceCommands() { delete flags_; }

std::optional<absl::Status> ServiceCommands::Run() {
  Flags& f = *flags_;
  RemoteFlags& r = f.remote;
  if (*f.serve_cmd) return Serve(f.serve);
  if (*f.submit) return Submit(r);
  if (*f.list) return List(r);
  if (*f.report) return Report(r);
  if (*f.health) {
    r.token_env = r.token_env.empty() ? "TRACEMARK_TOKEN" : r.token_env;
    absl::StatusOr<std::unique_ptr<service::VerifierClient>> c =
        service::VerifierClient::Connect(r.client);
    if (!c.ok()) return c.status();
    absl::StatusOr<bool> ok = (*c)->Healthy();
    if (!ok.ok()) return ok.status();
    std::cout << (*ok ? "SERVING" : "NOT_SERVING") << "\n";
    return *ok ? absl::OkStatus() : absl::UnavailableError("the server is not serving");
  }
  if (!(*f.get || *f.watch || *f.cancel || *f.keys)) return std::nullopt;
  absl::StatusOr<std::unique_ptr<service::VerifierClient>> c = Connect(r);
  if (!c.ok()) return c.status();
  if (*f.keys) {
    absl::StatusOr<v1::Keys> k = (*c)->GetKeys();
    if (!k.ok()) return k.status();
    Print(*k, r.json);
    return absl::OkStatus();
  }
  if (*f.watch) return Follow(**c, r.id, r.json, /*in_place=*/false);
  absl::StatusOr<v1::Scan> s = *f.get ? (*c)->Get(r.id, r.result) : (*c)->Cancel(r.id);
  if (!s.ok()) return s.status();
  if (*f.get && r.result && !r.json) {
    std::cout << s->result_json() << "\n";
  } else {
    Print(*s, r.json);
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cli
