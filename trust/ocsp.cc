#include "trust/ocsp.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace berth::trust {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct RequestFree {
  void operator()(OCSP_REQUEST* r) const { OCSP_REQUEST_free(r); }
};
struct ResponseFree {
  void operator()(OCSP_RESPONSE* r) const { OCSP_RESPONSE_free(r); }
};
struct BasicFree {
  void operator()(OCSP_BASICRESP* r) const { OCSP_BASICRESP_free(r); }
};
struct CertIdFree {
  void operator()(OCSP_CERTID* r) const { OCSP_CERTID_free(r); }
};
struct StringStackFree {
  void operator()(STACK_OF(OPENSSL_STRING) * s) const { X509_email_free(s); }
};
struct CertStackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // borrowed certificates
};
struct UrlParts {
  char *host = nullptr, *port = nullptr, *path = nullptr;
  ~UrlParts() {
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
  }
};

// Responses are signed, so plain HTTP is what responders serve (RFC 6960
// A.1); an https:// responder would need a TLS policy of its own.
constexpr size_t kMaxResponseBytes = 1 << 20;

std::string TimeText(const ASN1_GENERALIZEDTIME* t) {
  if (t == nullptr) return "";
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  ASN1_GENERALIZEDTIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::unique_ptr<OCSP_RESPONSE, ResponseFree>> Ask(const std::string& url,
                                                                 OCSP_REQUEST* req,
                                                                 int timeout_seconds) {
  UrlParts u;
  int ssl = 0;
  if (OSSL_HTTP_parse_url(url.c_str(), &ssl, nullptr, &u.host, &u.port, nullptr, &u.path, nullptr,
                          nullptr) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("cannot parse OCSP responder URL '", url, "'"));
  }
  if (ssl) {
    return absl::UnimplementedError(absl::StrCat(
        "OCSP responder URL '", url, "' is https; berth asks responders over plain http"));
  }
  std::unique_ptr<BIO, BioFree> body(
      ASN1_item_i2d_mem_bio(ASN1_ITEM_rptr(OCSP_REQUEST), reinterpret_cast<ASN1_VALUE*>(req)));
  if (!body) return absl::InternalError("encoding the OCSP request");
  std::unique_ptr<BIO, BioFree> answer(
      OSSL_HTTP_transfer(nullptr, u.host, u.port, u.path, 0, nullptr, nullptr, nullptr, nullptr,
                         nullptr, nullptr, 0, nullptr, "application/ocsp-request", body.get(),
                         "application/ocsp-response", 1, kMaxResponseBytes, timeout_seconds, 0));
  if (!answer) {
    unsigned long e = ERR_peek_last_error();
    char text[256] = "no answer";
    if (e != 0) ERR_error_string_n(e, text, sizeof text);
    ERR_clear_error();
    return absl::UnavailableError(absl::StrCat("OCSP Send Request err: ", url, ": ", text));
  }
  std::unique_ptr<OCSP_RESPONSE, ResponseFree> resp(d2i_OCSP_RESPONSE_bio(answer.get(), nullptr));
  ERR_clear_error();
  if (!resp) {
    return absl::InvalidArgumentError(
        absl::StrCat("OCSP response err: ", url, " sent no OCSP response"));
  }
  return resp;
}

// One certificate, asked of its own responder about `issuer`'s record.
absl::Status CheckOne(X509* cert, X509* issuer, STACK_OF(X509) * known, X509_STORE* store,
                      int timeout_seconds) {
  std::unique_ptr<STACK_OF(OPENSSL_STRING), StringStackFree> urls(X509_get1_ocsp(cert));
  if (!urls || sk_OPENSSL_STRING_num(urls.get()) == 0) {
    return absl::FailedPreconditionError("certificate does not support OCSP");
  }
  const std::string url = sk_OPENSSL_STRING_value(urls.get(), 0);
  // SHA-1 in the certificate ID, as Apptainer and nearly every responder expect.
  std::unique_ptr<OCSP_CERTID, CertIdFree> id(OCSP_cert_to_id(EVP_sha1(), cert, issuer));
  std::unique_ptr<OCSP_REQUEST, RequestFree> req(OCSP_REQUEST_new());
  if (!id || !req || OCSP_request_add0_id(req.get(), OCSP_CERTID_dup(id.get())) == nullptr ||
      OCSP_request_add1_nonce(req.get(), nullptr, -1) != 1) {
    ERR_clear_error();
    return absl::InternalError("building the OCSP request");
  }
  ASSIGN_OR_RETURN(auto resp, Ask(url, req.get(), timeout_seconds));
  const int rstatus = OCSP_response_status(resp.get());
  if (rstatus != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return absl::PermissionDeniedError(absl::StrCat("OCSP response err: responder says '",
                                                    OCSP_response_status_str(rstatus), "'"));
  }
  std::unique_ptr<OCSP_BASICRESP, BasicFree> basic(OCSP_response_get1_basic(resp.get()));
  if (!basic) return absl::PermissionDeniedError("OCSP response err: no basic response");
  // The answer must be signed by the issuer or a responder it delegated
  // to (id-kp-OCSPSigning), chaining to the same trust anchors.
  if (OCSP_basic_verify(basic.get(), known, store, 0) != 1) {
    ERR_clear_error();
    return absl::PermissionDeniedError(
        "OCSP response err: the response's signature does not verify (ocsp response is "
        "rejected)");
  }
  // A replayed answer to an earlier question carries another nonce.
  if (OCSP_check_nonce(req.get(), basic.get()) == 0) {
    return absl::PermissionDeniedError("OCSP response err: nonce mismatch (replayed response)");
  }
  int status = -1, reason = -1;
  ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
  if (OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update,
                            &next_update) != 1) {
    return absl::PermissionDeniedError("OCSP response err: no status for this certificate");
  }
  // RFC 6960 4.2.2.1: an answer from the future or past its nextUpdate is unreliable.
  if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
    ERR_clear_error();
    return absl::PermissionDeniedError("unreliable OCSP response");
  }
  switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
      return absl::OkStatus();
    case V_OCSP_CERTSTATUS_REVOKED:
      return absl::PermissionDeniedError(
          absl::StrCat("certificate revoked at '", TimeText(revoked_at),
                       "'. Revocation reason code: '", reason < 0 ? 0 : reason, "'"));
    default:
      return absl::PermissionDeniedError("status unknown. certificate cannot be trusted");
  }
}

}  // namespace

absl::Status CheckRevocation(const std::vector<X509Ptr>& chain, const std::vector<X509Ptr>* roots,
                             int timeout_seconds) {
  ASSIGN_OR_RETURN(X509StorePtr store, TrustStore(roots));
  std::unique_ptr<STACK_OF(X509), CertStackFree> known(sk_X509_new_null());
  for (const X509Ptr& c : chain) sk_X509_push(known.get(), c.get());
  // The anchor is trusted as configured; nobody above it could answer for it.
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    X509* cert = chain[i].get();
    absl::Status st = CheckOne(cert, chain[i + 1].get(), known.get(), store.get(), timeout_seconds);
    if (!st.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("OCSP verification has failed: '", SubjectOf(cert), "': ", st.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::trust
