// An HTTP client for suspect endpoints (libcurl underneath): one request at a time per client,
// with the connection kept open between requests. Use one client per thread.
//
//   TRACEMARK_ASSIGN_OR_RETURN(auto client, HttpClient::Create());
//   TRACEMARK_ASSIGN_OR_RETURN(HttpResult r, client->Send("POST", url, headers, body, 60.0));
//   if (r.status == 200) ...
//
// A status returned by Send() is a transport failure, never an HTTP status: Unavailable (could
// not connect, connection reset, TLS failure...), DeadlineExceeded (no complete answer within the
// timeout) or InvalidArgument (a malformed URL or unsupported scheme). Header values given to
// Send() are never logged or put into an error message; callers holding a secret in a header
// should wipe their copy when done.
#ifndef TRACEMARK_NET_HTTP_CLIENT_H_
#define TRACEMARK_NET_HTTP_CLIENT_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tracemark::net {

struct HttpResult {
  long status = 0;  // the HTTP status code
  std::string body;
  std::string content_type;
  // Seconds the server asked the client to wait (Retry-After, in seconds or as an HTTP date).
  std::optional<double> retry_after_s;
};

class HttpClient {
 public:
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `headers` are full lines ("Authorization: Bearer ..."). `max_response_bytes` bounds the body
  // kept (a larger answer is a ResourceExhausted error). When `cancel` (if given) becomes true,
  // the request is abandoned within about a second with a Cancelled error.
  absl::StatusOr<HttpResult> Send(const std::string& method, const std::string& url,
                                  const std::vector<std::string>& headers, const std::string& body,
                                  double timeout_s, size_t max_response_bytes = size_t{64} << 20,
                                  const std::atomic<bool>* cancel = nullptr);

 private:
  explicit HttpClient(void* curl) : curl_(curl) {}
  void* curl_;  // CURL*
};

}  // namespace tracemark::net

#endif  // TRACEMARK_NET_HTTP_CLIENT_H_
