#include "oras/registry_client.h"

#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "oras/auth_challenge.h"
#include "oras/reference.h"

namespace berth::oras {
namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kMaxTokenReply = 1 << 20;

bool IsRedirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}
bool IsRetryable(long status) {
  return status == 429 || (status >= 500 && status <= 599);
}

std::string Sha256Of(std::string_view bytes) {
  Hasher h(DigestAlgorithm::kSha256);
  h.Update({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  return "sha256:" + h.FinishHex();
}

std::string WithQuery(const std::string& url, const std::string& query) {
  return absl::StrCat(url, absl::StrContains(url, '?') ? "&" : "?", query);
}

void Sleep(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// How long to wait before retrying: Retry-After when small and numeric.
int BackoffFor(const HttpResponse* reply, int backoff_ms) {
  if (reply != nullptr) {
    int seconds = 0;
    if (absl::SimpleAtoi(reply->Header("retry-after"), &seconds) && seconds >= 0 && seconds <= 10) {
      return std::max(backoff_ms, seconds * 1000);
    }
  }
  return backoff_ms;
}

std::string MediaTypeOf(const HttpResponse& reply) {
  std::string type = reply.Header("content-type");
  if (size_t semi = type.find(';'); semi != std::string::npos) type.resize(semi);
  return std::string(absl::StripAsciiWhitespace(type));
}

}  // namespace

std::string DescribeReply(const HttpResponse& reply) {
  std::string out = absl::StrCat("HTTP ", reply.status);
  nlohmann::json doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object() && doc.contains("errors") &&
      doc["errors"].is_array() && !doc["errors"].empty() && doc["errors"][0].is_object()) {
    const nlohmann::json& e = doc["errors"][0];
    std::string code =
        e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
    std::string msg =
        e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    std::string detail = absl::StrCat(code, code.empty() || msg.empty() ? "" : ": ", msg);
    // Server text ends up on a terminal: keep it short and printable.
    detail = detail.substr(0, 200);
    for (char& c : detail) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    if (!detail.empty()) absl::StrAppend(&out, " (", detail, ")");
  }
  return out;
}

RegistryClient::RegistryClient(std::string host, std::string repository, ClientOptions options)
    : host_(std::move(host)),
      repository_(std::move(repository)),
      options_(std::move(options)),
      http_(std::make_unique<HttpSession>(options_.http)) {}

std::unique_ptr<RegistryClient> RegistryClient::Clone() const {
  auto copy = std::make_unique<RegistryClient>(host_, repository_, options_);
  copy->auth_ = auth_;
  return copy;
}

std::string RegistryClient::BaseUrl() const {
  return absl::StrCat(options_.plain_http ? "http://" : "https://", host_);
}

std::string RegistryClient::AuthorizationHeader() const {
  if (!auth_.token.empty()) return "Authorization: Bearer " + auth_.token;
  if (auth_.basic) {
    return "Authorization: Basic " +
           absl::Base64Escape(options_.credentials.username + ":" + options_.credentials.password);
  }
  return "";
}

absl::StatusOr<HttpResponse> RegistryClient::SendOnce(HttpRequest request) {
  const std::string origin = OriginOf(BaseUrl());
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    HttpRequest attempt = request;
    // Credentials go only to the registry itself: never along a redirect to
    // another origin (storage backends get the signed URL, nothing more).
    std::string auth = AuthorizationHeader();
    if (!auth.empty() && OriginOf(attempt.url) == origin) attempt.headers.push_back(auth);
    ASSIGN_OR_RETURN(HttpResponse reply, http_->Perform(attempt));
    reply.url = attempt.url;
    if (!IsRedirect(reply.status)) return reply;
    std::string location = reply.Header("location");
    if (location.empty()) return reply;
    ASSIGN_OR_RETURN(request.url, ResolveUrl(attempt.url, location));
    if (reply.status == 303) {
      request.method = "GET";
      request.body.clear();
      request.body_fd = -1;
    }
  }
  return absl::UnavailableError(absl::StrCat("more than ", kMaxRedirects, " redirects"));
}

