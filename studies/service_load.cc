// A load generator for the verifier service (docs/service.md): GetScan or small SubmitScan calls
// on loopback, closed loop (a fixed number of calls in flight) or open loop (a fixed arrival rate,
// whatever the server's speed, as for the overload test), for a fixed time. Prints one JSON object:
// calls sent and completed, by status code, the achieved rate, and latency percentiles of the
// successful and of the rejected calls.
//
//   service_load --server 127.0.0.1:50051 --mode get --scan-id scan-... --concurrency 16 --seconds
//   120 service_load --server ... --mode submit --upload one.jsonl --concurrency 4 --seconds 120
//   service_load --server ... --mode get --scan-id ... --rate 20000 --seconds 30   # open loop
//
// The bearer token comes from $TRACEMARK_TOKEN; plaintext only (loopback).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"
#include "tracemark/base/read_file.h"
#include "tracemark/v1/verifier.grpc.pb.h"
#include "tracemark/watermark/digest.h"

namespace {

namespace v1 = tracemark::v1;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string server = "127.0.0.1:50051";
  std::string mode = "get";
  std::string scan_id, upload;
  int concurrency = 8;
  double rate = 0;  // calls per second; 0: closed loop
  double seconds = 10;
  int channels = 4;
};

struct Stats {
  std::mutex mu;
  std::map<int, uint64_t> by_code;
  std::vector<double> ok_ms, rejected_ms;
  void Add(grpc::StatusCode code, double ms) {
    std::lock_guard<std::mutex> lock(mu);
    ++by_code[code];
    (code == grpc::StatusCode::OK ? ok_ms : rejected_ms).push_back(ms);
  }
};

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// One asynchronous call of either kind; deletes itself when done.
struct Call {
  grpc::ClientContext ctx;
  grpc::Status status;
  Clock::time_point start;
  v1::Scan reply;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::Scan>> get;
  std::unique_ptr<grpc::ClientAsyncWriter<v1::SubmitScanRequest>> submit;
  int step = 0;  // submit: 0 started, 1 request written, 2 chunk written, 3 writes done, 4 finished
};

// The calls of one run over --channels connections and one completion queue: closed loop (a new
// call as each one completes) or open loop (an issuing thread at --rate), until --seconds.
class LoadGenerator {
 public:
  // `upload` is the file submitted in mode submit (empty in mode get).
  LoadGenerator(const Flags& f, const std::string& token, std::string upload)
      : f_(f), bearer_("Bearer " + token), upload_(std::move(upload)) {
    if (f_.mode == "submit") upload_sha_ = tracemark::watermark::Sha256Hex(upload_);
    for (int i = 0; i < f_.channels; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);  // distinct connections
      stubs_.push_back(v1::Verifier::NewStub(
          grpc::CreateCustomChannel(f_.server, grpc::InsecureChannelCredentials(), args)));
    }
  }

  // Runs for --seconds and until every call in flight completed; returns the seconds elapsed.
  double Run();
  Stats& stats() { return stats_; }

 private:
  // Starts call number n on connection n mod channels.
  void Begin(uint64_t n);
  // Advances a submit call by one step; true when the call is finished.
  bool Advance(Call* c, bool ok);
  // Open loop: one call every 1/rate seconds, however many are in flight.
  void IssueAtRate();
  bool Done() const { return Clock::now() >= end_ && !issuing_ && in_flight_ == 0; }

  const Flags& f_;
  const std::string bearer_;
  const std::string upload_;
  std::string upload_sha_;
  std::vector<std::unique_ptr<v1::Verifier::Stub>> stubs_;
  grpc::CompletionQueue cq_;
  Stats stats_;
  std::atomic<uint64_t> issued_{0}, in_flight_{0};
  std::atomic<bool> issuing_{false};
  Clock::time_point start_, end_;
};

void LoadGenerator::Begin(uint64_t n) {
  auto* c = new Call;
  c->ctx.AddMetadata("authorization", bearer_);
  c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  c->start = Clock::now();
  v1::Verifier::Stub& stub = *stubs_[n % stubs_.size()];
  ++in_flight_;
  ++issued_;
  if (f_.mode == "get") {
    v1::GetScanRequest req;
    req.set_id(f_.scan_id);
    c->get = stub.AsyncGetScan(&c->ctx, req, &cq_);
    c->get->Finish(&c->reply, &c->status, c);
  } else {
    // Prepared, then started: the start's event may reach the completion thread at once.
    c->submit = stub.PrepareAsyncSubmitScan(&c->ctx, &c->reply, &cq_);
    c->submit->StartCall(c);
  }
}

bool LoadGenerator::Advance(Call* c, bool ok) {
  if (c->get != nullptr) return true;
  if (!ok && c->step < 4) {  // the stream broke: collect the status
    c->step = 4;
    c->submit->Finish(&c->status, c);
    return false;
  }
  v1::SubmitScanRequest m;
  switch (c->step++) {
    case 0: {
      v1::ScanRequest* r = m.mutable_request();
      r->mutable_parameters()->set_account_limit(100);
      r->mutable_parameters()->set_no_canary(true);
      v1::UploadedFile* u = r->add_uploads();
      u->set_name("one.jsonl");
      u->set_size(upload_.size());
      u->set_sha256(upload_sha_);
      c->submit->Write(m, c);
      return false;
    }
    case 1:
      m.mutable_chunk()->set_file(0);
      m.mutable_chunk()->set_data(upload_);
      c->submit->Write(m, c);
      return false;
    case 2:
      c->submit->WritesDone(c);
      return false;
    case 3:
      c->submit->Finish(&c->status, c);
      return false;
    default:
      return true;
  }
}

