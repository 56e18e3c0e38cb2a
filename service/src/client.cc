#include "tracemark/service/client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convert.h"
#include "grpc_logs.h"
#include "tracemark/base/read_file.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/v1/verifier.grpc.pb.h"
#include "tracemark/watermark/digest.h"

namespace tracemark::service {
namespace {

namespace fs = std::filesystem;

}  // namespace

struct VerifierClient::Impl {
  ClientOptions opt;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Verifier::Stub> stub;

  void Prepare(grpc::ClientContext* ctx, double seconds) const {
    if (!opt.token.empty()) ctx->AddMetadata("authorization", "Bearer " + opt.token);
    if (seconds > 0) {
      ctx->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    }
  }
};

absl::StatusOr<std::unique_ptr<VerifierClient>> VerifierClient::Connect(
    const ClientOptions& options) {
  QuietGrpcLogs();
  if (options.server.empty()) return absl::InvalidArgumentError("no server address");
  const bool tls = !options.tls_ca.empty() || !options.tls_cert.empty();
  if (tls == options.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "give --tls-ca (TLS; --tls-cert and --tls-key too for mutual TLS) or --insecure "
        "(plaintext): ",
        tls ? "not both" : "one of them"));
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("a client certificate needs its key, and a key its cert");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca.empty()) {
      TRACEMARK_ASSIGN_OR_RETURN(ssl.pem_root_certs, base::ReadFile(options.tls_ca, "the CA"));
    }
    if (!options.tls_cert.empty()) {
      TRACEMARK_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                                 base::ReadFile(options.tls_cert, "the client certificate"));
      TRACEMARK_ASSIGN_OR_RETURN(ssl.pem_private_key,
                                 base::ReadFile(options.tls_key, "the client key"));
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->channel = grpc::CreateCustomChannel(options.server, creds, args);
  impl->stub = v1::Verifier::NewStub(impl->channel);
  return std::unique_ptr<VerifierClient>(new VerifierClient(std::move(impl)));
}

VerifierClient::VerifierClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VerifierClient::~VerifierClient() = default;

absl::StatusOr<v1::Scan> VerifierClient::Submit(
    v1::ScanRequest request, const std::vector<std::string>& uploads,
    const std::vector<std::string>& seen_in_uploads,
    const std::function<void(uint64_t, uint64_t)>& progress) {
  request.clear_uploads();
  std::vector<std::string> files;
  uint64_t total = 0;
  for (const auto* list : {&uploads, &seen_in_uploads}) {
    for (const std::string& path : *list) {
      v1::UploadedFile* u = request.add_uploads();
      uint64_t size = 0;
      TRACEMARK_ASSIGN_OR_RETURN(std::string sha, watermark::Sha256HexOfFile(path, &size));
      u->set_name(fs::path(path).filename().string());
      u->set_size(size);
      u->set_sha256(sha);
      u->set_seen_in(list == &seen_in_uploads);
      files.push_back(path);
      total += size;
    }
  }
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds *
                           (1.0 + static_cast<double>(total) / static_cast<double>(64 << 20)));
  v1::Scan reply;
  std::unique_ptr<grpc::ClientWriter<v1::SubmitScanRequest>> w =
      impl_->stub->SubmitScan(&ctx, &reply);
  v1::SubmitScanRequest msg;
  *msg.mutable_request() = std::move(request);
  bool open = w->Write(msg);
  uint64_t sent = 0;
  std::string buf(impl_->opt.chunk_bytes, '\0');
  for (size_t i = 0; open && i < files.size(); ++i) {
    std::ifstream in(files[i], std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", files[i], "'"));
    while (open && in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const std::streamsize n = in.gcount();
      if (n <= 0) break;
      v1::SubmitScanRequest chunk;
      chunk.mutable_chunk()->set_file(static_cast<uint32_t>(i));
      chunk.mutable_chunk()->set_data(buf.data(), static_cast<size_t>(n));
      open = w->Write(chunk);
      sent += static_cast<uint64_t>(n);
      if (progress) progress(sent, total);
    }
    if (in.bad()) return absl::DataLossError(absl::StrCat("error reading '", files[i], "'"));
  }
  if (open) w->WritesDone();
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(w->Finish()));
  return reply;
}

absl::StatusOr<v1::Scan> VerifierClient::Get(const std::string& id, bool with_result) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds);
  v1::GetScanRequest req;
  req.set_id(id);
  req.set_include_result_json(with_result);
  v1::Scan reply;
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(impl_->stub->GetScan(&ctx, req, &reply)));
  return reply;
}

absl::StatusOr<v1::ListScansResponse> VerifierClient::List(const v1::ListScansRequest& request) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds);
  v1::ListScansResponse reply;
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(impl_->stub->ListScans(&ctx, request, &reply)));
  return reply;
}

absl::Status VerifierClient::Watch(const std::string& id,
                                   const std::function<void(const v1::Scan&)>& on_update,
                                   double seconds) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, seconds);
  v1::WatchScanRequest req;
  req.set_id(id);
  std::unique_ptr<grpc::ClientReader<v1::Scan>> r = impl_->stub->WatchScan(&ctx, req);
  v1::Scan s;
  while (r->Read(&s)) on_update(s);
  return FromGrpc(r->Finish());
}

absl::StatusOr<v1::Scan> VerifierClient::Cancel(const std::string& id) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds);
  v1::CancelScanRequest req;
  req.set_id(id);
  v1::Scan reply;
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(impl_->stub->CancelScan(&ctx, req, &reply)));
  return reply;
}

absl::StatusOr<v1::Report> VerifierClient::GetReport(const std::string& id,
                                                     v1::ReportFormat format) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds);
  v1::GetReportRequest req;
  req.set_id(id);
  req.set_format(format);
  v1::Report reply;
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(impl_->stub->GetReport(&ctx, req, &reply)));
  return reply;
}

absl::StatusOr<v1::Keys> VerifierClient::GetKeys() {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds);
  v1::Keys reply;
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(impl_->stub->GetKeys(&ctx, v1::GetKeysRequest(), &reply)));
  return reply;
}

absl::StatusOr<bool> VerifierClient::Healthy() {
  // grpc.health.v1 messages by hand (Debian ships no C++ stubs for them): an empty
  // HealthCheckRequest asks about the whole server; the reply's field 1 is the status, 1 SERVING.
  grpc::GenericStub generic(impl_->channel);
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->opt.deadline_seconds);
  grpc::CompletionQueue cq;
  grpc::ByteBuffer request, response;
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  auto call = generic.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || !ok) return absl::UnavailableError("health check did not complete");
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  TRACEMARK_RETURN_IF_ERROR(FromGrpc(status));
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("unreadable health reply");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes.size() >= 2 && bytes[0] == 0x08 && bytes[1] == 0x01;
}

}  // namespace tracemark::service
