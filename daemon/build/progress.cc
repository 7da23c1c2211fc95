#include "daemon/build/progress.h"

namespace berth::daemon::build {

void Progress::Send(const v1::BuildOutput& out) {
  if (sink_) (void)sink_(out);
}

void Progress::Begin(std::string name, std::string detail) {
  if (open_) End();
  current_ = v1::BuildPhase();
  current_.set_name(std::move(name));
  current_.set_detail(std::move(detail));
  open_ = true;
  started_ = Clock::now();
  last_update_ = started_;
  v1::BuildOutput out;
  *out.mutable_phase() = current_;
  Send(out);
}

void Progress::Update(int64_t done, int64_t total) {
  if (!open_) return;
  auto now = Clock::now();
  const bool first = current_.done() == 0 && current_.total() == 0;
  current_.set_done(done);
  current_.set_total(total);
  // At most ten a second, but the first and the last always: a short
  // phase still shows its percent.
  const bool last = total > 0 && done >= total;
  if (!first && !last && now - last_update_ < std::chrono::milliseconds(100)) return;
  last_update_ = now;
  v1::BuildOutput out;
  *out.mutable_phase() = current_;
  Send(out);
}

void Progress::End() {
  if (!open_) return;
  open_ = false;
  current_.set_finished(true);
  current_.set_seconds(std::chrono::duration<double>(Clock::now() - started_).count());
  finished_.push_back(current_);
  v1::BuildOutput out;
  *out.mutable_phase() = current_;
  Send(out);
}

void Progress::Info(absl::string_view text) {
  v1::BuildOutput out;
  out.mutable_message()->set_text(std::string(text));
  Send(out);
}

void Progress::Warning(absl::string_view text) {
  v1::BuildOutput out;
  out.mutable_message()->set_warning(true);
  out.mutable_message()->set_text(std::string(text));
  Send(out);
}

void Progress::Log(absl::string_view data) {
  v1::BuildOutput out;
  out.mutable_log()->set_data(std::string(data));
  Send(out);
}

}  // namespace berth::daemon::build
