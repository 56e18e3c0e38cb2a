#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tracemark/net/http_client.h"
#include "tracemark/net/http_server.h"

namespace tracemark::net {
namespace {

// Sends raw bytes to the server and returns everything it answers until it closes.
std::string RawExchange(uint16_t port, const std::string& bytes, bool half_close = true) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

HttpHandler Echo() {
  return [](const HttpRequest& r) {
    HttpResponse resp;
    resp.content_type = "text/plain";
    resp.body = absl::StrCat(r.method, " ", r.path(), " ", r.body.size(), " ", r.body);
    if (const std::string* h = r.Header("x-test")) resp.headers.emplace_back("X-Echo", *h);
    return resp;
  };
}

TEST(HttpServerTest, ClientRoundTripKeepsTheConnection) {
  auto server = HttpServer::Start({}, Echo());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = absl::StrCat("http://127.0.0.1:", (*server)->port(), "/v1/x?q=1");
  auto client = HttpClient::Create();
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 3; ++i) {
    const std::string body(static_cast<size_t>(2000 * i), 'a');  // > 1 KiB: no 100-continue
    auto r = (*client)->Send("POST", url, {"X-Test: yes"}, body, 10);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, absl::StrCat("POST /v1/x ", body.size(), " ", body));
    EXPECT_EQ(r->content_type, "text/plain");
  }
  auto g = (*client)->Send("GET", url, {}, "", 10);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->body, "GET /v1/x 0 ");
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  auto server = HttpServer::Start({}, Echo());
  ASSERT_TRUE(server.ok());
  const std::string out = RawExchange((*server)->port(),
                                      "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b "
                                      "HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("POST /a 3 abc"), std::string::npos) << out;
  EXPECT_NE(out.find("GET /b 0 "), std::string::npos) << out;
  EXPECT_LT(out.find("POST /a"), out.find("GET /b"));
}

TEST(HttpServerTest, BadRequestsGetClearStatuses) {
  HttpServerOptions o;
  o.max_body_bytes = 100;
  o.max_header_bytes = 1000;
  auto server = HttpServer::Start(o, Echo());
  ASSERT_TRUE(server.ok());
  const uint16_t port = (*server)->port();
  EXPECT_EQ(RawExchange(port, "garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(RawExchange(port, "GET / HTTP/2.0\r\n\r\n").rfind("HTTP/1.1 505", 0), 0u);
  EXPECT_EQ(RawExchange(port, "GET / HTTP/1.1\r\nno colon\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(
      RawExchange(port, "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").rfind("HTTP/1.1 400", 0),
      0u);
  EXPECT_EQ(
      RawExchange(port, "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n").rfind("HTTP/1.1 413", 0),
      0u);
  EXPECT_EQ(RawExchange(port, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .rfind("HTTP/1.1 501", 0),
            0u);
  EXPECT_EQ(
      RawExchange(port, absl::StrCat("GET / HTTP/1.1\r\nX: ", std::string(2000, 'h'), "\r\n\r\n"))
          .rfind("HTTP/1.1 431", 0),
      0u);
  // A truncated body: the client goes away; the server closes without answering.
  EXPECT_EQ(RawExchange(port, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"), "");
}

TEST(HttpServerTest, HandlerExceptionIs500AndServerLives) {
  auto server = HttpServer::Start({}, [](const HttpRequest& r) -> HttpResponse {
    if (r.path() == "/throw") throw std::runtime_error("boom");
    return {200, "text/plain", {}, "ok"};
  });
  ASSERT_TRUE(server.ok());
  const uint16_t port = (*server)->port();
  EXPECT_EQ(RawExchange(port, "GET /throw HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 500", 0), 0u);
  EXPECT_NE(RawExchange(port, "GET /fine HTTP/1.0\r\n\r\n").find("\r\n\r\nok"), std::string::npos);
}

TEST(HttpServerTest, OverloadIsAnsweredAtOnceWith503) {
  HttpServerOptions o;
  o.threads = 1;
  o.max_queued = 0;
  std::atomic<bool> release{false};
  auto server = HttpServer::Start(o, [&](const HttpRequest&) {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return HttpResponse{200, "text/plain", {}, "slow"};
  });
  ASSERT_TRUE(server.ok());
  const uint16_t port = (*server)->port();
  std::thread busy([&] { RawExchange(port, "GET / HTTP/1.0\r\n\r\n"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the one worker is now held
  auto client = HttpClient::Create();
  auto r = (*client)->Send("GET", absl::StrCat("http://127.0.0.1:", port, "/"), {}, "", 10);
  release = true;
  busy.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  ASSERT_TRUE(r->retry_after_s.has_value());
  EXPECT_EQ(*r->retry_after_s, 1.0);
}

TEST(HttpClientTest, TransportFailuresAreStatuses) {
  auto client = HttpClient::Create();
  ASSERT_TRUE(client.ok());
  // A port nobody listens on: bind one, note it, close it.
  uint16_t port;
  {
    auto s = HttpServer::Start({}, Echo());
    port = (*s)->port();
  }
  auto refused = (*client)->Send("GET", absl::StrCat("http://127.0.0.1:", port, "/"), {}, "", 5);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*client)->Send("GET", "ftp://x/", {}, "", 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::atomic<bool> release{false};
  auto slow = HttpServer::Start({}, [&](const HttpRequest&) {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return HttpResponse{200, "text/plain", {}, std::string(100, 'x')};
  });
  auto timeout =
      (*client)->Send("GET", absl::StrCat("http://127.0.0.1:", (*slow)->port(), "/"), {}, "", 0.3);
  EXPECT_EQ(timeout.status().code(), absl::StatusCode::kDeadlineExceeded);
  release = true;
  auto big = (*client)->Send("GET", absl::StrCat("http://127.0.0.1:", (*slow)->port(), "/"), {}, "",
                             5, 10);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tracemark::net
