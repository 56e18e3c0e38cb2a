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
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"
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
  std::string upload_bytes, upload_sha;
  if (f.mode == "submit") {
    std::ifstream in(f.upload, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    upload_bytes = ss.str();
    upload_sha = tracemark::watermark::Sha256Hex(upload_bytes);
    if (!in) {
      std::cerr << "service_load: cannot read " << f.upload << "\n";
      return 2;
    }
  }
  std::vector<std::unique_ptr<v1::Verifier::Stub>> stubs;
  for (int i = 0; i < f.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct connections
    stubs.push_back(v1::Verifier::NewStub(
        grpc::CreateCustomChannel(f.server, grpc::InsecureChannelCredentials(), args)));
  }
  grpc::CompletionQueue cq;
  Stats stats;
  std::atomic<uint64_t> issued{0}, in_flight{0};
  const std::string bearer = std::string("Bearer ") + token;

  auto begin = [&](uint64_t n) {
    auto* c = new Call;
    c->ctx.AddMetadata("authorization", bearer);
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    c->start = Clock::now();
    v1::Verifier::Stub& stub = *stubs[n % stubs.size()];
    ++in_flight;
    ++issued;
    if (f.mode == "get") {
      v1::GetScanRequest req;
      req.set_id(f.scan_id);
      c->get = stub.AsyncGetScan(&c->ctx, req, &cq);
      c->get->Finish(&c->reply, &c->status, c);
    } else {
      // Prepared, then started: the start's event may reach the completion thread at once.
      c->submit = stub.PrepareAsyncSubmitScan(&c->ctx, &c->reply, &cq);
      c->submit->StartCall(c);
    }
  };
  // Advances a submit call by one step; true when the call is finished.
  auto advance = [&](Call* c, bool ok) {
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
        u->set_size(upload_bytes.size());
        u->set_sha256(upload_sha);
        c->submit->Write(m, c);
        return false;
      }
      case 1:
        m.mutable_chunk()->set_file(0);
        m.mutable_chunk()->set_data(upload_bytes);
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
  };

  const auto start = Clock::now();
  const auto end = start + std::chrono::microseconds(static_cast<int64_t>(f.seconds * 1e6));
  std::thread issuer;
  std::atomic<bool> issuing{f.rate > 0};
  if (f.rate > 0) {  // open loop: one call every 1/rate seconds, however many are in flight
    issuer = std::thread([&] {
      const double period_us = 1e6 / f.rate;
      for (uint64_t n = 0;; ++n) {
        const auto due = start + std::chrono::microseconds(
                                     static_cast<int64_t>(static_cast<double>(n) * period_us));
        if (due >= end) break;
        std::this_thread::sleep_until(due);
        begin(n);
      }
      issuing = false;
    });
  } else {
    for (int i = 0; i < f.concurrency; ++i) begin(static_cast<uint64_t>(i));
  }
  void* tag = nullptr;
  bool ok = false;
  for (;;) {
    const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(100);
    if (cq.AsyncNext(&tag, &ok, deadline) != grpc::CompletionQueue::GOT_EVENT) {
      if (Clock::now() >= end && !issuing && in_flight == 0) break;
      continue;
    }
    auto* c = static_cast<Call*>(tag);
    if (!advance(c, ok)) continue;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - c->start).count();
    stats.Add(c->status.error_code(), ms);
    delete c;
    --in_flight;
    if (f.rate == 0 && Clock::now() < end) begin(issued.load());
    if (Clock::now() >= end && !issuing && in_flight == 0) break;
  }
  if (issuer.joinable()) issuer.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
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
  std::cout << out.dump(2) << "\n";
  return 0;
}
