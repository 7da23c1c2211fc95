#include "daemon/instance/instance_state.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/instance/instance_name.h"

namespace berth::daemon::instance {
namespace {

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 65536) return absl::OutOfRangeError(absl::StrCat(path, " is too large"));
  }
  return out;
}

}  // namespace

std::string RecordToJson(const InstanceRecord& r) {
  nlohmann::json j = {{"name", r.name},
                      {"uid", r.uid},
                      {"gid", r.gid},
                      {"user", r.user},
                      {"image", r.image},
                      {"logOutPath", r.log_out},
                      {"logErrPath", r.log_err},
                      {"pid", r.pid},
                      {"startTicks", r.start_ticks},
                      {"mntNamespace", r.mnt_ns_inode},
                      {"started", r.started_unix},
                      {"fakeroot", r.fakeroot},
                      {"ipcNamespace", r.ipc_ns},
                      {"utsNamespace", r.uts_ns},
                      {"netNamespace", r.net_ns},
                      {"userNamespace", r.user_ns},
                      {"home", r.home},
                      {"cwd", r.cwd},
                      {"hasShell", r.has_shell},
                      {"restart", r.restart},
                      {"restarts", r.restarts},
                      {"limited", r.limited},
                      {"groups", r.groups},
                      {"request", r.request}};
  nlohmann::json dirs = nlohmann::json::array();
  for (const InstanceRecord::CgroupDir& d : r.cgroup) {
    dirs.push_back({{"parent", d.parent}, {"dir", d.dir}, {"v2", d.v2}});
  }
  j["cgroup"] = std::move(dirs);
  return j.dump(1, '\t') + "\n";
}

absl::StatusOr<InstanceRecord> RecordFromJson(const std::string& json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  InstanceRecord r;
  try {
    r.name = j.at("name").get<std::string>();
    r.uid = j.at("uid").get<uid_t>();
    r.gid = j.at("gid").get<gid_t>();
    r.user = j.at("user").get<std::string>();
    r.image = j.at("image").get<std::string>();
    r.log_out = j.at("logOutPath").get<std::string>();
    r.log_err = j.at("logErrPath").get<std::string>();
    r.pid = j.at("pid").get<pid_t>();
    r.start_ticks = j.at("startTicks").get<uint64_t>();
    r.mnt_ns_inode = j.at("mntNamespace").get<uint64_t>();
    r.started_unix = j.at("started").get<int64_t>();
    r.fakeroot = j.at("fakeroot").get<bool>();
    r.ipc_ns = j.at("ipcNamespace").get<bool>();
    r.uts_ns = j.at("utsNamespace").get<bool>();
    r.user_ns = j.at("userNamespace").get<bool>();
    // Absent from the records of daemons before --net.
    r.net_ns = j.value("netNamespace", false);
    r.home = j.at("home").get<std::string>();
    r.cwd = j.at("cwd").get<std::string>();
    r.has_shell = j.at("hasShell").get<bool>();
    r.restart = j.at("restart").get<std::string>();
    r.restarts = j.at("restarts").get<int>();
    // Absent from the records of daemons before instance cgroups.
    r.limited = j.value("limited", false);
    r.groups = j.value("groups", std::vector<gid_t>{});
    r.request = j.value("request", std::string());
    for (const nlohmann::json& d : j.value("cgroup", nlohmann::json::array())) {
      InstanceRecord::CgroupDir dir{d.at("parent").get<std::string>(),
                                    d.at("dir").get<std::string>(), d.at("v2").get<bool>()};
      // Only a directory below its parent in cgroupfs is ever removed.
      if (!absl::StartsWith(dir.parent, "/") ||
          !absl::StartsWith(dir.dir, dir.parent + "/berth-instance-") ||
          absl::StrContains(dir.dir, "/..") ||
          dir.dir.find('/', dir.parent.size() + 1) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("cgroup directory ", dir.dir));
      }
      r.cgroup.push_back(std::move(dir));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("missing or mistyped field: ", e.what()));
  }
  RETURN_IF_ERROR(CheckName(r.name));
  if (r.pid <= 1) return absl::InvalidArgumentError("pid is not a process");
  return r;
}

