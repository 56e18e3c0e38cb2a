#include "tracemark/probe/probe.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tracemark/net/http_server.h"

namespace tracemark::probe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<ProbePrompt> Prompts(int n) {
  std::vector<ProbePrompt> p;
  for (int i = 0; i < n; ++i) {
    p.push_back({absl::StrCat("p", i), absl::StrCat("Tell me ", i), {}});
  }
  return p;
}

net::HttpResponse Completion(const std::string& text) {
  json a = {{"model", "m"},
            {"choices", json::array({{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", text}}},
                                      {"finish_reason", "stop"}}})}};
  return {200, "application/json", {}, a.dump()};
}

// A suspect endpoint whose answer to prompt P is "answer to P"; `script` decides, from the
// request's prompt and how many times it was asked before, to misbehave instead.
class FakeEndpoint {
 public:
  using Script = std::function<std::optional<net::HttpResponse>(const std::string&, int)>;
  explicit FakeEndpoint(Script script = {}) : script_(std::move(script)) {
    net::HttpServerOptions o;
    o.threads = 8;
    server_ = *net::HttpServer::Start(o, [this](const net::HttpRequest& r) { return Handle(r); });
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_->port(), "/v1"); }
  int asked(const std::string& prompt) {
    std::lock_guard<std::mutex> lock(mu_);
    return asked_[prompt];
  }
  std::string last_auth() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_auth_;
  }

 private:
  net::HttpResponse Handle(const net::HttpRequest& r) {
    if (r.path() != "/v1/chat/completions") return {404, "application/json", {}, "{}"};
    json req = json::parse(r.body);
    const std::string prompt = req["messages"][0]["content"];
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = asked_[prompt]++;
      if (const std::string* a = r.Header("authorization")) last_auth_ = *a;
    }
    if (script_) {
      if (auto resp = script_(prompt, n)) return *resp;
    }
    return Completion(absl::StrCat("answer to ", prompt, " seed ", req["seed"].get<int>()));
  }
  Script script_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, int> asked_;
  std::string last_auth_;
  std::unique_ptr<net::HttpServer> server_;
};

