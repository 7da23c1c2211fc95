// x509 certificates for `verify --certificate` (Apptainer 1.2+): loading a
// PEM certificate and PEM bundles, and checking that a certificate chains
// to a trusted root and may sign code, with OpenSSL. Runs in the client,
// as the user; every file it reads is the user's own input.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

typedef struct x509_st X509;
typedef struct x509_store_st X509_STORE;

namespace berth::trust {

struct X509Free {
  void operator()(X509* c) const;
};
struct X509StoreFree {
  void operator()(X509_STORE* s) const;
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreFree>;

// The first PEM certificate in `path`.
absl::StatusOr<X509Ptr> LoadCertificate(const std::string& path);
// Every PEM block in `path`; each must be a certificate, and there must be one.
absl::StatusOr<std::vector<X509Ptr>> LoadCertificateBundle(const std::string& path);

// The trust anchors: `roots` when given (each is an anchor, as Apptainer's
// root pool), else the system's default roots.
absl::StatusOr<X509StorePtr> TrustStore(const std::vector<X509Ptr>* roots);

// Builds and checks the chain from `leaf` (named `leaf_path` in messages)
// through `intermediates` to an anchor of TrustStore(roots): signatures,
// validity dates, CA constraints, and Apptainer's key-usage rule: every
// certificate of the chain that has an extended key usage must allow code
// signing (or any usage). Returns the chain, leaf first, anchor last.
absl::StatusOr<std::vector<X509Ptr>> VerifyCodeSigningChain(
    X509* leaf, const std::string& leaf_path, const std::vector<X509Ptr>& intermediates,
    const std::vector<X509Ptr>* roots);

// "CN=...,O=..." for messages.
std::string SubjectOf(X509* cert);

}  // namespace berth::trust
