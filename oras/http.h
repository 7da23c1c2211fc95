// One HTTP exchange over libcurl, with the limits a hostile server needs:
// bounded bodies, stall detection, no automatic redirects (registry_client
// follows them itself, so it decides which headers may cross to another
// host), TLS verified against the system CA store.
//
// An HttpSession owns one curl easy handle, reused across requests so that
// keep-alive connections are reused; it is not thread-safe (one per thread).
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::oras {

struct HttpOptions {
  bool tls_verify = true;  // false only for hosts listed as insecure
  std::string ca_file;     // extra CA bundle (tests); empty = system store
  int connect_timeout_seconds = 15;
  // A transfer that moves no byte for this long is abandoned (a stalled or
  // trickling server must not hold a pull forever).
  int stall_seconds = 30;
  std::string user_agent = "berth";
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // Request body: `body`, or `body_length` bytes of `body_fd` from `body_offset`.
  std::string body;
  int body_fd = -1;
  int64_t body_offset = 0;
  int64_t body_length = 0;
  // Response body of a 2xx reply: streamed to `sink` when set (an error status
  // aborts the transfer and is returned), else collected up to `max_body`
  // bytes (more is an error). Non-2xx bodies are collected up to 64 KiB.
  std::function<absl::Status(std::span<const uint8_t>)> sink;
  // Called once, before the first byte of a 2xx body reaches `sink`, with the
  // reply's status and headers (e.g. to check a Range reply).
  std::function<absl::Status(const struct HttpResponse&)> on_start;
  size_t max_body = 1 << 20;
};

struct HttpResponse {
  long status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int64_t body_bytes = 0;  // bytes of the body received (sent to the sink or kept)
  std::string url;         // where the reply came from (after redirects)
  // The first value of header `name` (lower-case), or "".
  std::string Header(const std::string& name) const;
  std::vector<std::string> Headers(const std::string& name) const;
};

class HttpSession {
 public:
  explicit HttpSession(HttpOptions options);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // Performs `request`. Transport failures (refused, reset, TLS, stall) are
  // kUnavailable with curl's reason; a sink's error is returned as it is.
  absl::StatusOr<HttpResponse> Perform(const HttpRequest& request);

  const HttpOptions& options() const { return options_; }

 private:
  HttpOptions options_;
  CURL* curl_;
};

// "scheme://host[:port]" of an absolute URL, lower-cased; "" if unparsable.
std::string OriginOf(const std::string& url);

// `location` resolved against `base` (Location headers may be relative).
absl::StatusOr<std::string> ResolveUrl(const std::string& base, const std::string& location);

// Percent-encodes a query value.
std::string UrlEscape(const std::string& value);

}  // namespace berth::oras
