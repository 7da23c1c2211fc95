#include "client/registry/progress.h"

#include "absl/strings/str_format.h"

namespace berth::client {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f %s", bytes, units[u])
                : absl::StrFormat("%.1f %s", bytes, units[u]);
}

ProgressDisplay::ProgressDisplay(bool quiet, bool tty) : quiet_(quiet), tty_(tty) {}

void ProgressDisplay::Update(const v1::TransferProgress& p) {
  if (quiet_) return;
  auto [it, inserted] = items_.try_emplace(p.digest());
  Item& item = it->second;
  if (inserted) item.start = std::chrono::steady_clock::now();
  if (item.finished) return;
  if (p.finished()) {
    item.finished = true;
    Draw(p, item, true);
  } else if (tty_) {
    Draw(p, item, false);
  }
}

void ProgressDisplay::Draw(const v1::TransferProgress& p, const Item& item, bool final_line) {
  std::string name = absl::StrFormat("%s %s", p.what(), p.digest().substr(7, 12));
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - item.start).count();
  std::string line;
  if (final_line) {
    line =
        p.from_cache()
            ? absl::StrFormat("INFO:    %s: %s, in the node cache", name, HumanBytes(p.total()))
            : absl::StrFormat("INFO:    %s: %s done in %.1fs (%s/s)", name, HumanBytes(p.total()),
                              secs, HumanBytes(secs > 0 ? p.total() / secs : 0));
  } else {
    double rate = secs > 0 ? p.done() / secs : 0;
    double eta = rate > 0 ? (p.total() - p.done()) / rate : 0;
    int pct = p.total() > 0 ? static_cast<int>(100.0 * p.done() / p.total()) : 0;
    int filled = pct / 5;
    line = absl::StrFormat("%s [%s%s] %3d%% %s / %s %s/s ETA %.0fs", name, std::string(filled, '='),
                           std::string(20 - filled, ' '), pct, HumanBytes(p.done()),
                           HumanBytes(p.total()), HumanBytes(rate), eta);
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
    line_open_ = !final_line;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void ProgressDisplay::Done() {
  if (line_open_) std::fputs("\n", stderr);
  line_open_ = false;
}

}  // namespace berth::client