absl::StatusOr<HttpResponse> RegistryClient::Send(HttpRequest request, Access access) {
  int attempts = 0;
  int auth_rounds = 0;
  int backoff = options_.backoff_initial_ms;
  for (;;) {
    absl::StatusOr<HttpResponse> reply = SendOnce(request);
    if (!reply.ok()) {
      // A streaming download resumes at its own level (it knows its offset).
      if (absl::IsUnavailable(reply.status()) && !request.sink &&
          ++attempts < options_.max_attempts) {
        Sleep(backoff);
        backoff *= 2;
        continue;
      }
      return reply.status();
    }
    if (reply->status == 401) {
      // Only the registry itself may ask for credentials: a 401 from where a
      // redirect led must not make us send them anywhere.
      if (OriginOf(reply->url) != OriginOf(BaseUrl())) {
        return absl::PermissionDeniedError(absl::StrCat(
            "a redirect from ", host_, " led to a server that asks for credentials (refused)"));
      }
      ASSIGN_OR_RETURN(bool retry, Authenticate(*reply, access, auth_rounds > 0));
      if (retry && ++auth_rounds <= 3) continue;
      return reply;
    }
    if (IsRetryable(reply->status) && ++attempts < options_.max_attempts) {
      Sleep(BackoffFor(&*reply, backoff));
      backoff *= 2;
      continue;
    }
    return reply;
  }
}

absl::StatusOr<bool> RegistryClient::Authenticate(const HttpResponse& reply, Access access,
                                                  bool tried) {
  std::string header = reply.Header("www-authenticate");
  if (header.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(host_, " answered 401 without a challenge"));
  }
  ASSIGN_OR_RETURN(Challenge challenge, ParseChallenge(header));
  bool have_credentials = !options_.credentials.empty();
  // A login check pings the registry with no repository.
  const std::string what = repository_.empty() ? "" : absl::StrCat(" for ", repository_);
  auto denied = [&]() {
    if (have_credentials) {
      return absl::PermissionDeniedError(
          absl::StrCat(host_, " refused the credentials", what, " (", DescribeReply(reply),
                       "); check them with 'berth registry login ", host_, "'"));
    }
    return absl::UnauthenticatedError(absl::StrCat(host_, " requires authentication", what,
                                                   "; run 'berth registry login ", host_, "'"));
  };
  if (challenge.scheme == "basic") {
    if (!have_credentials || auth_.basic) return denied();
    auth_.basic = true;
    return true;
  }
  if (challenge.scheme != "bearer") {
    return absl::UnimplementedError(
        absl::StrCat(host_, " asks for unsupported '", challenge.scheme, "' authentication"));
  }
  auth_.realm = challenge.Param("realm");
  auth_.service = challenge.Param("service");
  std::set<std::string> wanted = auth_.scopes;
  std::string scope = challenge.Param("scope");
  if (!scope.empty()) {
    for (absl::string_view s : absl::StrSplit(scope, ' ', absl::SkipEmpty())) wanted.emplace(s);
  } else if (!repository_.empty()) {
    wanted.insert(
        absl::StrCat("repository:", repository_, access == Access::kPush ? ":pull,push" : ":pull"));
  }
  // The token we hold already covers everything asked: the answer is no.
  if (tried && wanted == auth_.scopes) return denied();
  RETURN_IF_ERROR(FetchToken(wanted));
  return true;
}

absl::Status RegistryClient::FetchToken(const std::set<std::string>& scopes) {
  if (!absl::StartsWith(auth_.realm, "https://") && !absl::StartsWith(auth_.realm, "http://")) {
    return absl::UnauthenticatedError(
        absl::StrCat(host_, " named a token realm that is not an http(s) URL"));
  }
  std::string query = absl::StrCat("service=", UrlEscape(auth_.service));
  for (const std::string& s : scopes) absl::StrAppend(&query, "&scope=", UrlEscape(s));
  const Credentials& creds = options_.credentials;
  HttpRequest request;
  request.max_body = kMaxTokenReply;
  absl::StatusOr<HttpResponse> reply;
  if (!creds.identity_token.empty()) {
    // OAuth2 refresh-token grant first (formats.md §3.2); a 404 means the
    // server only does the GET flow.
    request.method = "POST";
    request.url = auth_.realm;
    request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    request.body =
        absl::StrCat("grant_type=refresh_token&refresh_token=", UrlEscape(creds.identity_token),
                     "&client_id=berth&", query);
    reply = http_->Perform(request);
    if (reply.ok() && reply->status == 404) reply = absl::NotFoundError("");
  }
  if (creds.identity_token.empty() || !reply.ok()) {
    request = HttpRequest{};
    request.max_body = kMaxTokenReply;
    request.url = WithQuery(auth_.realm, query);
    if (!creds.username.empty() || !creds.password.empty()) {
      request.headers.push_back("Authorization: Basic " +
                                absl::Base64Escape(creds.username + ":" + creds.password));
    }
    reply = http_->Perform(request);
  }
  if (!reply.ok()) return Annotate(reply.status(), "fetching a token");
  if (reply->status == 401 || reply->status == 403) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the token service for ", host_, " refused ",
        creds.empty() ? "an anonymous request" : "the credentials", " (", DescribeReply(*reply),
        ")", creds.empty() ? absl::StrCat("; run 'berth registry login ", host_, "'") : ""));
  }
  if (reply->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("the token service for ", host_, " answered ", DescribeReply(*reply)));
  }
  nlohmann::json doc = nlohmann::json::parse(reply->body, nullptr, false);
  std::string token;
  if (!doc.is_discarded() && doc.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (doc.contains(key) && doc[key].is_string() && !doc[key].get<std::string>().empty()) {
        token = doc[key].get<std::string>();
        break;
      }
    }
  }
  if (token.empty() || token.size() > 64 * 1024 ||
      token.find_first_of("\r\n ") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token service for ", host_, " sent no usable token"));
  }
  auth_.token = std::move(token);
  auth_.scopes = scopes;
  return absl::OkStatus();
}

