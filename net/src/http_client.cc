#include "tracemark/net/http_client.h"

#include <curl/curl.h>

#include <ctime>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tracemark::net {
namespace {

struct Sink {
  std::string* body;
  size_t limit;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t bytes = size * n;
  if (sink->body->size() + bytes > sink->limit) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->body->append(data, bytes);
  return bytes;
}

struct Headers {
  std::optional<double> retry_after_s;
};

// Retry-After as seconds or as an HTTP date (RFC 9110 section 10.2.3).
std::optional<double> ParseRetryAfter(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  double s = 0;
  if (absl::SimpleAtod(v, &s) && s >= 0) return s;
  std::tm tm{};
  const std::string copy(v);
  if (strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
    const double delta = std::difftime(timegm(&tm), std::time(nullptr));
    return delta > 0 ? delta : 0.0;
  }
  return std::nullopt;
}

size_t ReadHeader(char* data, size_t size, size_t n, void* user) {
  auto* h = static_cast<Headers*>(user);
  const absl::string_view line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos &&
      absl::EqualsIgnoreCase(line.substr(0, colon), "retry-after")) {
    h->retry_after_s = ParseRetryAfter(line.substr(colon + 1));
  }
  if (absl::StartsWith(line, "HTTP/")) h->retry_after_s.reset();  // a new response (after 100)
  return size * n;
}

int CheckCancel(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel->load() ? 1 : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create() {
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(init)));
  }
  CURL* c = curl_easy_init();
  if (c == nullptr) return absl::InternalError("curl_easy_init failed");
  return std::unique_ptr<HttpClient>(new HttpClient(c));
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

absl::StatusOr<HttpResult> HttpClient::Send(const std::string& method, const std::string& url,
                                            const std::vector<std::string>& headers,
                                            const std::string& body, double timeout_s,
                                            size_t max_response_bytes,
                                            const std::atomic<bool>* cancel) {
  if (!absl::StartsWithIgnoreCase(url, "http://") && !absl::StartsWithIgnoreCase(url, "https://")) {
    return absl::InvalidArgumentError("bad URL: the scheme must be http or https");
  }
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache
  HttpResult result;
  Sink sink{&result.body, max_response_bytes};
  Headers seen;
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip for large bodies
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(timeout_s, 30.0) * 1000));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &seen);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  if (cancel != nullptr) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, CheckCancel);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  if (sink.overflow) {
    return absl::ResourceExhaustedError(
        absl::StrCat("response body over ", max_response_bytes, " bytes"));
  }
  if (rc != CURLE_OK) {
    const std::string why = absl::StrCat(curl_easy_strerror(rc));
    switch (rc) {
      case CURLE_ABORTED_BY_CALLBACK:
        return absl::CancelledError("request cancelled");
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(absl::StrCat("no answer in ", timeout_s, " s"));
      case CURLE_URL_MALFORMAT:
        return absl::InvalidArgumentError(
            absl::StrCat("bad URL: ", why));  // never the URL: it may hold credentials
      case CURLE_UNSUPPORTED_PROTOCOL:        // the scheme was checked: the answer was not HTTP
        return absl::UnavailableError(absl::StrCat("the server's answer is not HTTP: ", why));
      default:
        return absl::UnavailableError(why);
    }
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
  char* type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
    result.content_type = type;
  }
  result.retry_after_s = seen.retry_after_s;
  return result;
}

}  // namespace tracemark::net
