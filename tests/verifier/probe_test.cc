#include "tracemark/verifier/probe.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tracemark/net/http_server.h"

namespace tracemark::verifier {
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
    absl::MutexLock lock(&mu_);
    return asked_[prompt];
  }
  std::string last_auth() {
    absl::MutexLock lock(&mu_);
    return last_auth_;
  }

 private:
  net::HttpResponse Handle(const net::HttpRequest& r) {
    if (r.path() != "/v1/chat/completions") return {404, "application/json", {}, "{}"};
    json req = json::parse(r.body);
    const std::string prompt = req["messages"][0]["content"];
    int n;
    {
      absl::MutexLock lock(&mu_);
      n = asked_[prompt]++;
      if (const std::string* a = r.Header("authorization")) last_auth_ = *a;
    }
    if (script_) {
      if (auto resp = script_(prompt, n)) return *resp;
    }
    return Completion(absl::StrCat("answer to ", prompt, " seed ", req["seed"].get<int>()));
  }
  Script script_;
  absl::Mutex mu_;
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

}  // namespace
}  // namespace tracemark::verifier