absl::Status RegistryClient::Ping() {
  HttpRequest request;
  request.url = BaseUrl() + "/v2/";
  ASSIGN_OR_RETURN(HttpResponse reply, Send(request, Access::kPull));
  if (reply.status == 200) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(host_, " answered /v2/ with ", DescribeReply(reply)));
}

absl::StatusOr<FetchedManifest> RegistryClient::GetManifest(
    const std::string& ref, const std::vector<std::string>& accept) {
  HttpRequest request;
  request.url = absl::StrCat(BaseUrl(), "/v2/", repository_, "/manifests/", ref);
  request.headers.push_back("Accept: " + absl::StrJoin(accept, ", "));
  request.max_body = options_.max_manifest_bytes;
  absl::StatusOr<HttpResponse> reply = Send(request, Access::kPull);
  if (!reply.ok()) {
    if (absl::IsResourceExhausted(reply.status())) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the manifest is larger than ", options_.max_manifest_bytes, " bytes (refused)"));
    }
    return reply.status();
  }
  if (reply->status == 404) {
    return absl::NotFoundError(absl::StrCat(host_, "/", repository_, ":", ref, " does not exist (",
                                            DescribeReply(*reply), ")"));
  }
  if (reply->status != 200) {
    return absl::UnavailableError(absl::StrCat("fetching the manifest: ", DescribeReply(*reply)));
  }
  FetchedManifest m;
  m.bytes = std::move(reply->body);
  m.digest = Sha256Of(m.bytes);
  if (absl::StartsWith(ref, "sha256:") && m.digest != ref) {
    return absl::DataLossError(absl::StrCat("the registry sent a manifest whose digest is ",
                                            m.digest, ", not the requested ", ref));
  }
  std::string claimed = reply->Header("docker-content-digest");
  if (IsValidDigest(claimed) && claimed != m.digest) {
    return absl::DataLossError(absl::StrCat("the registry claims manifest digest ", claimed,
                                            " but sent bytes whose digest is ", m.digest));
  }
  m.media_type = MediaTypeOf(*reply);
  return m;
}