absl::StatusOr<uint64_t> ProcessStartTicks(pid_t pid) {
  ASSIGN_OR_RETURN(std::string stat, ReadSmallFile(absl::StrCat("/proc/", pid, "/stat")));
  // The command name may hold spaces and ')': fields follow the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return absl::InternalError("unreadable /proc/<pid>/stat");
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); starttime is field 22.
  uint64_t ticks = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &ticks)) {
    return absl::InternalError("unreadable start time in /proc/<pid>/stat");
  }
  return ticks;
}

absl::StatusOr<uint64_t> NamespaceInode(pid_t pid, const char* name) {
  struct stat st;
  std::string path = absl::StrCat("/proc/", pid, "/ns/", name);
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(path, errno);
  return static_cast<uint64_t>(st.st_ino);
}

absl::StatusOr<launch::LiveNamespaces> OpenInstanceNamespaces(pid_t pid, int pidfd,
                                                              const InstanceRecord& r) {
  launch::LiveNamespaces ns;
  auto open = [pid](const char* name, UniqueFd& out) -> absl::Status {
    auto fd = OpenFile(absl::StrCat("/proc/", pid, "/ns/", name), O_RDONLY);
    if (!fd.ok()) {
      return Annotate(fd.status(), absl::StrCat("opening the instance's ", name, " namespace"));
    }
    out = *std::move(fd);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(open("mnt", ns.mnt));
  RETURN_IF_ERROR(open("pid", ns.pid));
  if (r.ipc_ns) RETURN_IF_ERROR(open("ipc", ns.ipc));
  if (r.uts_ns) RETURN_IF_ERROR(open("uts", ns.uts));
  if (r.net_ns) RETURN_IF_ERROR(open("net", ns.net));
  if (r.user_ns) RETURN_IF_ERROR(open("user", ns.user));
  // Opened through the pid's /proc entry: they are the process's only if
  // it still runs now (checked through the pidfd, which a recycled pid
  // cannot take over).
  pollfd p{pidfd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 0) return absl::AbortedError("the instance's init ended meanwhile");
  return ns;
}

absl::StatusOr<AdoptedProcess> VerifyInstanceProcess(const InstanceRecord& r) {
  AdoptedProcess out;
  out.pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, r.pid, 0)));
  if (!out.pidfd) return ErrnoStatus(absl::StrCat("process ", r.pid), errno);
  // Checked after the pidfd is open: a pid recycled before then is a new
  // process with another start time; one recycled after cannot be reached
  // through this pidfd.
  ASSIGN_OR_RETURN(uint64_t ticks, ProcessStartTicks(r.pid));
  if (ticks != r.start_ticks) {
    return absl::NotFoundError(absl::StrCat("process ", r.pid,
                                            " is not the instance's init (it "
                                            "started at another time: the init ended)"));
  }
  ASSIGN_OR_RETURN(std::string comm, ReadSmallFile(absl::StrCat("/proc/", r.pid, "/comm")));
  if (absl::StripSuffix(comm, "\n") != "berth-init") {
    return absl::NotFoundError(absl::StrCat("process ", r.pid, " is not a berth init"));
  }
  // A berth init is PID 1 of a PID namespace of its own.
  ASSIGN_OR_RETURN(std::string status, ReadSmallFile(absl::StrCat("/proc/", r.pid, "/status")));
  bool ns_init = false;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "NSpid:")) {
      std::vector<absl::string_view> ids = absl::StrSplit(line, '\t', absl::SkipEmpty());
      ns_init = ids.size() >= 2 && ids.back() == "1";
    }
  }
  if (!ns_init) {
    return absl::NotFoundError(
        absl::StrCat("process ", r.pid, " is not the init of a PID namespace of its own"));
  }
  ASSIGN_OR_RETURN(out.ns, OpenInstanceNamespaces(r.pid, out.pidfd.get(), r));
  struct stat st;
  if (::fstat(out.ns.mnt.get(), &st) != 0 || static_cast<uint64_t>(st.st_ino) != r.mnt_ns_inode) {
    return absl::NotFoundError(
        absl::StrCat("process ", r.pid, " is not in the instance's mount namespace"));
  }
  return out;
}

}  // namespace berth::daemon::instance