std::vector<json> ReadAnswers(const std::string& dir) {
  std::vector<json> out;
  std::ifstream in(fs::path(dir) / "answers.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("probe_test_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                         ::getpid()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  ProbeOptions Options(const FakeEndpoint& e) {
    ProbeOptions o;
    o.endpoint = e.url();
    o.max_backoff_s = 0.05;
    o.timeout_s = 5;
    return o;
  }
  std::string dir_;
};

TEST_F(ProbeTest, CollectsEveryAnswerOnceAsChatRecords) {
  FakeEndpoint e;
  ProbeOptions o = Options(e);
  o.samples = 2;
  o.api_key = "sk-secret-123";
  auto s = Probe(Prompts(20), o, dir_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts.answered, 40u);
  EXPECT_EQ(s->counts.failed, 0u);
  EXPECT_EQ(e.last_auth(), "Bearer sk-secret-123");
  // Credentials in the URL stay out of the directory too.
  ProbeOptions with_userinfo = Options(e);
  with_userinfo.endpoint = absl::StrCat("http://user:pw-secret-9@", e.url().substr(7));
  with_userinfo.samples = 2;
  auto again = Probe(Prompts(20), with_userinfo, dir_);
  ASSERT_TRUE(again.ok()) << again.status();
  auto answers = ReadAnswers(dir_);
  ASSERT_EQ(answers.size(), 40u);
  std::set<std::string> ids;
  for (const json& a : answers) {
    ids.insert(a["id"].get<std::string>());
    EXPECT_EQ(a["messages"][0]["role"], "user");
    EXPECT_EQ(a["messages"][1]["content"],
              absl::StrCat("answer to ", a["messages"][0]["content"].get<std::string>(), " seed ",
                           a["sample"].get<int>()));
  }
  EXPECT_EQ(ids.size(), 40u);
  // The key is written nowhere in the directory.
  for (const auto& f : fs::directory_iterator(dir_)) {
    std::ifstream in(f.path());
    const std::string all((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(all.find("sk-secret-123"), std::string::npos) << f.path();
    EXPECT_EQ(all.find("pw-secret-9"), std::string::npos) << f.path();
  }
}

TEST_F(ProbeTest, RetriesOverloadErrorsAndGarbage) {
  FakeEndpoint e([](const std::string&, int n) -> std::optional<net::HttpResponse> {
    if (n == 0) return net::HttpResponse{429, "application/json", {{"Retry-After", "0"}}, "{}"};
    if (n == 1) return net::HttpResponse{503, "text/html", {}, "<html>down</html>"};
    if (n == 2) return net::HttpResponse{200, "application/json", {}, "{\"choices\": ["};
    return std::nullopt;
  });
  auto s = Probe(Prompts(10), Options(e), dir_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts.answered, 10u);
  EXPECT_EQ(s->counts.retries, 30u);
  EXPECT_EQ(ReadAnswers(dir_).size(), 10u);
}

TEST_F(ProbeTest, GivesUpAfterMaxAttemptsAndARerunFinishes) {
  std::atomic<bool> healthy{false};
  FakeEndpoint e([&](const std::string& p, int) -> std::optional<net::HttpResponse> {
    if (!healthy.load() && p == "Tell me 3") return net::HttpResponse{500, "", {}, "oops"};
    if (p == "Tell me 4")
      return net::HttpResponse{400, "application/json", {}, R"({"error":{"message":"too long"}})"};
    return std::nullopt;
  });
  ProbeOptions o = Options(e);
  o.max_attempts = 3;
  auto s = Probe(Prompts(6), o, dir_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts.answered, 4u);
  EXPECT_EQ(s->counts.failed, 2u);
  EXPECT_EQ(e.asked("Tell me 3"), 3);  // retried to the limit
  EXPECT_EQ(e.asked("Tell me 4"), 1);  // a 400 is not retried
  ASSERT_EQ(s->failures.size(), 2u);
  healthy = true;
  auto again = Probe(Prompts(6), o, dir_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->counts.already, 4u);
  EXPECT_EQ(again->counts.answered, 1u);  // p3 now; p4 still refused
  EXPECT_EQ(ReadAnswers(dir_).size(), 5u);
}

TEST_F(ProbeTest, StopsOnRefusedKeyOrUnknownModel) {
  FakeEndpoint refuse([](const std::string&, int) -> std::optional<net::HttpResponse> {
    return net::HttpResponse{401, "application/json", {}, R"({"error":{"message":"bad key"}})"};
  });
  auto s = Probe(Prompts(50), Options(refuse), dir_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.status().message().find("bad key"), std::string::npos);
  fs::remove_all(dir_);
  FakeEndpoint missing([](const std::string&, int) -> std::optional<net::HttpResponse> {
    return net::HttpResponse{404, "application/json", {}, R"({"error":{"message":"no model"}})"};
  });
  EXPECT_EQ(Probe(Prompts(50), Options(missing), dir_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ProbeTest, ResumesAfterInterruptionWithoutDuplicates) {
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  FakeEndpoint e([&](const std::string&, int) -> std::optional<net::HttpResponse> {
    if (++served == 15) stop = true;  // interrupted part-way
    return std::nullopt;
  });
  ProbeOptions o = Options(e);
  auto first = Probe(Prompts(60), o, dir_, {}, &stop);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->interrupted);
  const size_t after_first = ReadAnswers(dir_).size();
  EXPECT_GE(after_first, 10u);
  EXPECT_LT(after_first, 60u);
  // A kill during a write leaves a torn last line; the rerun cuts it off.
  { std::ofstream(fs::path(dir_) / "answers.jsonl", std::ios::app) << R"({"id": "p59/0", "mess)"; }
  stop = false;
  served = -1000;
  auto second = Probe(Prompts(60), o, dir_, {}, &stop);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->interrupted);
  EXPECT_EQ(second->counts.already, after_first);
  EXPECT_EQ(second->counts.already + second->counts.answered, 60u);
  auto answers = ReadAnswers(dir_);
  std::set<std::string> ids;
  for (const json& a : answers) ids.insert(a["id"].get<std::string>());
  EXPECT_EQ(answers.size(), 60u);
  EXPECT_EQ(ids.size(), 60u);
}

TEST_F(ProbeTest, RefusesADirectoryOfADifferentProbe) {
  FakeEndpoint e;
  ProbeOptions o = Options(e);
  ASSERT_TRUE(Probe(Prompts(3), o, dir_).ok());
  o.max_tokens = 100;
  EXPECT_EQ(Probe(Prompts(3), o, dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  o.max_tokens = 256;
  EXPECT_EQ(Probe(Prompts(4), o, dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  // A corrupt line in the middle is not silently dropped.
  { std::ofstream(fs::path(dir_) / "answers.jsonl", std::ios::app) << "junk\n{\"id\":\"x\"}\n"; }
  EXPECT_EQ(Probe(Prompts(3), o, dir_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ProbeTest, RateLimitSpacesRequests) {
  FakeEndpoint e;
  ProbeOptions o = Options(e);
  o.requests_per_second = 20;
  o.concurrency = 8;
  auto s = Probe(Prompts(11), o, dir_);
  ASSERT_TRUE(s.ok());
  EXPECT_GE(s->counts.seconds, 0.45);  // 11 requests at 20/s: the last starts after 0.5 s
}

TEST_F(ProbeTest, BadOptions) {
  ProbeOptions o;
  o.endpoint = "ftp://x";
  EXPECT_EQ(Probe(Prompts(1), o, dir_).status().code(), absl::StatusCode::kInvalidArgument);
  o.endpoint = "http://127.0.0.1:1/v1";
  EXPECT_EQ(Probe({}, o, dir_).status().code(), absl::StatusCode::kInvalidArgument);
  auto dup = Prompts(2);
  dup[1].id = dup[0].id;
  EXPECT_EQ(Probe(dup, o, dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- faults of the suspect endpoint ----

// An endpoint that answers slowly (past the probe's timeout) for some prompts: each such attempt
// is abandoned at the timeout and retried; a prompt that never answers in time is recorded as a
// failure with the reason, and the others are collected. The run's length is bounded by the
// timeouts, not by the endpoint.
TEST_F(ProbeTest, AnEndpointThatHangsTimesOutAndIsRecorded) {
  std::atomic<bool> release{false};
  FakeEndpoint e([&](const std::string& p, int) -> std::optional<net::HttpResponse> {
    if (p == "Tell me 1" || p == "Tell me 4") {
      for (int i = 0; i < 400 && !release.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return std::nullopt;
  });
  ProbeOptions o = Options(e);
  o.timeout_s = 0.3;
  o.max_attempts = 2;
  const auto t0 = std::chrono::steady_clock::now();
  auto s = Probe(Prompts(6), o, dir_);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  release = true;
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts.answered, 4u);
  EXPECT_EQ(s->counts.failed, 2u);
  ASSERT_EQ(s->failures.size(), 2u);
  for (const std::string& f : s->failures) {
    EXPECT_NE(f.find("no answer in 0.3 s"), std::string::npos) << f;
  }
  EXPECT_LT(seconds, 3.0);
  EXPECT_EQ(ReadAnswers(dir_).size(), 4u);
}

// Answers that are well-formed JSON but not a chat completion, or not JSON at all: none is kept
// as an answer, each prompt fails with the reason, nothing crashes.
TEST_F(ProbeTest, AnswersOfTheWrongShapeAreNotKept) {
  const std::vector<std::string> bodies = {
      "null",
      "[]",
      R"({"choices": []})",
      R"({"choices": [{"message": {"content": null}}]})",
      R"({"choices": [{"message": {"content": 5}}]})",
      R"({"choices": [7]})",
      "{\"choices\": [{\"message\": {\"content\": \"\xff\xfe\"}}]}",
      std::string("\0\1\2", 3)};
  FakeEndpoint e([&](const std::string& p, int) -> std::optional<net::HttpResponse> {
    const size_t i = std::stoul(p.substr(std::string("Tell me ").size()));
    return net::HttpResponse{200, "application/json", {}, bodies[i]};
  });
  ProbeOptions o = Options(e);
  o.max_attempts = 2;
  auto s = Probe(Prompts(static_cast<int>(bodies.size())), o, dir_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts.answered, 0u);
  EXPECT_EQ(s->counts.failed, bodies.size());
  for (const std::string& f : s->failures) {
    EXPECT_NE(f.find("not a chat completion"), std::string::npos) << f;
  }
  EXPECT_TRUE(ReadAnswers(dir_).empty());
}

// A TCP server that reads a request and then misbehaves at the transport level, in turn: closes
// at once, sends half a status line, sends headers promising more body than it sends, or sends
// bytes that are not HTTP.
class BrokenServer {
 public:
  BrokenServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 64);
    thread_ = std::thread([this] { Loop(); });
  }
  ~BrokenServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/v1"); }
  int connections() const { return connections_.load(); }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      const int n = connections_++;
      char buf[4096];
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 1000) > 0) (void)::read(c, buf, sizeof buf);
      std::string reply;
      switch (n % 4) {
        case 0:
          break;  // close without a word
        case 1:
          reply = "HTTP/1.1 20";
          break;
        case 2:
          reply =
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
              "{\"choices\": [{\"message\": {\"content\": \"cut";
          break;
        case 3:
          reply = "SSH-2.0-OpenSSH_9.2\r\n\x01\x02\x03";
          break;
      }
      if (!reply.empty()) (void)::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST_F(ProbeTest, BrokenConnectionsAreRetriedAndRecorded) {
  BrokenServer broken;
  ProbeOptions o;
  o.endpoint = broken.url();
  o.max_backoff_s = 0.01;
  o.timeout_s = 2;
  o.max_attempts = 4;
  o.concurrency = 2;
  auto s = Probe(Prompts(5), o, dir_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts.answered, 0u);
  EXPECT_EQ(s->counts.failed, 5u);
  EXPECT_EQ(s->counts.retries, 15u);
  EXPECT_GE(broken.connections(), 20);
  for (const std::string& f : s->failures) EXPECT_FALSE(f.empty());
  EXPECT_TRUE(ReadAnswers(dir_).empty());
}

}  // namespace
}  // namespace tracemark::probe
