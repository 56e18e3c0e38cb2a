// The verifier service in-process over real gRPC on loopback: TLS and mutual TLS, tokens and
// roles, submit / watch / report / list / cancel, idempotent resubmission, limits, deadlines,
// server-side paths, and a scan interrupted by a shutdown that runs again at the next start with
// an identical result; faults: the job store's disk full or failing, clients vanishing mid-upload
// and mid-watch. (kill -9 is in tests/service/kill_test.sh; another language's client in
// python_client_test.)
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fault_vfs.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/data_required.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/report.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/service/client.h"
#include "tracemark/service/server.h"
#include "tracemark/v1/verifier.grpc.pb.h"

namespace tracemark::service {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSubmit[] = "submit-token-0123456789";
constexpr char kRead[] = "read-token-0123456789";
constexpr char kAdmin[] = "admin-token-0123456789";
constexpr char kOther[] = "other-submit-token-0123";

watermark::Key Master() { return *watermark::Key::FromBytes(std::vector<uint8_t>(32, 9)); }

class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::FaultVfs::Install();  // a pure forwarder until a test sets a fault
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("tracemark_service_test_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_ / "inputs");
    std::ofstream(*dir_ / "tokens") << kSubmit << " submit alice\n"
                                    << kRead << " read bob\n"
                                    << kAdmin << " admin root\n"
                                    << kOther << " submit carol\n";
    {
      std::ofstream key(*dir_ / "sign.key", std::ios::binary);
      key << std::string(32, '\x05');
    }
    chmod((*dir_ / "sign.key").c_str(), 0600);
    // Certificates: a CA, a server certificate for 127.0.0.1, a client certificate.
    const std::string d = dir_->string();
    const std::string cmd =
        "(cd " + d +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=test-ca"
        " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=127.0.0.1"
        " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile san.ext"
        " && openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
        "-subj /CN=client"
        " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2) > /dev/null 2>&1";
    certs_ok_ = std::system(cmd.c_str()) == 0;
    // A small dataset (a few documents) and a long one (a few seconds to scan on one thread).
    auto files = reference::CorpusFiles(TRACEMARK_DATA_DIR);
    if (!files.ok()) return;
    std::ofstream small(*dir_ / "small.jsonl"), big(*dir_ / "inputs" / "big.jsonl");
    for (size_t i = 0; i < files->size(); ++i) {
      std::ifstream in((*files)[i]);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      for (size_t off = 0; off + 2000 <= text.size(); off += 2000) {
        const json rec = {{"prompt", "Say something."}, {"completion", text.substr(off, 2000)}};
        big << rec.dump() << "\n";
        if (i < 2 && off < 6000) small << rec.dump() << "\n";
      }
    }
    data_ok_ = true;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    TRACEMARK_REQUIRE_DATA(data_ok_, "the tokenizer data or the corpus");
    db_ = (*dir_ /
           (std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".db"))
              .string();
  }

  ServerOptions Options() const {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.db = db_;
    o.tokens_file = (*dir_ / "tokens").string();
    o.insecure = true;
    o.data_dir = TRACEMARK_DATA_DIR;
    o.signing_key = (*dir_ / "sign.key").string();
    o.scan_threads = 1;
    o.quiet = true;
    return o;
  }

