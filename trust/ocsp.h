// OCSP revocation checks for `verify --certificate --ocsp-verify`
// (Apptainer 1.2+): every certificate of a verified chain but its trust
// anchor is looked up at the responder its Authority Information Access
// names (plain HTTP, OpenSSL's client), and the signed answer is checked.
// Runs in the client, as the user.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "trust/x509_chain.h"

namespace berth::trust {

// `chain` as VerifyCodeSigningChain returns it (leaf first, anchor last);
// `roots` as given to it. Fails unless every responder signs a fresh "good".
absl::Status CheckRevocation(const std::vector<X509Ptr>& chain, const std::vector<X509Ptr>* roots,
                             int timeout_seconds);

}  // namespace berth::trust
