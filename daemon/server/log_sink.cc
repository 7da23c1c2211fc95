#include "daemon/server/log_sink.h"

#include <string>
#include <utility>

#include "common/log_escape.h"
#include "spdlog/details/log_msg.h"
#include "spdlog/formatter.h"

namespace berth::daemon {
namespace {

class Escaping final : public spdlog::sinks::sink {
 public:
  explicit Escaping(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override {
    if (!inner_->should_log(msg.level)) return;
    std::string escaped = EscapeForLog(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->log(copy);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

std::shared_ptr<spdlog::sinks::sink> EscapingSink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<Escaping>(std::move(inner));
}

}  // namespace berth::daemon