  static std::unique_ptr<VerifierClient> Client(int port, const std::string& token,
                                                ClientOptions o = {}) {
    o.server = "127.0.0.1:" + std::to_string(port);
    o.token = token;
    if (o.tls_ca.empty()) o.insecure = true;
    o.deadline_seconds = 30;
    auto c = VerifierClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  static v1::ScanRequest Request(const std::string& request_id = "") {
    v1::ScanRequest r;
    r.set_request_id(request_id);
    r.mutable_parameters()->set_account_limit(100);
    return r;
  }

  // Waits for the scan to be final (Watch), returning its last state.
  static v1::Scan WaitFinal(VerifierClient& c, const std::string& id) {
    v1::Scan last;
    absl::Status s = c.Watch(
        id, [&](const v1::Scan& now) { last = now; }, 120);
    EXPECT_TRUE(s.ok()) << s;
    return last;
  }

  static v1::Scan WaitRunning(VerifierClient& c, const std::string& id) {
    for (int i = 0; i < 400; ++i) {
      auto s = c.Get(id);
      if (s.ok() && s->state() == v1::RUNNING && s->progress().documents() > 0) return *s;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "scan " << id << " never ran";
    return {};
  }

  static std::string Small() { return (*dir_ / "small.jsonl").string(); }
  static std::string Big() { return (*dir_ / "inputs" / "big.jsonl").string(); }

  static inline fs::path* dir_ = nullptr;
  static inline bool data_ok_ = false, certs_ok_ = false;
  std::string db_;
};

TEST_F(ServiceTest, SubmitWatchReportListAndIdempotentResubmission) {
  auto server = VerifierServer::Start(Options(), Master());
  ASSERT_TRUE(server.ok()) << server.status();
  auto alice = Client((*server)->port(), kSubmit);
  auto healthy = alice->Healthy();
  ASSERT_TRUE(healthy.ok()) << healthy.status();
  EXPECT_TRUE(*healthy);
  auto first = alice->Submit(Request("case-1"), {Small()}, {});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id().rfind("scan-", 0), 0u);
  EXPECT_EQ(first->owner(), "alice");
  ASSERT_EQ(first->inputs_size(), 1);
  EXPECT_EQ(first->inputs(0).name(), "small.jsonl");
  EXPECT_EQ(first->inputs(0).sha256().size(), 64u);
  const v1::Scan done = WaitFinal(*alice, first->id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_GT(done.summary().documents(), 0u);
  EXPECT_TRUE(done.has_report());

  // The same request id again: the same scan, not a second one.
  auto again = alice->Submit(Request("case-1"), {Small()}, {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), first->id());
  auto listed = alice->List({});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->scans_size(), 1);

  // The report verifies with the server's public key and holds the result the scan holds.
  auto report = alice->GetReport(first->id(), v1::ENVELOPE);
  ASSERT_TRUE(report.ok()) << report.status();
  auto opened = evidence::OpenReport(report->content(), report->signing_public_key());
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto full = alice->Get(first->id(), true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(opened->report["result"], json::parse(full->result_json()));
  EXPECT_EQ(opened->report["keys"]["master_key_id"], Master().Id());
  auto md = alice->GetReport(first->id(), v1::MARKDOWN);
  ASSERT_TRUE(md.ok());
  EXPECT_NE(md->content().find("Signature: valid"), std::string::npos);

  // Keys: ids and commitments only.
  auto keys = alice->GetKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->master_key_id(), Master().Id());
  EXPECT_EQ(keys->master_key_commitment(), Master().Commitment());
  EXPECT_EQ(keys->epochs_size(), 1);
}

TEST_F(ServiceTest, TokensAndRolesAreEnforced) {
  auto server = VerifierServer::Start(Options(), Master());
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_EQ(Client(port, "")->GetKeys().status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Client(port, "not-a-token-at-all-xx")->GetKeys().status().code(),
            absl::StatusCode::kUnauthenticated);
  auto bob = Client(port, kRead);
  EXPECT_TRUE(bob->GetKeys().ok());
  EXPECT_EQ(bob->Submit(Request(), {Small()}, {}).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto alice = Client(port, kSubmit);
  auto s = alice->Submit(Request(), {Small()}, {});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(bob->Get(s->id()).ok());  // readers see every scan
  EXPECT_EQ(bob->Cancel(s->id()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Client(port, kOther)->Cancel(s->id()).status().code(),
            absl::StatusCode::kPermissionDenied);  // another submitter's scan
  EXPECT_TRUE(Client(port, kAdmin)->Cancel(s->id()).ok());
  v1::ListScansRequest all;
  all.set_all_owners(true);
  EXPECT_EQ(bob->List({})->scans_size(), 0);
  EXPECT_EQ(bob->List(all)->scans_size(), 1);
  EXPECT_EQ(bob->Get("scan-0000000000000000").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, TlsRejectsPlaintextAndMutualTlsRequiresAClientCertificate) {
  if (!certs_ok_) GTEST_SKIP() << "openssl could not make test certificates";
  ServerOptions o = Options();
  o.insecure = false;
  o.tls_cert = (*dir_ / "server.pem").string();
  o.tls_key = (*dir_ / "server.key").string();
  auto server = VerifierServer::Start(o, Master());
  ASSERT_TRUE(server.ok()) << server.status();
  ClientOptions tls;
  tls.tls_ca = (*dir_ / "ca.pem").string();
  EXPECT_TRUE(Client((*server)->port(), kRead, tls)->GetKeys().ok());
  ClientOptions plain;
  plain.deadline_seconds = 3;
  EXPECT_EQ(Client((*server)->port(), kRead, plain)->GetKeys().status().code(),
            absl::StatusCode::kUnavailable);
  (*server)->Shutdown();

  o.tls_client_ca = (*dir_ / "ca.pem").string();
  o.db = db_ + "2";
  auto mutual = VerifierServer::Start(o, Master());
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_EQ(Client((*mutual)->port(), kRead, tls)->GetKeys().status().code(),
            absl::StatusCode::kUnavailable);
  ClientOptions with_cert = tls;
  with_cert.tls_cert = (*dir_ / "client.pem").string();
  with_cert.tls_key = (*dir_ / "client.key").string();
  auto keys = Client((*mutual)->port(), kRead, with_cert)->GetKeys();
  EXPECT_TRUE(keys.ok()) << keys.status();
}

TEST_F(ServiceTest, BadOptionsAreRefusedAtStart) {
  ServerOptions o = Options();
  o.insecure = false;
  EXPECT_EQ(VerifierServer::Start(o, Master()).status().code(),
            absl::StatusCode::kInvalidArgument);  // neither TLS nor --insecure
  o = Options();
  o.listen = "0.0.0.0:0";
  EXPECT_EQ(VerifierServer::Start(o, Master()).status().code(),
            absl::StatusCode::kInvalidArgument);  // plaintext off loopback
  o = Options();
  o.tokens_file = (*dir_ / "missing").string();
  EXPECT_EQ(VerifierServer::Start(o, Master()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, LimitsFailFastWithResourceExhausted) {
  ServerOptions o = Options();
  o.max_upload_bytes = 1000;
  o.per_client_inflight = 1;
  auto server = VerifierServer::Start(o, Master());
  ASSERT_TRUE(server.ok()) << server.status();
  auto alice = Client((*server)->port(), kSubmit);
  EXPECT_EQ(alice->Submit(Request(), {Small()}, {}).status().code(),
            absl::StatusCode::kResourceExhausted);  // larger than 1,000 bytes
  // With one call allowed per client, a WatchScan held open on a long scan makes alice's next
  // call fail at once, while other clients are served.
  (*server)->Shutdown();
  o = Options();
  o.per_client_inflight = 1;
  o.inputs_roots = {(*dir_ / "inputs").string()};
  o.db = db_ + "2";
  auto second = VerifierServer::Start(o, Master());
  ASSERT_TRUE(second.ok()) << second.status();
  auto a2 = Client((*second)->port(), kSubmit);
  v1::ScanRequest req = Request();
  req.add_server_paths(Big());
  auto long_scan = a2->Submit(req, {}, {});
  ASSERT_TRUE(long_scan.ok()) << long_scan.status();
  std::atomic<bool> watching{false};
  std::thread watcher([&] {
    auto w = Client((*second)->port(), kSubmit);
    (void)w->Watch(
        long_scan->id(), [&](const v1::Scan&) { watching = true; }, 60);
  });
  while (!watching) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(a2->Get(long_scan->id()).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_TRUE(Client((*second)->port(), kRead)->Get(long_scan->id()).ok());  // another client
  EXPECT_TRUE(Client((*second)->port(), kAdmin)->Cancel(long_scan->id()).ok());
  watcher.join();
}

TEST_F(ServiceTest, CancelDeadlineAndServerPaths) {
  ServerOptions o = Options();
  o.inputs_roots = {(*dir_ / "inputs").string()};
  auto server = VerifierServer::Start(o, Master());
  ASSERT_TRUE(server.ok()) << server.status();
  auto alice = Client((*server)->port(), kSubmit);
  v1::ScanRequest outside = Request();
  outside.add_server_paths(Small());  // not under the inputs root
  EXPECT_EQ(alice->Submit(outside, {}, {}).status().code(), absl::StatusCode::kPermissionDenied);
  v1::ScanRequest req = Request();
  req.add_server_paths(Big());
  auto s = alice->Submit(req, {}, {});
  ASSERT_TRUE(s.ok()) << s.status();
  WaitRunning(*alice, s->id());
  // A watch with a short deadline ends with DEADLINE_EXCEEDED while the scan goes on.
  EXPECT_EQ(alice
                ->Watch(
                    s->id(), [](const v1::Scan&) {}, 0.3)
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(alice->Cancel(s->id()).ok());
  const v1::Scan end = WaitFinal(*alice, s->id());
  EXPECT_EQ(end.state(), v1::CANCELLED);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(alice->GetReport(s->id(), v1::ENVELOPE).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServiceTest, AnInterruptedScanRunsAgainAtTheNextStartWithAnIdenticalResult) {
  ServerOptions o = Options();
  o.inputs_roots = {(*dir_ / "inputs").string()};
  std::string id;
  {
    auto server = VerifierServer::Start(o, Master());
    ASSERT_TRUE(server.ok()) << server.status();
    auto alice = Client((*server)->port(), kSubmit);
    v1::ScanRequest req = Request("restart-1");
    req.add_server_paths(Big());
    auto s = alice->Submit(req, {}, {});
    ASSERT_TRUE(s.ok()) << s.status();
    id = s->id();
    WaitRunning(*alice, id);
    (*server)->Shutdown();  // mid-scan: the scan stays "running" in the store
  }
  auto server = VerifierServer::Start(o, Master());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->requeued(), 1);
  auto alice = Client((*server)->port(), kSubmit);
  const v1::Scan done = WaitFinal(*alice, id);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.attempts(), 2u);
  auto listed = alice->List({});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->scans_size(), 1);  // none lost, none duplicated

  detect::ScanJobSpec spec;
  spec.inputs = {fs::canonical(Big()).string()};
  spec.account_limit = 100;
  spec.data_dir = TRACEMARK_DATA_DIR;
  auto direct = detect::RunScanJob(spec, Master());
  ASSERT_TRUE(direct.ok()) << direct.status();
  auto full = alice->Get(id, true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(detect::CanonicalResult(json::parse(full->result_json()), spec.inputs),
            detect::CanonicalResult(direct->result, spec.inputs));
}

// ---- faults ----

// Upload folders (u-*) in the server's files directory.
int StagedUploads(const std::string& db) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(db + ".files", ec)) {
    n += e.path().filename().string().rfind("u-", 0) == 0;
  }
  return n;
}

// The job store's disk is full: SubmitScan fails with UNAVAILABLE naming the cause, its upload is
// removed, the scans already there are intact, and once there is room submissions work again.
TEST_F(ServiceTest, ADiskFullRefusesSubmissionsAndLosesNothing) {
  auto server = VerifierServer::Start(Options(), Master());
  ASSERT_TRUE(server.ok()) << server.status();
  auto alice = Client((*server)->port(), kSubmit);
  auto first = alice->Submit(Request(), {Small()}, {});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(WaitFinal(*alice, first->id()).state(), v1::SUCCEEDED);
  testing::FaultVfs::Set(testing::FaultVfs::kDiskFull);
  auto refused = alice->Submit(Request("full-1"), {Small()}, {});
  testing::FaultVfs::Set(testing::FaultVfs::kNone);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find("full"), std::string::npos) << refused.status();
  EXPECT_EQ(StagedUploads(db_), 1);  // the first scan's only
  auto listed = alice->List({});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->scans_size(), 1);
  EXPECT_EQ(listed->scans(0).state(), v1::SUCCEEDED);
  auto retried = alice->Submit(Request("full-1"), {Small()}, {});  // the client's retry
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(WaitFinal(*alice, retried->id()).state(), v1::SUCCEEDED);
}

// The disk fills while a scan runs: its result cannot be recorded. The worker keeps it and tries
// again until the store takes it, so the scan ends succeeded with the full result, not lost and
// not left "running" for ever.
TEST_F(ServiceTest, AResultIsKeptUntilTheStoreCanTakeIt) {
  ServerOptions o = Options();
  o.inputs_roots = {(*dir_ / "inputs").string()};
  auto server = VerifierServer::Start(o, Master());
  ASSERT_TRUE(server.ok()) << server.status();
  auto alice = Client((*server)->port(), kSubmit);
  v1::ScanRequest req = Request();
  req.add_server_paths(Big());
  auto s = alice->Submit(req, {}, {});
  ASSERT_TRUE(s.ok()) << s.status();
  WaitRunning(*alice, s->id());
  const uint64_t before = testing::FaultVfs::Injected();
  testing::FaultVfs::Set(testing::FaultVfs::kDiskFull);
  // Several refused attempts to record the end (the scan has finished computing by then).
  for (int i = 0; i < 6000 && testing::FaultVfs::Injected() < before + 4;
       ++i) {  // 300 s: sanitizers
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(testing::FaultVfs::Injected(), before + 4);
  auto during = alice->Get(s->id());  // reads still work, and the scan is not given up
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->state(), v1::RUNNING);
  testing::FaultVfs::Set(testing::FaultVfs::kNone);
  const v1::Scan done = WaitFinal(*alice, s->id());
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error();
  EXPECT_EQ(done.attempts(), 1u);
  EXPECT_TRUE(done.has_report());
  auto full = alice->Get(s->id(), true);
  ASSERT_TRUE(full.ok());
  EXPECT_GT(json::parse(full->result_json())["totals"]["documents"].get<uint64_t>(), 0u);
}

// A raw stub, for calls that the client library would finish properly.
std::unique_ptr<v1::Verifier::Stub> RawStub(int port) {
  return v1::Verifier::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

// A client that vanishes halfway through an upload, or while watching: no scan is created, the
// partial upload is removed, the client's call slot is freed, and the server serves on.
TEST_F(ServiceTest, AClientVanishingMidStreamLeavesNothingBehind) {
  ServerOptions o = Options();
  o.per_client_inflight = 1;
  o.inputs_roots = {(*dir_ / "inputs").string()};
  auto server = VerifierServer::Start(o, Master());
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = RawStub((*server)->port());
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kSubmit);
    v1::Scan reply;
    auto writer = stub->SubmitScan(&ctx, &reply);
    v1::SubmitScanRequest head;
    *head.mutable_request() = Request();
    v1::UploadedFile* u = head.mutable_request()->add_uploads();
    u->set_name("half.jsonl");
    u->set_size(100000);
    ASSERT_TRUE(writer->Write(head));
    v1::SubmitScanRequest chunk;
    chunk.mutable_chunk()->set_file(0);
    chunk.mutable_chunk()->set_data(std::string(50000, 'x'));
    ASSERT_TRUE(writer->Write(chunk));
    // Wait for the server to have the bytes on disk, then vanish.
    for (int i = 0; i < 200 && StagedUploads(db_) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(StagedUploads(db_), 1);
    ctx.TryCancel();
    EXPECT_FALSE(writer->Finish().ok());
  }
  auto alice = Client((*server)->port(), kSubmit);
  bool cleaned = false;
  for (int i = 0; i < 200 && !cleaned; ++i) {
    cleaned = StagedUploads(db_) == 0;
    if (!cleaned) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(cleaned);
  auto none = alice->List({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->scans_size(), 0);

  // A watcher that vanishes: alice's one call slot comes back.
  v1::ScanRequest req = Request();
  req.add_server_paths(Big());
  auto s = alice->Submit(req, {}, {});
  ASSERT_TRUE(s.ok()) << s.status();
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kSubmit);
    v1::WatchScanRequest w;
    w.set_id(s->id());
    auto reader = stub->WatchScan(&ctx, w);
    v1::Scan update;
    ASSERT_TRUE(reader->Read(&update));
    ctx.TryCancel();
    (void)reader->Finish();
  }
  absl::StatusOr<v1::Scan> after = absl::UnavailableError("not tried");
  for (int i = 0; i < 100; ++i) {  // the server notices within its watch poll
    after = alice->Get(s->id());
    if (after.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(alice->Cancel(s->id()).ok());
}

}  // namespace
}  // namespace tracemark::service
