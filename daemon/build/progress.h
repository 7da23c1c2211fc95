// A build's phases as the client sees them: each phase's start, progress
// (bytes done of a total, when known) and end with its duration; section
// output and INFO/WARNING lines; and the closing summary of phase times.
// Everything goes out on the Build RPC's stream (build.proto BuildOutput).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "berth/v1/build.pb.h"

namespace berth::daemon::build {

class Progress {
 public:
  using Sink = std::function<bool(const v1::BuildOutput&)>;
  explicit Progress(Sink sink) : sink_(std::move(sink)) {}

  // Starts a phase; the previous one must have ended.
  void Begin(std::string name, std::string detail = "");
  // At most ten updates a second reach the client.
  void Update(int64_t done, int64_t total);
  void End();
  void Info(absl::string_view text);
  void Warning(absl::string_view text);
  void Log(absl::string_view data);

  const std::vector<v1::BuildPhase>& phases() const { return finished_; }

 private:
  using Clock = std::chrono::steady_clock;
  void Send(const v1::BuildOutput& out);

  Sink sink_;
  v1::BuildPhase current_;
  bool open_ = false;
  Clock::time_point started_;
  Clock::time_point last_update_;
  std::vector<v1::BuildPhase> finished_;
};

// Ends a phase when it goes out of scope (also on the error path).
class PhaseScope {
 public:
  PhaseScope(Progress& p, std::string name, std::string detail = "") : p_(p) {
    p_.Begin(std::move(name), std::move(detail));
  }
  ~PhaseScope() { p_.End(); }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  Progress& p_;
};

}  // namespace berth::daemon::build