void LoadGenerator::IssueAtRate() {
  const double period_us = 1e6 / f_.rate;
  for (uint64_t n = 0;; ++n) {
    const auto due = start_ + std::chrono::microseconds(
                                  static_cast<int64_t>(static_cast<double>(n) * period_us));
    if (due >= end_) break;
    std::this_thread::sleep_until(due);
    Begin(n);
  }
  issuing_ = false;
}

double LoadGenerator::Run() {
  start_ = Clock::now();
  end_ = start_ + std::chrono::microseconds(static_cast<int64_t>(f_.seconds * 1e6));
  std::thread issuer;
  issuing_ = f_.rate > 0;
  if (f_.rate > 0) {
    issuer = std::thread([this] { IssueAtRate(); });
  } else {
    for (int i = 0; i < f_.concurrency; ++i) Begin(static_cast<uint64_t>(i));
  }
  void* tag = nullptr;
  bool ok = false;
  for (;;) {
    const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(100);
    if (cq_.AsyncNext(&tag, &ok, deadline) != grpc::CompletionQueue::GOT_EVENT) {
      if (Done()) break;
      continue;
    }
    auto* c = static_cast<Call*>(tag);
    if (!Advance(c, ok)) continue;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - c->start).count();
    stats_.Add(c->status.error_code(), ms);
    delete c;
    --in_flight_;
    if (f_.rate == 0 && Clock::now() < end_) Begin(issued_.load());
    if (Done()) break;
  }
  if (issuer.joinable()) issuer.join();
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

// The run's JSON object: calls by status code, the achieved rate, latency percentiles.
nlohmann::json Report(const Flags& f, Stats& stats, double elapsed) {
  nlohmann::json out;
  out["mode"] = f.mode;
  out["loop"] = f.rate > 0 ? "open" : "closed";
  out["offered_rate"] = f.rate;
  out["concurrency"] = f.rate > 0 ? 0 : f.concurrency;
  out["seconds"] = elapsed;
  uint64_t total = 0;
  for (const auto& [code, n] : stats.by_code) {
    out["by_code"][std::to_string(code)] = n;
    total += n;
  }
  out["completed"] = total;
  out["ok"] = stats.ok_ms.size();
  out["ok_rate"] = static_cast<double>(stats.ok_ms.size()) / f.seconds;
  out["resource_exhausted"] = stats.by_code[grpc::StatusCode::RESOURCE_EXHAUSTED];
  out["ok_latency_ms"] = {{"p50", Percentile(stats.ok_ms, 0.5)},
                          {"p99", Percentile(stats.ok_ms, 0.99)},
                          {"max", Percentile(stats.ok_ms, 1.0)}};
  out["rejected_latency_ms"] = {{"p50", Percentile(stats.rejected_ms, 0.5)},
                                {"p99", Percentile(stats.rejected_ms, 0.99)},
                                {"max", Percentile(stats.rejected_ms, 1.0)}};
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"Load generator for the tracemark verifier service"};
  app.add_option("--server", f.server, "host:port (plaintext)")->capture_default_str();
  app.add_option("--mode", f.mode, "get or submit")->capture_default_str();
  app.add_option("--scan-id", f.scan_id, "Scan to GetScan (mode get)");
  app.add_option("--upload", f.upload, "Small file to submit (mode submit)");
  app.add_option("--concurrency", f.concurrency, "Calls in flight (closed loop)")
      ->capture_default_str();
  app.add_option("--rate", f.rate, "Calls per second (open loop); 0 for closed loop")
      ->capture_default_str();
  app.add_option("--seconds", f.seconds, "How long")->capture_default_str();
  app.add_option("--channels", f.channels, "Connections")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const char* token = std::getenv("TRACEMARK_TOKEN");
  if (token == nullptr || (f.mode != "get" && f.mode != "submit") ||
      (f.mode == "get" && f.scan_id.empty()) || (f.mode == "submit" && f.upload.empty()) ||
      f.concurrency < 1 || f.channels < 1 || !(f.seconds > 0) || f.rate < 0) {
    std::cerr << "service_load: need $TRACEMARK_TOKEN, --mode get --scan-id ID or --mode submit "
                 "--upload FILE, and positive --concurrency/--channels/--seconds\n";
    return 2;
  }
  std::string upload;
  if (f.mode == "submit") {
    auto bytes = tracemark::base::ReadFile(f.upload, "upload");
    if (!bytes.ok()) {
      std::cerr << "service_load: " << bytes.status().message() << "\n";
      return 2;
    }
    upload = *std::move(bytes);
  }
  LoadGenerator load(f, token, std::move(upload));
  const double elapsed = load.Run();
  std::cout << Report(f, load.stats(), elapsed).dump(2) << "\n";
  return 0;
}
