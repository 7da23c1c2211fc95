// Streaming message digests (OpenSSL EVP), for image and blob verification.
//
// Hashing always streams from a descriptor in bounded chunks, so a multi-GB
// partition or layer never has to fit in memory, and uses OpenSSL so SHA-NI
// is used where the CPU has it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace berth {

enum class DigestAlgorithm { kSha256, kSha384, kSha512 };

class Hasher {
 public:
  explicit Hasher(DigestAlgorithm alg);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(std::span<const uint8_t> data);
  // Lower-case hex of the digest; the hasher must not be used afterwards.
  std::string FinishHex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Hex digest of `length` bytes of `fd` starting at `offset` (pread, 1 MiB chunks).
absl::StatusOr<std::string> DigestRange(int fd, int64_t offset, int64_t length,
                                        DigestAlgorithm alg);

// Hex digest of a stream read from its current position to EOF.
absl::StatusOr<std::string> DigestStream(int fd, DigestAlgorithm alg);

}  // namespace berth
