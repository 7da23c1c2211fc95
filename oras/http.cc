#include "oras/http.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"

namespace berth::oras {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;
constexpr size_t kMaxHeaderBytes = 256 << 10;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State shared with curl's callbacks during one Perform.
struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  CURL* curl;
  absl::Status sink_status;
  size_t header_bytes = 0;
  int64_t upload_pos = 0;
  bool started = false;
};

bool IsSuccess(long status) {
  return status >= 200 && status < 300;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  t->header_bytes += len;
  if (t->header_bytes > kMaxHeaderBytes) {
    t->sink_status = absl::DataLossError("the server sent more than 256 KiB of headers");
    return 0;
  }
  std::string_view line(data, len);
  // A new status line (after a 100 Continue) starts a fresh header set.
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string name = absl::AsciiStrToLower(absl::string_view(line.data(), colon));
  std::string value(absl::StripAsciiWhitespace(
      absl::string_view(line.data() + colon + 1, line.size() - colon - 1)));
  t->response->headers.emplace(std::move(name), std::move(value));
  return len;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  HttpResponse& r = *t->response;
  if (IsSuccess(status) && t->request->sink) {
    if (!t->started) {
      t->started = true;
      r.status = status;
      if (t->request->on_start) {
        absl::Status st = t->request->on_start(r);
        if (!st.ok()) {
          t->sink_status = st;
          return 0;
        }
      }
    }
    absl::Status st = t->request->sink({reinterpret_cast<const uint8_t*>(data), len});
    if (!st.ok()) {
      t->sink_status = st;
      return 0;
    }
    r.body_bytes += static_cast<int64_t>(len);
    return len;
  }
  size_t cap = IsSuccess(status) ? t->request->max_body : kMaxErrorBody;
  if (r.body.size() + len > cap) {
    if (!IsSuccess(status)) return len;  // keep the start of an error body, drop the rest
    t->sink_status = absl::ResourceExhaustedError(
        absl::StrCat("the reply is larger than the ", cap, "-byte limit"));
    return 0;
  }
  r.body.append(data, len);
  r.body_bytes += static_cast<int64_t>(len);
  return len;
}

size_t OnRead(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const HttpRequest& req = *t->request;
  int64_t left = req.body_length - t->upload_pos;
  if (left <= 0) return 0;
  size_t want = std::min<int64_t>(left, static_cast<int64_t>(size * n));
  ssize_t got = ::pread(req.body_fd, buffer, want, req.body_offset + t->upload_pos);
  if (got < 0 && errno == EINTR) return OnRead(buffer, size, n, user);
  if (got <= 0) {
    t->sink_status = got < 0 ? ErrnoStatus("reading the upload", errno)
                             : absl::DataLossError("the upload file shrank while sending it");
    return CURL_READFUNC_ABORT;
  }
  t->upload_pos += got;
  return static_cast<size_t>(got);
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  t->upload_pos = offset;
  return CURL_SEEKFUNC_OK;
}

}  // namespace

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::vector<std::string> HttpResponse::Headers(const std::string& name) const {
  std::vector<std::string> out;
  auto [lo, hi] = headers.equal_range(name);
  for (auto it = lo; it != hi; ++it) out.push_back(it->second);
  return out;
}

HttpSession::HttpSession(HttpOptions options) : options_(std::move(options)) {
  GlobalInitOnce();
  curl_ = curl_easy_init();
}

HttpSession::~HttpSession() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
}

absl::StatusOr<HttpResponse> HttpSession::Perform(const HttpRequest& request) {
  if (curl_ == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl_;
  curl_easy_reset(c);
  HttpResponse response;
  Transfer t{&request, &response, c, absl::OkStatus()};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout_seconds));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_seconds));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, options_.tls_verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, options_.tls_verify ? 2L : 0L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  // Large buffers: fewer callbacks, and the hash and the disk get big chunks.
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

  struct curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_owner(headers,
                                                                           curl_slist_free_all);
  bool fd_body = request.body_fd >= 0;
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (fd_body) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, OnSeek);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body_length));
    if (request.method != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    // No "Expect: 100-continue" round trip.
    headers = curl_slist_append(headers, "Expect:");
    header_owner.release();
    header_owner.reset(headers);
  } else {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != "POST")
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  CURLcode code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  if (!t.sink_status.ok()) return t.sink_status;
  if (code != CURLE_OK) {
    std::string why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT) why += " (the server stalled)";
    return absl::UnavailableError(why);
  }
  return response;
}

std::string OriginOf(const std::string& url) {
  CURLU* u = curl_url();
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
      out = absl::AsciiStrToLower(absl::StrCat(scheme, "://", host, ":", port));
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

absl::StatusOr<std::string> ResolveUrl(const std::string& base, const std::string& location) {
  CURLU* u = curl_url();
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> owner(u, curl_url_cleanup);
  if (curl_url_set(u, CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("bad Location '", location.substr(0, 200), "'"));
  }
  char* full = nullptr;
  if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
    return absl::InvalidArgumentError("bad Location");
  }
  std::string out(full);
  curl_free(full);
  if (out.rfind("http://", 0) != 0 && out.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError("a Location that is not http(s)");
  }
  return out;
}

std::string UrlEscape(const std::string& value) {
  char* e = curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size()));
  std::string out(e != nullptr ? e : "");
  curl_free(e);
  return out;
}

}  // namespace berth::oras
