// A small HTTP/1.1 server for local endpoints: the OpenAI-compatible endpoint that serves a model
// on loopback (reference/openai_endpoint.h) and test doubles of suspect endpoints.
//
//   HttpServerOptions o;  // 127.0.0.1, an ephemeral port
//   TRACEMARK_ASSIGN_OR_RETURN(auto server, HttpServer::Start(o, [](const HttpRequest& r) {
//     return HttpResponse{200, "text/plain", {}, "hello"};
//   }));
//   std::cout << server->port();
//   ...
//   server->Stop();  // or destroy it
//
// What it speaks: requests with a Content-Length body or none (chunked request bodies get 501),
// "Expect: 100-continue", keep-alive and pipelined requests, HTTP/1.0 and 1.1. Responses always
// carry Content-Length. Bad requests get 400, oversized headers 431, oversized bodies 413, and a
// handler that throws gets 500 (the connection is then closed). When every worker is busy and
// the queue of waiting connections is full, a new connection gets 503 with Retry-After at once.
//
// Thread-safety: the handler is called concurrently from options.threads worker threads; Stop()
// and port() may be called from any thread.
#ifndef TRACEMARK_NET_HTTP_SERVER_H_
#define TRACEMARK_NET_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tracemark::net {

struct HttpRequest {
  std::string method;  // as sent, e.g. "POST"
  std::string target;  // path and query as sent, e.g. "/v1/models?x=1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;
  std::string peer;  // "address:port" of the client

  std::string path() const;  // target without the query
  // The first header of that (lower-case) name, or null.
  const std::string* Header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // an IPv4 address to listen on
  uint16_t port = 0;               // 0: an ephemeral port (see port())
  int threads = 4;                 // connections served at once
  size_t max_queued = 64;          // accepted connections waiting for a worker
  size_t max_header_bytes = size_t{64} << 10;
  size_t max_body_bytes = size_t{8} << 20;
  int idle_timeout_ms = 30000;  // a connection with no request for this long is closed
};

class HttpServer {
 public:
  // Binds and listens, then serves in the background. InvalidArgument for a bad address or
  // options, Unavailable when the address cannot be bound (with the reason).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;  // the bound port
  // Stops accepting, lets requests in progress finish, closes every connection and joins the
  // threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The reason phrase of a status code ("OK", "Not Found", ...; "Unknown" for others).
const char* ReasonPhrase(int status);

}  // namespace tracemark::net

#endif  // TRACEMARK_NET_HTTP_SERVER_H_
