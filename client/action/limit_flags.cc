#include "client/action/limit_flags.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/action/cgroups_toml.h"
#include "client/env_flags.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid ", flag, " value '", absl::CHexEscape(value.substr(0, 80)), "': ", why));
}

absl::StatusOr<int64_t> Integer(absl::string_view flag, absl::string_view value) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v)) return Bad(flag, value, "not an integer");
  return v;
}

// --blkio-weight-device PATH:WEIGHT, PATH a block device the caller can see.
absl::Status AddWeightDevice(const std::string& item, v1::Resources& r) {
  size_t colon = item.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Bad("--blkio-weight-device", item, "expected <device path>:<weight>");
  }
  std::string path = item.substr(0, colon);
  uint64_t weight = 0;
  if (!absl::SimpleAtoi(item.substr(colon + 1), &weight)) {
    return Bad("--blkio-weight-device", item, "the weight is not a number");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Bad("--blkio-weight-device", item, std::strerror(errno));
  }
  if (!S_ISBLK(st.st_mode)) return Bad("--blkio-weight-device", item, "not a block device");
  v1::DeviceValue* d = r.add_blkio_weight_device();
  d->set_major(major(st.st_rdev));
  d->set_minor(minor(st.st_rdev));
  d->set_value(weight);
  return absl::OkStatus();
}

bool AnyFlag(const LimitFlags& f) {
  return !f.cpus.empty() || !f.cpu_shares.empty() || !f.cpuset_cpus.empty() ||
         !f.cpuset_mems.empty() || !f.memory.empty() || !f.memory_reservation.empty() ||
         !f.memory_swap.empty() || f.oom_kill_disable || !f.pids_limit.empty() ||
         !f.blkio_weight.empty() || !f.blkio_weight_device.empty();
}

absl::StatusOr<std::string> ReadSmall(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat("--apply-cgroups ", path, ": ", std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--apply-cgroups ", path, ": larger than 1 MiB"));
  }
  return ss.str();
}

}  // namespace

absl::StatusOr<int64_t> ParseRamSize(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < s.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) {
    ++digits;
  }
  double number = 0;
  if (digits == 0 || !absl::SimpleAtod(s.substr(0, digits), &number) || number < 0) {
    return absl::InvalidArgumentError("not a size like 512M or 2G");
  }
  std::string unit = absl::AsciiStrToLower(absl::StripLeadingAsciiWhitespace(s.substr(digits)));
  double scale = 1;
  if (!unit.empty()) {
    const std::string units = "kmgtp";
    size_t i = units.find(unit[0]);
    std::string rest = unit.substr(i == std::string::npos ? 0 : 1);
    if (rest != "" && rest != "b" && rest != "ib") {
      return absl::InvalidArgumentError("not a size like 512M or 2G");
    }
    if (i != std::string::npos) scale = std::pow(1024.0, static_cast<double>(i + 1));
    if (i == std::string::npos && unit != "b") {
      return absl::InvalidArgumentError("not a size like 512M or 2G");
    }
  }
  double bytes = number * scale;
  if (bytes >= 9.2e18) return absl::InvalidArgumentError("too large");
  return static_cast<int64_t>(bytes);
}

void AddLimitFlags(CLI::App& cmd, LimitFlags& f) {
  cmd.add_option("--cpus", f.cpus, "number of CPUs the container may use (e.g. 0.5)");
  cmd.add_option("--cpu-shares", f.cpu_shares, "CPU shares relative to other containers");
  cmd.add_option("--cpuset-cpus", f.cpuset_cpus, "CPUs the container may run on (0-3,6)");
  cmd.add_option("--cpuset-mems", f.cpuset_mems, "memory nodes the container may use");
  cmd.add_option("--memory", f.memory, "memory limit (512M, 2G)");
  cmd.add_option("--memory-reservation", f.memory_reservation, "memory soft limit");
  cmd.add_option("--memory-swap", f.memory_swap, "memory plus swap limit (-1: unlimited)");
  cmd.add_flag("--oom-kill-disable", f.oom_kill_disable, "disable the OOM killer (cgroup v1)");
  cmd.add_option("--pids-limit", f.pids_limit, "most processes the container may have");
  cmd.add_option("--blkio-weight", f.blkio_weight, "block I/O weight, 10-1000");
  cmd.add_option("--blkio-weight-device", f.blkio_weight_device,
                 "block I/O weight for a device: <device path>:<weight>");
  cmd.add_option("--apply-cgroups", f.apply_cgroups, "apply the cgroup limits of a TOML file");
}