absl::Status RegistryClient::FetchBlob(const std::string& digest, int64_t size, BlobSink& sink,
                                       const ProgressFn& progress) {
  if (!IsValidDigest(digest)) return absl::InvalidArgumentError("invalid blob digest");
  if (size < 0) return absl::InvalidArgumentError("negative blob size");
  int64_t done = 0;
  Hasher hasher(DigestAlgorithm::kSha256);
  int attempts = 0;
  int backoff = options_.backoff_initial_ms;
  for (;;) {
    HttpRequest request;
    request.url = absl::StrCat(BaseUrl(), "/v2/", repository_, "/blobs/", digest);
    const int64_t asked_from = done;
    if (asked_from > 0) request.headers.push_back(absl::StrCat("Range: bytes=", asked_from, "-"));
    request.on_start = [&](const HttpResponse& r) -> absl::Status {
      if (asked_from > 0 && r.status == 200) {
        // The server ignored the Range: start over.
        RETURN_IF_ERROR(sink.Restart());
        hasher = Hasher(DigestAlgorithm::kSha256);
        done = 0;
      } else if (r.status == 206 &&
                 (asked_from == 0 || !absl::StartsWith(r.Header("content-range"),
                                                       absl::StrCat("bytes ", asked_from, "-")))) {
        return absl::DataLossError("the registry answered with a range that was not asked for");
      } else if (r.status != 200 && r.status != 206) {
        return absl::DataLossError(absl::StrCat("unexpected HTTP ", r.status, " for a blob"));
      }
      int64_t announced = 0;
      if (absl::SimpleAtoi(r.Header("content-length"), &announced) && done + announced > size) {
        return absl::DataLossError(absl::StrCat("the registry announces ", done + announced,
                                                " bytes, more than the descriptor's ", size));
      }
      return absl::OkStatus();
    };
    request.sink = [&](std::span<const uint8_t> data) -> absl::Status {
      if (done + static_cast<int64_t>(data.size()) > size) {
        return absl::DataLossError(
            absl::StrCat("the registry sent more than the descriptor's ", size, " bytes"));
      }
      hasher.Update(data);
      RETURN_IF_ERROR(sink.Write(data));
      done += static_cast<int64_t>(data.size());
      if (progress) progress(done);
      return absl::OkStatus();
    };
    absl::StatusOr<HttpResponse> reply = Send(request, Access::kPull);
    bool broken = !reply.ok() && absl::IsUnavailable(reply.status());
    if (!reply.ok() && !broken) return reply.status();
    if (reply.ok() && reply->status == 404) {
      return absl::NotFoundError(absl::StrCat("blob ", digest, " is not in ", host_, "/",
                                              repository_, " (", DescribeReply(*reply), ")"));
    }
    if (reply.ok() && reply->status != 200 && reply->status != 206) {
      return absl::UnavailableError(
          absl::StrCat("fetching blob ", digest, ": ", DescribeReply(*reply)));
    }
    if (reply.ok() && done == size) break;
    // A broken or short transfer: resume from `done`.
    if (++attempts >= options_.max_attempts) {
      return absl::DataLossError(absl::StrCat(
          "the download of ", digest, " was truncated at ", done, " of ", size, " bytes after ",
          attempts, " attempts", broken ? absl::StrCat(" (", reply.status().message(), ")") : ""));
    }
    Sleep(backoff);
    backoff *= 2;
  }
  std::string got = "sha256:" + hasher.FinishHex();
  if (got != digest) {
    return absl::DataLossError(
        absl::StrCat("the registry sent a blob whose digest is ", got, ", not ", digest));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegistryClient::FetchSmallBlob(const std::string& digest, int64_t size,
                                                           size_t max_bytes) {
  if (size < 0 || static_cast<size_t>(size) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "blob ", digest, " is ", size, " bytes, more than the ", max_bytes, " allowed"));
  }
  struct StringSink : BlobSink {
    std::string bytes;
    absl::Status Write(std::span<const uint8_t> d) override {
      bytes.append(reinterpret_cast<const char*>(d.data()), d.size());
      return absl::OkStatus();
    }
    absl::Status Restart() override {
      bytes.clear();
      return absl::OkStatus();
    }
  } sink;
  RETURN_IF_ERROR(FetchBlob(digest, size, sink));
  return std::move(sink.bytes);
}

absl::StatusOr<bool> RegistryClient::BlobExists(const std::string& digest) {
  if (!IsValidDigest(digest)) return absl::InvalidArgumentError("invalid blob digest");
  HttpRequest request;
  request.method = "HEAD";
  request.url = absl::StrCat(BaseUrl(), "/v2/", repository_, "/blobs/", digest);
  ASSIGN_OR_RETURN(HttpResponse reply, Send(request, Access::kPush));
  if (reply.status == 200) return true;
  if (reply.status == 404) return false;
  return absl::UnavailableError(absl::StrCat("checking blob ", digest, ": ", DescribeReply(reply)));
}

