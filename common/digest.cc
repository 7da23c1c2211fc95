#include "common/digest.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth {

struct Hasher::State {
  EVP_MD_CTX* ctx = nullptr;
  ~State() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(DigestAlgorithm alg) : state_(std::make_unique<State>()) {
  const EVP_MD* md = alg == DigestAlgorithm::kSha256   ? EVP_sha256()
                     : alg == DigestAlgorithm::kSha384 ? EVP_sha384()
                                                       : EVP_sha512();
  state_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(state_->ctx, md, nullptr);
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::span<const uint8_t> data) {
  EVP_DigestUpdate(state_->ctx, data.data(), data.size());
}

std::string Hasher::FinishHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

absl::StatusOr<std::string> DigestRange(int fd, int64_t offset, int64_t length,
                                        DigestAlgorithm alg) {
  Hasher h(alg);
  std::vector<uint8_t> buf(1 << 20);
  for (int64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<int64_t>(length - done, buf.size()));
    RETURN_IF_ERROR(PreadFull(fd, std::span(buf.data(), n), offset + done));
    h.Update(std::span(buf.data(), n));
    done += n;
  }
  return h.FinishHex();
}

absl::StatusOr<std::string> DigestStream(int fd, DigestAlgorithm alg) {
  Hasher h(alg);
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) break;
    h.Update(std::span(buf.data(), static_cast<size_t>(n)));
  }
  return h.FinishHex();
}

}  // namespace berth