absl::Status ApplyLimitEnvironment(const CLI::App& cmd, LimitFlags& f) {
  StringFromEnv(cmd, "--cpus", "CPUS", f.cpus);
  StringFromEnv(cmd, "--cpu-shares", "CPU_SHARES", f.cpu_shares);
  StringFromEnv(cmd, "--cpuset-cpus", "CPUSET_CPUS", f.cpuset_cpus);
  StringFromEnv(cmd, "--cpuset-mems", "CPUSET_MEMS", f.cpuset_mems);
  StringFromEnv(cmd, "--memory", "MEMORY", f.memory);
  StringFromEnv(cmd, "--memory-reservation", "MEMORY_RESERVATION", f.memory_reservation);
  StringFromEnv(cmd, "--memory-swap", "MEMORY_SWAP", f.memory_swap);
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--oom-kill-disable", "OOM_KILL_DISABLE", f.oom_kill_disable));
  StringFromEnv(cmd, "--pids-limit", "PIDS_LIMIT", f.pids_limit);
  StringFromEnv(cmd, "--blkio-weight", "BLKIO_WEIGHT", f.blkio_weight);
  if (cmd.count("--blkio-weight-device") == 0) {
    if (const char* v = EnvForm("BLKIO_WEIGHT_DEVICE"); v != nullptr && *v != '\0') {
      f.blkio_weight_device = absl::StrSplit(v, ',', absl::SkipEmpty());
    }
  }
  StringFromEnv(cmd, "--apply-cgroups", "APPLY_CGROUPS", f.apply_cgroups);
  return absl::OkStatus();
}

absl::Status AddLimits(const LimitFlags& f, const std::string& cwd, v1::RunRequest& request) {
  if (!f.apply_cgroups.empty()) {
    if (AnyFlag(f)) {
      // Apptainer's own words.
      return absl::InvalidArgumentError("cannot apply a cgroups TOML file while using limit flags");
    }
    std::string path =
        f.apply_cgroups.front() == '/' ? f.apply_cgroups : absl::StrCat(cwd, "/", f.apply_cgroups);
    ASSIGN_OR_RETURN(std::string text, ReadSmall(path));
    ASSIGN_OR_RETURN(*request.mutable_resources(), ParseCgroupsToml(text, f.apply_cgroups));
    return absl::OkStatus();
  }
  if (!AnyFlag(f)) return absl::OkStatus();
  v1::Resources& r = *request.mutable_resources();
  if (!f.cpus.empty()) {
    double cpus = 0;
    long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (!absl::SimpleAtod(f.cpus, &cpus) || !std::isfinite(cpus)) {
      return Bad("--cpus", f.cpus, "not a number");
    }
    if (cpus < 0.01 || cpus > static_cast<double>(online)) {
      return Bad("--cpus", f.cpus, absl::StrCat("must be between 0.01 and ", online));
    }
    r.set_cpu_period(100000);
    r.set_cpu_quota(static_cast<int64_t>(std::llround(cpus * 100000)));
  }
  if (!f.cpu_shares.empty()) {
    ASSIGN_OR_RETURN(int64_t shares, Integer("--cpu-shares", f.cpu_shares));
    if (shares < 0) return Bad("--cpu-shares", f.cpu_shares, "must not be negative");
    r.set_cpu_shares(static_cast<uint64_t>(shares));
  }
  r.set_cpuset_cpus(f.cpuset_cpus);
  r.set_cpuset_mems(f.cpuset_mems);
  struct Size {
    const char* flag;
    const std::string& value;
    void (v1::Resources::*set)(int64_t);
  };
  for (const Size& s :
       {Size{"--memory", f.memory, &v1::Resources::set_memory_limit},
        Size{"--memory-reservation", f.memory_reservation, &v1::Resources::set_memory_reservation},
        Size{"--memory-swap", f.memory_swap, &v1::Resources::set_memory_swap}}) {
    if (s.value.empty()) continue;
    if (s.value == "-1") {
      (r.*s.set)(-1);
      continue;
    }
    auto bytes = ParseRamSize(s.value);
    if (!bytes.ok()) return Bad(s.flag, s.value, bytes.status().message());
    (r.*s.set)(*bytes);
  }
  if (f.oom_kill_disable) r.set_disable_oom_killer(true);
  if (!f.pids_limit.empty()) {
    ASSIGN_OR_RETURN(int64_t pids, Integer("--pids-limit", f.pids_limit));
    r.set_pids_limit(pids);
  }
  if (!f.blkio_weight.empty()) {
    ASSIGN_OR_RETURN(int64_t weight, Integer("--blkio-weight", f.blkio_weight));
    if (weight < 0 || weight > 65535) return Bad("--blkio-weight", f.blkio_weight, "10..1000");
    r.set_blkio_weight(static_cast<uint32_t>(weight));
  }
  for (const std::string& item : f.blkio_weight_device) RETURN_IF_ERROR(AddWeightDevice(item, r));
  return absl::OkStatus();
}

}  // namespace berth::client