absl::Status RegistryClient::PushBlob(const std::string& digest, int fd, int64_t size,
                                      int64_t chunk_size, const std::string& mount_from,
                                      const ProgressFn& progress) {
  ASSIGN_OR_RETURN(bool exists, BlobExists(digest));
  if (exists) {
    if (progress) progress(size);
    return absl::OkStatus();
  }
  HttpRequest post;
  post.method = "POST";
  post.url = absl::StrCat(BaseUrl(), "/v2/", repository_, "/blobs/uploads/");
  if (!mount_from.empty()) {
    post.url += absl::StrCat("?mount=", UrlEscape(digest), "&from=", UrlEscape(mount_from));
  }
  ASSIGN_OR_RETURN(HttpResponse opened, Send(post, Access::kPush));
  if (opened.status == 201) {
    if (progress) progress(size);
    return absl::OkStatus();  // mounted from another repository
  }
  if (opened.status != 202 || opened.Header("location").empty()) {
    return absl::UnavailableError(absl::StrCat("starting an upload: ", DescribeReply(opened)));
  }
  ASSIGN_OR_RETURN(std::string location, ResolveUrl(BaseUrl() + "/", opened.Header("location")));
  if (chunk_size > 0 && size > chunk_size) {
    return UploadChunks(location, digest, fd, size, chunk_size, progress);
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = WithQuery(location, "digest=" + UrlEscape(digest));
  put.headers.push_back("Content-Type: application/octet-stream");
  put.body_fd = fd;
  put.body_length = size;
  ASSIGN_OR_RETURN(HttpResponse done, Send(put, Access::kPush));
  if (done.status != 201) {
    return absl::UnavailableError(
        absl::StrCat("uploading blob ", digest, ": ", DescribeReply(done)));
  }
  if (progress) progress(size);
  return absl::OkStatus();
}

absl::Status RegistryClient::UploadChunks(std::string location, const std::string& digest, int fd,
                                          int64_t size, int64_t chunk_size,
                                          const ProgressFn& progress) {
  for (int64_t offset = 0; offset < size; offset += chunk_size) {
    int64_t length = std::min(chunk_size, size - offset);
    HttpRequest patch;
    patch.method = "PATCH";
    patch.url = location;
    patch.headers.push_back("Content-Type: application/octet-stream");
    patch.headers.push_back(absl::StrCat("Content-Range: ", offset, "-", offset + length - 1));
    patch.body_fd = fd;
    patch.body_offset = offset;
    patch.body_length = length;
    ASSIGN_OR_RETURN(HttpResponse reply, Send(patch, Access::kPush));
    if (reply.status != 202 && reply.status != 204 && reply.status != 201) {
      return absl::UnavailableError(
          absl::StrCat("uploading a chunk of blob ", digest, ": ", DescribeReply(reply)));
    }
    if (!reply.Header("location").empty()) {
      ASSIGN_OR_RETURN(location, ResolveUrl(location, reply.Header("location")));
    }
    if (progress) progress(offset + length);
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = WithQuery(location, "digest=" + UrlEscape(digest));
  ASSIGN_OR_RETURN(HttpResponse done, Send(put, Access::kPush));
  if (done.status != 201) {
    return absl::UnavailableError(
        absl::StrCat("finishing blob ", digest, ": ", DescribeReply(done)));
  }
  return absl::OkStatus();
}

absl::Status RegistryClient::PushSmallBlob(const std::string& digest, const std::string& bytes) {
  ASSIGN_OR_RETURN(bool exists, BlobExists(digest));
  if (exists) return absl::OkStatus();
  HttpRequest post;
  post.method = "POST";
  post.url = absl::StrCat(BaseUrl(), "/v2/", repository_, "/blobs/uploads/");
  ASSIGN_OR_RETURN(HttpResponse opened, Send(post, Access::kPush));
  if (opened.status != 202 || opened.Header("location").empty()) {
    return absl::UnavailableError(absl::StrCat("starting an upload: ", DescribeReply(opened)));
  }
  ASSIGN_OR_RETURN(std::string location, ResolveUrl(BaseUrl() + "/", opened.Header("location")));
  HttpRequest put;
  put.method = "PUT";
  put.url = WithQuery(location, "digest=" + UrlEscape(digest));
  put.headers.push_back("Content-Type: application/octet-stream");
  put.body = bytes;
  ASSIGN_OR_RETURN(HttpResponse done, Send(put, Access::kPush));
  if (done.status != 201) {
    return absl::UnavailableError(
        absl::StrCat("uploading blob ", digest, ": ", DescribeReply(done)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegistryClient::PutManifest(const std::string& tag,
                                                        const std::string& media_type,
                                                        const std::string& bytes) {
  HttpRequest put;
  put.method = "PUT";
  put.url = absl::StrCat(BaseUrl(), "/v2/", repository_, "/manifests/", tag);
  put.headers.push_back("Content-Type: " + media_type);
  put.body = bytes;
  ASSIGN_OR_RETURN(HttpResponse done, Send(put, Access::kPush));
  if (done.status != 201) {
    return absl::UnavailableError(absl::StrCat("uploading the manifest: ", DescribeReply(done)));
  }
  return Sha256Of(bytes);
}

}  // namespace berth::oras
