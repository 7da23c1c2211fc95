// What `berth verify` prints: Apptainer's text layout (signer lines and an
// "Objects verified" table per signature) or its --json document.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "sif/image.h"
#include "trust/verify.h"

namespace berth::client {

// Text for stdout after a successful verification.
std::string RenderVerifyText(const sif::Image& image, const trust::VerifyReport& report);

// The --json document; `failure` is the reason when verification failed.
std::string RenderVerifyJson(const sif::Image& image, const trust::VerifyReport& report,
                             const absl::Status& failure);

}  // namespace berth::client
