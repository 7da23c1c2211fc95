#include "client/doctor/doctor_command.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/doctor/host_checks.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "proto/doctor_check.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

// The squashfs probes of a daemon's first report mount five images.
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

absl::StatusOr<v1::DoctorReply> AskDaemon(const std::string& socket_flag) {
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, /*user_daemon_flag=*/false));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::DoctorReply reply;
  grpc::Status status = stub->Doctor(&context, v1::DoctorRequest(), &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "asking berthd");
  return reply;
}

v1::DoctorReply Gather(const std::string& socket_flag) {
  absl::StatusOr<v1::DoctorReply> daemon = AskDaemon(socket_flag);
  v1::DoctorReply report;
  if (daemon.ok()) {
    report = std::move(*daemon);
  } else {
    *report.add_checks() = rpc::MakeCheck(
        "daemon", "berthd", v1::DOCTOR_ERROR, std::string(daemon.status().message()),
        "start it: systemctl start berthd (journalctl -u berthd says why it stopped)");
  }
  doctor::HostPaths paths;
  for (v1::DoctorCheck& check : doctor::KernelChecks(paths)) *report.add_checks() = check;
  *report.add_checks() = doctor::SlurmCheck(paths);
  return report;
}

const char* SeverityName(v1::DoctorSeverity severity) {
  switch (severity) {
    case v1::DOCTOR_OK:
      return "ok";
    case v1::DOCTOR_WARNING:
      return "warning";
    default:
      return "error";
  }
}

int Count(const v1::DoctorReply& report, v1::DoctorSeverity severity) {
  int n = 0;
  for (const v1::DoctorCheck& check : report.checks()) n += check.severity() == severity;
  return n;
}

std::string AsJson(const v1::DoctorReply& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const v1::DoctorCheck& c : report.checks()) {
    checks.push_back({{"area", c.area()},
                      {"name", c.name()},
                      {"severity", SeverityName(c.severity())},
                      {"detail", c.detail()},
                      {"fix", c.fix()}});
  }
  nlohmann::json out = {{"errors", Count(report, v1::DOCTOR_ERROR)},
                        {"warnings", Count(report, v1::DOCTOR_WARNING)},
                        {"config_dir", report.config_dir()},
                        {"state_dir", report.state_dir()},
                        {"checks", checks}};
  return out.dump(2) + "\n";
}

std::string AsText(const v1::DoctorReply& report) {
  static const char* const kTags[] = {" ok ", "warn", "FAIL"};
  std::string out;
  for (const v1::DoctorCheck& c : report.checks()) {
    absl::StrAppendFormat(&out, "[%s] %-8s %-16s %s\n", kTags[c.severity()], c.area(), c.name(),
                          c.detail());
    if (!c.fix().empty()) absl::StrAppendFormat(&out, "%34s fix: %s\n", "", c.fix());
  }
  absl::StrAppendFormat(&out, "%d error(s), %d warning(s)\n", Count(report, v1::DOCTOR_ERROR),
                        Count(report, v1::DOCTOR_WARNING));
  return out;
}

absl::Status RunDoctor(const std::string& socket_flag, bool json) {
  v1::DoctorReply report = Gather(socket_flag);
  std::fputs((json ? AsJson(report) : AsText(report)).c_str(), stdout);
  std::fflush(stdout);  // the report before the FATAL line on stderr
  int errors = Count(report, v1::DOCTOR_ERROR);
  if (errors > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("berth doctor found ", errors, " error(s); each names its fix above"));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterDoctorCommand(CLI::App& app, const std::string& socket_flag,
                           std::shared_ptr<absl::Status> result) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "doctor", "Check this node for what berth needs, and say how to fix what is missing");
  cmd->fallthrough();
  cmd->add_flag("--json", *json, "print the findings as JSON");
  cmd->callback([&socket_flag, json, result] { *result = RunDoctor(socket_flag, *json); });
}

}  // namespace berth::client
