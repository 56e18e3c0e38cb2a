#include "tracemark/net/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tracemark::net {

std::string HttpRequest::path() const { return target.substr(0, target.find('?')); }

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {

constexpr int kPollSliceMs = 100;  // how often a blocked read looks at the stop flag

// Writes all of `data`; false when the peer is gone.
bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 5000) <= 0) return false;
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Serialize(const HttpResponse& r, bool keep_alive) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", ReasonPhrase(r.status), "\r\n");
  if (!r.content_type.empty()) absl::StrAppend(&out, "Content-Type: ", r.content_type, "\r\n");
  for (const auto& [name, value] : r.headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n",
                  keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n", "\r\n",
                  r.body);
  return out;
}

HttpResponse Error(int status, absl::string_view message) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  r.body = absl::StrCat(R"({"error":{"message":")", escaped, R"(","type":"http_error","code":)",
                        status, "}}");
  return r;
}

// The method, target and version of the request line; an error response if malformed.
std::optional<HttpResponse> ParseRequestLine(absl::string_view request_line, HttpRequest* req,
                                             bool* keep_alive) {
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = request_line.rfind(' ');
  if (sp1 == absl::string_view::npos || sp2 == sp1 || sp1 == 0 || sp2 == sp1 + 1) {
    return Error(400, "malformed request line");
  }
  req->method = std::string(request_line.substr(0, sp1));
  req->target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  const absl::string_view version = request_line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Error(505, "only HTTP/1.0 and HTTP/1.1 are served");
  }
  *keep_alive = version == "HTTP/1.1";
  return std::nullopt;
}

// The header lines of `head` after the request line, which ends at `line_end`; names in lower
// case, values without surrounding white space. False on a line without a name.
bool ParseHeaderLines(absl::string_view head, size_t line_end, HttpRequest* req) {
  while (line_end != absl::string_view::npos && line_end < head.size()) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const absl::string_view line =
        head.substr(start, (line_end == absl::string_view::npos ? head.size() : line_end) - start);
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) return false;
    req->headers.emplace_back(absl::AsciiStrToLower(line.substr(0, colon)),
                              std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return true;
}

// The body's length from Content-Length (0 without one); an error response for a chunked body,
// a malformed length or one over `max_body_bytes`.
std::optional<HttpResponse> BodyLength(const HttpRequest& req, size_t max_body_bytes,
                                       size_t* length) {
  if (req.Header("transfer-encoding") != nullptr) {
    return Error(501,
                 "chunked request bodies are not supported; send "
                 "Content-Length");
  }
  *length = 0;
  if (const std::string* cl = req.Header("content-length")) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(*cl, &v) || cl->empty() || (*cl)[0] == '-' || (*cl)[0] == '+') {
      return Error(400, "bad Content-Length");
    }
    if (v > max_body_bytes) {
      return Error(413, absl::StrCat("body over ", max_body_bytes, " bytes"));
    }
    *length = static_cast<size_t>(v);
  }
  return std::nullopt;
}

// Parses the head (up to, without, the blank line) into *req, whether the connection stays open
// and the body's length; an error response if the request cannot be served.
std::optional<HttpResponse> ParseHead(absl::string_view head, size_t max_body_bytes,
                                      HttpRequest* req, bool* keep_alive, size_t* length) {
  const size_t line_end = head.find("\r\n");
  if (auto error = ParseRequestLine(head.substr(0, line_end), req, keep_alive)) return error;
  if (!ParseHeaderLines(head, line_end, req)) return Error(400, "malformed header line");
  if (const std::string* c = req->Header("connection")) {
    const std::string v = absl::AsciiStrToLower(*c);
    if (v.find("close") != std::string::npos) *keep_alive = false;
    if (v.find("keep-alive") != std::string::npos) *keep_alive = true;
  }
  return BodyLength(*req, max_body_bytes, length);
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  int listen_fd = -1;
  int wake[2] = {-1, -1};  // self-pipe that wakes the accept loop on Stop()
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::thread acceptor;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable work;                   // signalled on a new connection and on stop
  std::deque<std::pair<int, std::string>> queue;  // fd, peer; guarded by mu
  bool stopped = false;                           // guarded by mu

  void AcceptLoop();
  void WorkerLoop();
  void Serve(int fd, const std::string& peer);
  // Reads until buf holds a whole head; its end (the blank line's offset) in *head_end. False
  // when the connection is to close (a 431 was sent for a head over max_header_bytes).
  bool ReadHead(int fd, std::string* buf, size_t* head_end);
  // Reads the body of `length` bytes (after a 100 Continue if the client expects one) from the
  // front of *buf into req->body; false when the connection is to close.
  bool ReadBody(int fd, size_t length, std::string* buf, HttpRequest* req);
  // The handler's response; a 500, with *failed set, if it throws.
  HttpResponse Handle(const HttpRequest& req, bool* failed);
  // Reads more bytes into `buf`; false on EOF, error, idle timeout or stop.
  bool ReadMore(int fd, std::string* buf, int timeout_ms);
};

