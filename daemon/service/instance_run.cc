#include "daemon/service/instance_run.h"

#include <sys/stat.h>

#include <cerrno>
#include <ctime>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/instance/instance_name.h"
#include "daemon/service/shared_run.h"

namespace berth::daemon {

void UseStartscript(v1::RunRequest& r) {
  // Apptainer's start.sh: source the environment (the exec wrapper does),
  // then exec the startscript if there is one; without one, exit 0 and the
  // instance keeps running.
  google::protobuf::RepeatedPtrField<std::string> args = r.args();
  r.clear_args();
  r.set_action(v1::ACTION_EXEC);
  r.add_args("/bin/sh");
  r.add_args("-c");
  r.add_args(
      "if [ -x /.singularity.d/startscript ]; then exec /.singularity.d/startscript \"$@\"; fi");
  r.add_args("startscript");
  for (const std::string& a : args) r.add_args(a);
}

absl::Status CheckInstanceStart(const v1::RunRequest& r, bool pid_ns_allowed) {
  RETURN_IF_ERROR(instance::CheckName(r.instance().name()));
  if (r.tty()) {
    return absl::InvalidArgumentError("an instance has no terminal: its output goes to its logs");
  }
  if (r.no_pid() || !pid_ns_allowed) {
    return absl::InvalidArgumentError(
        "an instance needs a PID namespace of its own (drop --no-pid; berth.conf [namespaces] "
        "allow_pid must be true)");
  }
  RETURN_IF_ERROR(ParseRestart(r.instance().restart()).status());
  for (const std::string* path : {&r.instance().log_out_path(), &r.instance().log_err_path()}) {
    if (path->size() > 4096) return absl::InvalidArgumentError("log path longer than 4096 bytes");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int>> ParseRestart(const std::string& policy) {
  // The init runs no payload of its own, so it never ends by itself: every
  // end but a stop is a failure, and "always" and "on-failure" agree.
  if (policy.empty() || policy == "no") return std::optional<int>();
  if (policy == "always" || policy == "on-failure") return std::optional<int>(-1);
  int n = 0;
  absl::string_view count = policy;
  if (absl::ConsumePrefix(&count, "on-failure:") && absl::SimpleAtoi(count, &n) && n >= 1 &&
      n <= 1000) {
    return std::optional<int>(n);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--restart '", policy.substr(0, 64),
                   "': use no, always, on-failure or on-failure:N (1-1000)"));
}

absl::StatusOr<std::shared_ptr<instance::Instance>> LaunchInstance(
    const v1::RunRequest& r, uid_t uid, gid_t gid, PreparedRun& run,
    std::shared_ptr<cgroup::ContainerCgroup> cgroup, bool limited) {
  auto inst = std::make_shared<instance::Instance>();
  instance::InstanceRecord& rec = inst->record;
  rec.name = r.instance().name();
  rec.uid = uid;
  rec.gid = gid;
  rec.user = run.spec.identity.user_name;
  rec.image = r.image();
  rec.log_out = r.instance().log_out_path();
  rec.log_err = r.instance().log_err_path();
  rec.started_unix = ::time(nullptr);
  rec.fakeroot = run.spec.fakeroot;
  rec.home = run.spec.identity.home;
  rec.cwd = run.spec.cwd;
  rec.has_shell = ImageHasShell(run.spec.image_root);
  rec.restart = r.instance().restart();
  rec.ipc_ns = true;
  rec.uts_ns = run.spec.uts_namespace || !run.spec.hostname.empty();
  rec.net_ns = run.spec.net_namespace || run.spec.netns.valid();
  rec.user_ns = run.spec.user_namespace || run.spec.fakeroot;
  // Neither the init nor the startscript joins the caller's cgroups: a
  // logout that ends the session's scope must not end the instance. They
  // go into the instance's own, below the daemon's.
  run.spec.cgroup_dirs.clear();
  if (cgroup != nullptr) {
    run.spec.cgroup_dirs = cgroup->dirs();
    for (const cgroup::ContainerCgroup::Made& m : cgroup->made()) {
      rec.cgroup.push_back({m.parent, m.dir, m.v2});
    }
    rec.limited = limited;
  }
  launch::LaunchSpec holder_spec = HolderSpecOf(run.spec);
  ASSIGN_OR_RETURN(launch::Container holder, launch::Launch(std::move(holder_spec)));
  launch::LaunchSpec flags;
  flags.ipc_namespace = true;
  flags.uts_namespace = rec.uts_ns;
  flags.net_namespace = rec.net_ns;
  flags.pid_namespace = true;
  flags.user_namespace = rec.user_ns;
  ASSIGN_OR_RETURN(inst->ns, launch::OpenLiveNamespaces(holder, flags));
  rec.pid = holder.pid();
  ASSIGN_OR_RETURN(rec.start_ticks, instance::ProcessStartTicks(rec.pid));
  struct stat st;
  if (::fstat(inst->ns.mnt.get(), &st) != 0)
    return ErrnoStatus("the instance's mount namespace", errno);
  rec.mnt_ns_inode = st.st_ino;
  inst->holder = std::move(holder);
  // The image and those its image-src binds come from stay mounted while it lives.
  auto leases = std::make_shared<std::vector<std::shared_ptr<image::MountLease>>>(run.bind_leases);
  leases->push_back(run.lease);
  inst->keep = std::move(leases);
  inst->set_cgroup(std::move(cgroup));
  auto script = launch::Join(std::move(run.spec), inst->ns);
  if (!script.ok()) return Annotate(script.status(), "starting the instance's script");
  inst->script = *std::move(script);
  return inst;
}

JoinTarget JoinTargetOf(const instance::Instance& inst) {
  JoinTarget t;
  t.name = inst.record.name;
  t.image = inst.record.image;
  t.root = absl::StrCat("/proc/", inst.record.pid, "/root");
  t.home = inst.record.home;
  t.start_cwd = inst.record.cwd;
  t.has_shell = inst.record.has_shell;
  t.fakeroot = inst.record.fakeroot;
  return t;
}

}  // namespace berth::daemon
