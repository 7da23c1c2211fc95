#include "daemon/server/refusal_log.h"

#include <string_view>

#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr auto kQuietPeriod = std::chrono::seconds(5);
// Kinds come from the daemon's own messages, but a bound keeps a hostile
// variety of them from growing the table.
constexpr size_t kMaxKinds = 4096;
constexpr size_t kKindBytes = 96;

std::string KindOf(std::string_view what, std::string_view why) {
  std::string kind(what);
  kind += ':';
  for (char c : why) {
    if (kind.size() >= kKindBytes) break;
    if (c < '0' || c > '9') kind += c;
  }
  return kind;
}

}  // namespace

void RefusalLog::Warn(const PeerIdentity& peer, absl::string_view what_view,
                      absl::string_view why_view) {
  std::string_view what(what_view.data(), what_view.size());
  std::string_view why(why_view.data(), why_view.size());
  auto now = std::chrono::steady_clock::now();
  if (last_.size() >= kMaxKinds) last_.clear();
  auto [it, fresh] = last_.try_emplace(std::make_pair(peer.uid, KindOf(what, why)));
  Last& last = it->second;
  if (!fresh && now - last.at < kQuietPeriod) {
    ++last.suppressed;
    spdlog::debug("{} from {}: {}", what, DescribePeer(peer), why);
    return;
  }
  if (last.suppressed > 0) {
    spdlog::warn("{} from {}: {} ({} more refusals of uid {} since the last warning)", what,
                 DescribePeer(peer), why, last.suppressed, peer.uid);
  } else {
    spdlog::warn("{} from {}: {}", what, DescribePeer(peer), why);
  }
  last = Last{now, 0};
}

RefusalLog& AcceptLoopRefusals() {
  static auto* log = new RefusalLog();
  return *log;
}

}  // namespace berth::daemon
