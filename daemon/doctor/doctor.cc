#include "daemon/doctor/doctor.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "daemon/doctor/node_checks.h"
#include "daemon/doctor/squashfs_probe.h"
#include "daemon/policy/config.h"
#include "proto/doctor_check.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::doctor {
namespace {

using rpc::MakeCheck;

// Most images are gzip (Apptainer's default): a kernel without it cannot
// run them. Other compressors fail only the images that use them.
v1::DoctorSeverity SeverityOfMissing(const std::string& compressor) {
  return compressor == "gzip" ? v1::DOCTOR_ERROR : v1::DOCTOR_WARNING;
}

v1::DoctorCheck ProbeCheck(const std::string& scratch, const ProbeImage& image) {
  std::string name = absl::StrCat("squashfs ", image.compressor);
  absl::Status status = ProbeSquashfs(scratch, image);
  if (status.ok()) {
    return MakeCheck("kernel", name, v1::DOCTOR_OK,
                     absl::StrCat("the kernel mounted and read a ", image.compressor, " image"));
  }
  return MakeCheck("kernel", name, SeverityOfMissing(image.compressor),
                   std::string(status.message()),
                   absl::StrCat("load the loop and squashfs modules with CONFIG_SQUASHFS_",
                                absl::AsciiStrToUpper(image.compressor),
                                ", or set [images] kernel_squashfs = \"never\" (FUSE)"));
}

v1::DoctorCheck DaemonCheck(const DaemonOptions& options) {
  return MakeCheck("daemon", "berthd", v1::DOCTOR_OK,
                   absl::StrCat("berthd ", BERTH_VERSION, " in ", DaemonModeName(options.mode),
                                " mode, socket ", options.socket_path));
}

}  // namespace

std::vector<v1::DoctorCheck> Doctor::RunProbes() const {
  spdlog::info("doctor: probing the kernel's squashfs compressors (once per daemon)");
  std::string scratch = options_.state_dir + "/doctor";
  if (::mkdir(scratch.c_str(), 0700) != 0 && errno != EEXIST) {
    return {MakeCheck("kernel", "squashfs", v1::DOCTOR_ERROR,
                      absl::StrCat("mkdir ", scratch, ": ", std::strerror(errno)),
                      "make the state directory writable by root")};
  }
  std::vector<v1::DoctorCheck> out;
  for (const ProbeImage& image : ProbeImages()) out.push_back(ProbeCheck(scratch, image));
  return out;
}

std::vector<v1::DoctorCheck> Doctor::SquashfsChecks() {
  if (options_.mode == DaemonMode::kUser) {
    return {MakeCheck("kernel", "squashfs", v1::DOCTOR_OK,
                      "a user-mode berthd reads images through FUSE (squashfuse), not the kernel")};
  }
  auto config = policy::LoadConfig(options_.config_dir, true);
  if (config.ok() && config->kernel_squashfs == policy::KernelSquashfs::kNever) {
    return {MakeCheck("kernel", "squashfs", v1::DOCTOR_OK,
                      "kernel_squashfs = \"never\": images are read through FUSE")};
  }
  absl::MutexLock lock(&mu_);
  if (!probes_) probes_ = RunProbes();
  return *probes_;
}

v1::DoctorReply Doctor::Report(uid_t uid, gid_t gid) {
  v1::DoctorReply reply;
  reply.set_config_dir(options_.config_dir);
  reply.set_state_dir(options_.state_dir);
  auto add = [&reply](const std::vector<v1::DoctorCheck>& checks) {
    for (const v1::DoctorCheck& check : checks) *reply.add_checks() = check;
  };
  add({DaemonCheck(options_)});
  add(PolicyFileChecks(options_));
  add(SquashfsChecks());
  add({IdmapCheck(options_)});
  add(StoreChecks(options_));
  add({FakerootCheck(options_, uid, gid)});
  return reply;
}

}  // namespace berth::daemon::doctor