void HttpServer::Impl::AcceptLoop() {
  while (!stopping.load()) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0 || stopping.load()) return;
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {  // out of descriptors: back off briefly
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char ip[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
    std::string peer = absl::StrCat(ip, ":", ntohs(addr.sin_port));
    bool queued = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (queue.size() < options.max_queued) {
        queue.emplace_back(fd, std::move(peer));
        queued = true;
      }
    }
    if (queued) work.notify_one();
    if (!queued) {  // overloaded: say so at once rather than hold the client
      HttpResponse busy = Error(503, "server busy");
      busy.headers.emplace_back("Retry-After", "1");
      SendAll(fd, Serialize(busy, false));
      ::close(fd);
    }
  }
}

void HttpServer::Impl::WorkerLoop() {
  while (true) {
    std::pair<int, std::string> job;
    {
      std::unique_lock<std::mutex> lock(mu);
      work.wait(lock, [this] { return stopped || !queue.empty(); });
      if (queue.empty()) return;  // stopped
      job = std::move(queue.front());
      queue.pop_front();
    }
    Serve(job.first, job.second);
    ::close(job.first);
  }
}

bool HttpServer::Impl::ReadMore(int fd, std::string* buf, int timeout_ms) {
  int waited = 0;
  while (true) {
    if (stopping.load()) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, kPollSliceMs);
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) {
      waited += kPollSliceMs;
      if (waited >= timeout_ms) return false;
      continue;
    }
    char chunk[16384];
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    buf->append(chunk, static_cast<size_t>(n));
    return true;
  }
}

bool HttpServer::Impl::ReadHead(int fd, std::string* buf, size_t* head_end) {
  while ((*head_end = buf->find("\r\n\r\n")) == std::string::npos) {
    if (buf->size() > options.max_header_bytes) {
      SendAll(fd, Serialize(Error(431, "request head too large"), false));
      return false;
    }
    if (!ReadMore(fd, buf, options.idle_timeout_ms)) return false;
  }
  if (*head_end > options.max_header_bytes) {
    SendAll(fd, Serialize(Error(431, "request head too large"), false));
    return false;
  }
  return true;
}

bool HttpServer::Impl::ReadBody(int fd, size_t length, std::string* buf, HttpRequest* req) {
  if (const std::string* e = req->Header("expect");
      e != nullptr && absl::AsciiStrToLower(*e) == "100-continue" && buf->size() < length) {
    if (!SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return false;
  }
  while (buf->size() < length) {
    if (!ReadMore(fd, buf, options.idle_timeout_ms)) return false;
  }
  req->body = buf->substr(0, length);
  buf->erase(0, length);
  return true;
}

HttpResponse HttpServer::Impl::Handle(const HttpRequest& req, bool* failed) {
  HttpResponse resp;
  try {
    resp = handler(req);
  } catch (const std::exception& e) {
    resp = Error(500, "internal error");
    *failed = true;
  } catch (...) {
    resp = Error(500, "internal error");
    *failed = true;
  }
  return resp;
}

void HttpServer::Impl::Serve(int fd, const std::string& peer) {
  std::string buf;
  while (!stopping.load()) {
    size_t head_end;
    if (!ReadHead(fd, &buf, &head_end)) return;
    HttpRequest req;
    req.peer = peer;
    bool keep_alive = false;
    size_t length = 0;
    if (std::optional<HttpResponse> error =
            ParseHead(absl::string_view(buf.data(), head_end), options.max_body_bytes, &req,
                      &keep_alive, &length)) {
      SendAll(fd, Serialize(*error, false));
      return;
    }
    buf.erase(0, head_end + 4);
    if (!ReadBody(fd, length, &buf, &req)) return;
    bool failed = false;
    HttpResponse resp = Handle(req, &failed);
    if (failed || stopping.load()) keep_alive = false;
    if (req.method == "HEAD") resp.body.clear();
    if (!SendAll(fd, Serialize(resp, keep_alive)) || !keep_alive) return;
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              HttpHandler handler) {
  if (!handler) return absl::InvalidArgumentError("no handler");
  if (options.threads < 1 || options.threads > 1024) {
    return absl::InvalidArgumentError("threads must be in 1..1024");
  }
  if (options.idle_timeout_ms < 1) return absl::InvalidArgumentError("idle timeout must be > 0");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options.port);
  if (::inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: '", options.host, "'"));
  }
  auto impl = std::make_unique<Impl>();
  impl->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  const int one = 1;
  ::setsockopt(impl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(impl->listen_fd, 128) != 0) {
    const std::string why = strerror(errno);
    ::close(impl->listen_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.host, ":", options.port, ": ", why));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  impl->port = ntohs(addr.sin_port);
  if (::pipe2(impl->wake, O_CLOEXEC) != 0) {
    ::close(impl->listen_fd);
    return absl::UnavailableError(absl::StrCat("pipe: ", strerror(errno)));
  }
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  Impl* p = impl.get();
  for (int i = 0; i < p->options.threads; ++i) p->workers.emplace_back([p] { p->WorkerLoop(); });
  p->acceptor = std::thread([p] { p->AcceptLoop(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  const char byte = 1;
  while (::write(s.wake[1], &byte, 1) < 0 && errno == EINTR) {
  }
  if (s.acceptor.joinable()) s.acceptor.join();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stopped = true;
    for (auto& [fd, peer] : s.queue) ::close(fd);  // never served: the client sees a reset
    s.queue.clear();
  }
  s.work.notify_all();
  for (auto& t : s.workers) t.join();
  ::close(s.listen_fd);
  ::close(s.wake[0]);
  ::close(s.wake[1]);
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace tracemark::net
