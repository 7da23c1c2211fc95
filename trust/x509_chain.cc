#include "trust/x509_chain.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace berth::trust {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;

std::unique_ptr<BIO, BioFree> OpenRead(const std::string& path) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_file(path.c_str(), "r"));
}

absl::Status CannotRead(const std::string& path) {
  return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
}

// The chain reaches no trusted root (Go: UnknownAuthorityError).
bool UnknownAuthority(int err) {
  switch (err) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
      return true;
    default:
      return false;
  }
}

// Go's wording (Apptainer's messages) for the failures a user meets.
std::string ChainError(int err) {
  if (UnknownAuthority(err)) return "x509: certificate signed by unknown authority";
  if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
    return "x509: certificate has expired or is not yet valid";
  }
  return absl::StrCat("x509: ", X509_verify_cert_error_string(err));
}

std::string ChainHint(int err, bool have_intermediates, bool have_roots) {
  if (!UnknownAuthority(err)) return "";
  if (!have_intermediates) {
    return "; give the issuing CAs with --certificate-intermediates and the root with "
           "--certificate-roots";
  }
  return have_roots ? "; the chain ends at no root of --certificate-roots"
                    : "; give its root CA with --certificate-roots";
}

// Apptainer (Go's x509 KeyUsages=[CodeSigning]): a certificate without the
// extended key usage extension is unrestricted; one with it must list code
// signing or any usage. Checked on every certificate of the chain.
bool AllowsCodeSigning(X509* cert) {
  uint32_t eku = X509_get_extended_key_usage(cert);
  if (eku == UINT32_MAX) return true;  // no extension
  return (eku & (XKU_CODE_SIGN | XKU_ANYEKU)) != 0;
}

std::string TimeText(const ASN1_TIME* t) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

void X509Free::operator()(X509* c) const {
  X509_free(c);
}
void X509StoreFree::operator()(X509_STORE* s) const {
  X509_STORE_free(s);
}

std::string SubjectOf(X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<X509Ptr> LoadCertificate(const std::string& path) {
  auto bio = OpenRead(path);
  if (!bio) return CannotRead(path);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a PEM certificate"));
  }
  return cert;
}

absl::StatusOr<std::vector<X509Ptr>> LoadCertificateBundle(const std::string& path) {
  auto bio = OpenRead(path);
  if (!bio) return CannotRead(path);
  std::vector<X509Ptr> out;
  for (;;) {
    char *name = nullptr, *header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      unsigned long e = ERR_peek_last_error();
      ERR_clear_error();
      // The end of the file, or a block that is not PEM.
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) break;
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": certificate ", out.size() + 1, " is not valid PEM"));
    }
    const bool is_cert = std::strcmp(name, "CERTIFICATE") == 0;
    const unsigned char* p = data;
    X509Ptr cert(is_cert ? d2i_X509(nullptr, &p, len) : nullptr);
    const bool whole = cert && p == data + len;
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    if (!whole) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": PEM block ", out.size() + 1, " is not a certificate"));
    }
    out.push_back(std::move(cert));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no PEM certificate"));
  }
  return out;
}

absl::StatusOr<X509StorePtr> TrustStore(const std::vector<X509Ptr>* roots) {
  X509StorePtr store(X509_STORE_new());
  if (!store) return absl::ResourceExhaustedError("allocating an x509 store");
  if (roots == nullptr) {
    if (X509_STORE_set_default_paths(store.get()) != 1) {
      ERR_clear_error();
      return absl::FailedPreconditionError(
          "cannot load the system's root certificates; give --certificate-roots");
    }
    return store;
  }
  for (const X509Ptr& c : *roots) X509_STORE_add_cert(store.get(), c.get());
  ERR_clear_error();
  // Every given root is an anchor, self-signed or not (Go's root pool).
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  return store;
}

absl::StatusOr<std::vector<X509Ptr>> VerifyCodeSigningChain(
    X509* leaf, const std::string& leaf_path, const std::vector<X509Ptr>& intermediates,
    const std::vector<X509Ptr>* roots) {
  ASSIGN_OR_RETURN(X509StorePtr store, TrustStore(roots));
  StackPtr untrusted(sk_X509_new_null());
  for (const X509Ptr& c : intermediates) {
    X509_up_ref(c.get());
    sk_X509_push(untrusted.get(), c.get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    return absl::InternalError("setting up x509 verification");
  }
  const int ok = X509_verify_cert(ctx.get());
  ERR_clear_error();
  if (ok != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string where;
    if (at != nullptr && X509_cmp(at, leaf) != 0) {
      where = absl::StrCat(" (at '", SubjectOf(at), "')");
    }
    if (at != nullptr && err == X509_V_ERR_CERT_HAS_EXPIRED) {
      absl::StrAppend(&where, " (valid until ", TimeText(X509_get0_notAfter(at)), ")");
    } else if (at != nullptr && err == X509_V_ERR_CERT_NOT_YET_VALID) {
      absl::StrAppend(&where, " (valid from ", TimeText(X509_get0_notBefore(at)), ")");
    }
    return absl::PermissionDeniedError(
        absl::StrCat("certificate ", leaf_path, ": ", ChainError(err), where,
                     ChainHint(err, !intermediates.empty(), roots != nullptr)));
  }
  StackPtr chain(X509_STORE_CTX_get1_chain(ctx.get()));
  std::vector<X509Ptr> out;
  for (int i = 0; i < sk_X509_num(chain.get()); ++i) {
    X509* c = sk_X509_value(chain.get(), i);
    if (!AllowsCodeSigning(c)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "certificate ", leaf_path, ": x509: certificate specifies an incompatible key usage",
          i == 0 ? "" : absl::StrCat(" (at '", SubjectOf(c), "')"),
          "; its extended key usage must include code signing"));
    }
    X509_up_ref(c);
    out.emplace_back(c);
  }
  return out;
}

}  // namespace berth::trust
