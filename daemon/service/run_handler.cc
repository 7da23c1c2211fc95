#include "daemon/service/run_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/fd_handoff.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/cgroup/ceiling.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/instance/instance_cgroup.h"
#include "daemon/instance/instance_name.h"
#include "daemon/launch/cgroups.h"
#include "daemon/service/instance_run.h"
#include "daemon/service/pty.h"
#include "daemon/service/run_limits.h"
#include "daemon/service/run_prepare.h"
#include "daemon/service/run_request_check.h"
#include "daemon/service/shared_run.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr int kPollMillis = 200;
constexpr absl::Duration kClientCloseGrace = absl::Seconds(5);

// Signals a client may forward; anything else (SIGKILL, SIGSTOP...) is refused
// so that the protocol stays what Apptainer users know.
bool Forwardable(int sig) {
  switch (sig) {
    case SIGINT:
    case SIGTERM:
    case SIGHUP:
    case SIGQUIT:
    case SIGUSR1:
    case SIGUSR2:
    case SIGALRM:
    case SIGCONT:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
    case SIGWINCH:
      return true;
    default:
      return false;
  }
}

// Reads client inputs until the stream closes: signals and terminal traffic.
void ReadInputs(RunChannel* channel, launch::Container* container, int pty_master,
                std::atomic<bool>* client_gone, absl::Notification* done) {
  v1::RunInput in;
  while (channel->Read(in)) {
    if (in.has_signal() && Forwardable(in.signal())) {
      (void)container->Signal(in.signal());
    } else if (in.has_terminal_input() && pty_master >= 0) {
      const std::string& bytes = in.terminal_input();
      (void)WriteAll(pty_master,
                     std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    } else if (in.has_resize() && pty_master >= 0) {
      (void)ResizePty(pty_master, in.resize().rows(), in.resize().cols());
    }
  }
  client_gone->store(true);
  done->Notify();
}

bool ProcessExited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

// Relays pty output and watches both ends until the container exits. Returns
// false when the client vanished first (the container must then be killed).
bool Supervise(RunChannel& channel, launch::Container& container, int pty_master, int client_pidfd,
               const std::atomic<bool>& client_gone) {
  bool pty_open = pty_master >= 0;
  for (;;) {
    pollfd fds[] = {{container.pidfd(), POLLIN, 0},
                    {client_pidfd, POLLIN, 0},
                    {pty_open ? pty_master : -1, POLLIN, 0}};
    int ready = ::poll(fds, 3, kPollMillis);
    if (ready < 0 && errno != EINTR) return true;
    if (fds[2].revents != 0) {
      char buf[16384];
      ssize_t n = ::read(pty_master, buf, sizeof buf);
      if (n > 0) {
        v1::RunOutput out;
        out.set_terminal_output(std::string(buf, static_cast<size_t>(n)));
        if (!channel.Write(out)) return false;
        continue;  // drain output before looking at the exit
      }
      pty_open = false;  // EIO: every slave closed
    }
    if (fds[0].revents != 0 && !pty_open) return true;
    if (fds[0].revents != 0 && ProcessExited(container.pidfd())) {
      // Give the pty a moment to deliver the last output.
      pollfd last{pty_master, POLLIN, 0};
      if (::poll(&last, 1, 50) <= 0) return true;
      continue;
    }
    if (fds[1].revents != 0 || client_gone.load()) {
      if (!ProcessExited(container.pidfd())) return false;
    }
  }
}

absl::StatusOr<v1::RunRequest> ReadStart(RunChannel& channel) {
  v1::RunInput first;
  RETURN_IF_ERROR(channel.ReadFirst(first));
  if (!first.has_start()) {
    return absl::InvalidArgumentError("the first message of Run must be the request");
  }
  return std::move(*first.mutable_start());
}

// What each handed descriptor is, by the request's own mapping, for the
// refusal of one the container must not get (an O_PATH descriptor).
std::vector<HandedItem> HandedItemsOf(const v1::RunRequest& r) {
  std::vector<HandedItem> items;
  for (const v1::FdMapping& m : r.fds()) {
    if (m.handoff_index() >= kMaxHandoffFds) continue;  // CheckFds refuses it
    if (items.size() <= m.handoff_index()) items.resize(m.handoff_index() + 1);
    items[m.handoff_index()].what = absl::StrFormat("container descriptor %d", m.container_fd());
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].what.empty()) items[i].what = absl::StrFormat("handed descriptor #%d", i);
  }
  return items;
}

// INFO lines for the caller, before the container's output.
void SendNotices(RunChannel& channel, const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    v1::RunOutput notice;
    notice.mutable_notice()->set_text(line);
    channel.Write(notice);
  }
}

}  // namespace

RunHandler::RunHandler(const DaemonOptions& options, const policy::Config& config,
                       image::MountCache& images, EclGate* ecl, gpu::GpuService* gpus,
                       shared::ContainerRegistry* shared, instance::InstanceRegistry* instances)
    : options_(options),
      config_(config),
      images_(images),
      ecl_(ecl),
      gpus_(gpus),
      shared_(shared),
      instances_(instances),
      warm_(std::make_unique<LeaseKeeper>(absl::Seconds(config.idle_unmount_seconds))) {}

RunHandler::~RunHandler() = default;

absl::Status RunHandler::Admit(uid_t uid) {
  absl::MutexLock lock(&mu_);
  int& live = live_[uid];
  if (live >= config_.max_containers_per_user) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "user %d already runs %d containers on this node (max_containers_per_user in berth.conf)",
        uid, live));
  }
  ++live;
  return absl::OkStatus();
}

void RunHandler::Release(uid_t uid) {
  absl::MutexLock lock(&mu_);
  if (--live_[uid] <= 0) live_.erase(uid);
}

absl::StatusOr<launch::Container> RunHandler::StartContainer(
    const v1::RunRequest& request, const PeerIdentity& peer, PreparedRun& run,
    std::unique_ptr<shared::ContainerRegistry::Membership>& member) {
  std::optional<shared::ShareKey> key;
  if (shared_ != nullptr) {
    shared::ShareKeySources sources{config_.share_slurm_steps,
                                    options_.mode == DaemonMode::kSystem};
    ASSIGN_OR_RETURN(key, shared::ShareKeyOf(peer.pid, peer.pidfd->get(), peer.uid,
                                             ShareRequestOf(request), sources));
  }
  // A container with limits has a cgroup of its own, and one with image-src
  // binds holds their images for its own life: neither is ever shared.
  if (!key || run.cgroup || !run.bind_leases.empty()) return launch::Launch(std::move(run.spec));
  shared::ContainerShape shape = ShapeOf(request, *run.lease, run.spec);
  ASSIGN_OR_RETURN(member, shared_->Enter(*key, shape, [&run] {
    return MakeLiveContainer(run.spec, run.lease);
  }));
  auto container = launch::Join(std::move(run.spec), member->namespaces());
  if (!container.ok()) return Annotate(container.status(), absl::StrCat("joining ", key->scope));
  member->Track(container->pidfd());
  return container;
}

absl::StatusOr<std::shared_ptr<instance::Instance>> RunHandler::FindInstance(
    const v1::RunRequest& request, const PeerIdentity& peer) {
  std::string name = request.image().substr(sizeof kInstanceScheme - 1);
  RETURN_IF_ERROR(instance::CheckName(name));
  std::shared_ptr<instance::Instance> inst;
  if (instances_ != nullptr) inst = instances_->Find(peer.uid, name);
  if (inst == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no instance found with name ", name, " (berth instance list shows yours)"));
  }
  return inst;
}

instance::Relaunch RunHandler::RelaunchOf(const v1::RunRequest& request, const PeerIdentity& peer,
                                          std::vector<UniqueFd> fds) {
  struct Saved {
    v1::RunRequest request;
    PeerIdentity peer;  // the credentials only: no process, no connection
    std::vector<UniqueFd> fds;
  };
  auto saved = std::make_shared<Saved>();
  saved->request = request;
  saved->peer.uid = peer.uid;
  saved->peer.gid = peer.gid;
  saved->peer.groups = peer.groups;
  saved->peer.pidfd = nullptr;
  saved->fds = std::move(fds);
  return [this, saved](const instance::Instance& dead)
             -> absl::StatusOr<std::shared_ptr<instance::Instance>> {
    std::vector<UniqueFd> handed;
    for (const UniqueFd& fd : saved->fds) {
      handed.emplace_back(fd.valid() ? ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3) : -1);
    }
    // Prepared afresh as the owner: the image opened with their rights and
    // through the ECL, their binds reopened. It comes back in the same
    // cgroup, with the same limits.
    ASSIGN_OR_RETURN(PreparedRun run,
                     PrepareRun(saved->request, saved->peer, std::move(handed), options_, config_,
                                images_, ecl_, gpus_, saved->request.instance().name()));
    ASSIGN_OR_RETURN(auto fresh, LaunchInstance(saved->request, saved->peer.uid, saved->peer.gid,
                                                run, dead.cgroup(), dead.record.limited));
    fresh->record.request = dead.record.request;
    fresh->record.groups = dead.record.groups;
    return fresh;
  };
}

void RunHandler::ResumeInstanceRestarts() {
  if (instances_ == nullptr) return;
  instances_->ResumeRestarts(
      [this](const instance::InstanceRecord& record) -> instance::Relaunch {
        v1::RunRequest request;
        std::string bytes;
        if (!absl::Base64Unescape(record.request, &bytes) || !request.ParseFromString(bytes)) {
          return nullptr;
        }
        PeerIdentity owner;
        owner.uid = record.uid;
        owner.gid = record.gid;
        owner.groups = record.groups;
        // The client's descriptors stayed with the previous daemon: the
        // logs are reopened as their owner (appending), stdin is /dev/null.
        std::vector<UniqueFd> fds;
        fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        for (const std::string* log : {&record.log_out, &record.log_err}) {
          auto fd = image::OpenAsCaller(image::CallerCreds{owner.uid, owner.gid, owner.groups},
                                        *log, O_WRONLY | O_APPEND | O_NOCTTY);
          fds.emplace_back(fd.ok() ? std::move(*fd)
                                   : UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC)));
        }
        return RelaunchOf(request, owner, std::move(fds));
      },
      ParseRestart);
}

absl::StatusOr<std::shared_ptr<cgroup::ContainerCgroup>> RunHandler::InstanceCgroupFor(
    const PeerIdentity& peer, const std::string& name, cgroup::Resources limits,
    std::vector<std::string>& notices, bool& limited) {
  // What the caller already lives under is copied in: the instance's cgroup
  // is below the daemon's, where the caller's limits would not reach.
  auto caller = launch::CgroupHierarchiesOf(peer.pid);
  if (!caller.ok()) return Annotate(caller.status(), "reading the caller's cgroups");
  if (::syscall(SYS_pidfd_send_signal, peer.pidfd->get(), 0, nullptr, 0) != 0) {
    return absl::UnavailableError("the calling process exited while its cgroups were read");
  }
  bool asked = !limits.empty();
  ASSIGN_OR_RETURN(std::vector<std::string> tightened,
                   cgroup::TightenTo(cgroup::ReadCeiling(*caller), limits));
  limited = !limits.empty();
  // Below the daemon's own cgroup, never the caller's: a login session's
  // scope ends with the session, and the instance must not.
  ASSIGN_OR_RETURN(std::vector<launch::CgroupHierarchy> daemon, instance::DaemonCgroups());
  auto made = instance::MakeInstanceCgroup(daemon, peer.uid, name, limits);
  if (made.ok()) {
    notices.insert(notices.end(), tightened.begin(), tightened.end());
    return std::make_shared<cgroup::ContainerCgroup>(*std::move(made));
  }
  if (asked || (limited && options_.mode == DaemonMode::kSystem)) {
    return Annotate(made.status(), "making the instance's cgroup");
  }
  // No cgroup can be made here (not delegated): the instance shares the
  // daemon's, and says so now and in its stats.
  notices.push_back(
      absl::StrCat("the instance has no cgroup of its own (", made.status().message(),
                   "): it shares berthd's, and instance stats show that cgroup's figures"));
  limited = false;
  return std::shared_ptr<cgroup::ContainerCgroup>();
}

absl::Status RunHandler::ServeInstanceStart(RunChannel& channel, v1::RunRequest request,
                                            const PeerIdentity& peer,
                                            std::vector<UniqueFd> handed) {
  if (instances_ == nullptr) return absl::UnimplementedError("this daemon keeps no instances");
  RETURN_IF_ERROR(CheckInstanceStart(request, config_.allow_pid_ns));
  // The limits go to the instance's own cgroup (below the daemon's), not
  // to one below the caller's as a run's would: PrepareRun must not see them.
  cgroup::Resources limits;
  if (request.has_resources()) {
    ASSIGN_OR_RETURN(limits, ResourcesOf(request.resources()));
  }
  request.clear_resources();
  if (request.action() != v1::ACTION_RUN) UseStartscript(request);
  RETURN_IF_ERROR(CheckRunRequest(request, handed.size(), config_));
  const std::string name = request.instance().name();
  ASSIGN_OR_RETURN(auto claim, instances_->Reserve(peer.uid, name, config_.max_instances_per_user));
  ASSIGN_OR_RETURN(std::optional<int> restarts, ParseRestart(request.instance().restart()));
  // --restart: the log descriptors stay with the instance for its relaunches.
  std::vector<UniqueFd> kept;
  if (restarts) {
    for (const UniqueFd& fd : handed) {
      kept.emplace_back(fd.valid() ? ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3) : -1);
    }
  }
  ASSIGN_OR_RETURN(PreparedRun run, PrepareRun(request, peer, std::move(handed), options_, config_,
                                               images_, ecl_, gpus_, name));
  bool limited = false;
  ASSIGN_OR_RETURN(std::shared_ptr<cgroup::ContainerCgroup> cg,
                   InstanceCgroupFor(peer, name, std::move(limits), run.notices, limited));
  SendNotices(channel, run.notices);
  auto inst = LaunchInstance(request, peer.uid, peer.gid, run, std::move(cg), limited);
  peer.handed_fds->Done();
  if (!inst.ok()) return Annotate(inst.status(), absl::StrCat("starting instance ", name));
  if (restarts) {
    (*inst)->relaunch = RelaunchOf(request, peer, std::move(kept));
    (*inst)->max_restarts = *restarts;
    // Kept in the record so that a restarted daemon keeps supervising it.
    (*inst)->record.request = absl::Base64Escape(request.SerializeAsString());
    (*inst)->record.groups = peer.groups;
  }
  pid_t pid = (*inst)->record.pid;
  RETURN_IF_ERROR(instances_->Commit(std::move(claim), *std::move(inst)));
  spdlog::info("uid {} started instance {} (init pid {}) from {}", peer.uid, name, pid,
               request.image());
  v1::RunOutput started;
  started.mutable_started()->set_pid(pid);
  channel.Write(started);
  v1::RunOutput exited;
  exited.mutable_exited()->set_status(0);
  channel.Write(exited);
  return absl::OkStatus();
}

absl::Status RunHandler::Serve(RunChannel& channel, std::shared_ptr<const PeerIdentity> peer) {
  ASSIGN_OR_RETURN(v1::RunRequest request, ReadStart(channel));
  ASSIGN_OR_RETURN(std::vector<UniqueFd> handed, peer->handed_fds->Take(HandedItemsOf(request)));
  if (request.has_instance()) {
    return ServeInstanceStart(channel, std::move(request), *peer, std::move(handed));
  }
  std::shared_ptr<instance::Instance> target;
  if (absl::StartsWith(request.image(), kInstanceScheme)) {
    ASSIGN_OR_RETURN(target, FindInstance(request, *peer));
    v1::RunRequest checked = request;
    checked.set_image(target->record.image);
    RETURN_IF_ERROR(CheckRunRequest(checked, handed.size(), config_));
  } else {
    RETURN_IF_ERROR(CheckRunRequest(request, handed.size(), config_));
  }
  RETURN_IF_ERROR(Admit(peer->uid));
  struct Admitted {
    RunHandler* self;
    uid_t uid;
    ~Admitted() { self->Release(uid); }
  } admitted{this, peer->uid};

  PreparedRun run;
  // A join into an instance with limits lands in its cgroup (held until the
  // join ends); into one without, it stays in its caller's.
  std::shared_ptr<cgroup::ContainerCgroup> target_cgroup;
  if (target != nullptr) {
    ASSIGN_OR_RETURN(
        run, PrepareJoin(request, *peer, std::move(handed), options_, JoinTargetOf(*target)));
    if (target->record.limited) target_cgroup = target->cgroup();
    if (target_cgroup != nullptr) run.spec.cgroup_dirs = target_cgroup->dirs();
  } else {
    std::vector<std::string> early_notices;
    auto prepared = PrepareRun(request, *peer, std::move(handed), options_, config_, images_, ecl_,
                               gpus_, "", &early_notices);
    SendNotices(channel, early_notices);
    if (!prepared.ok()) return prepared.status();
    run = *std::move(prepared);
    // A sandbox bind is made afresh for each start: nothing to keep warm.
    if (run.lease->backend() != image::MountBackend::kDirectory) {
      warm_->Keep(images_.HoldForDaemon(*run.lease));
    }
  }
  SendNotices(channel, run.notices);
  const uint64_t oom_before = target_cgroup ? target_cgroup->OomKills() : 0;
  std::unique_ptr<shared::ContainerRegistry::Membership> member;
  absl::StatusOr<launch::Container> container = target != nullptr
                                                    ? launch::Join(std::move(run.spec), target->ns)
                                                    : StartContainer(request, *peer, run, member);
  peer->handed_fds->Done();
  if (!container.ok()) return Annotate(container.status(), "starting the container");
  spdlog::info("uid {} started {} (pid {}) from {}", peer->uid,
               request.args().empty() ? "runscript" : request.args(0), container->payload_pid(),
               request.image());

  v1::RunOutput started;
  started.mutable_started()->set_pid(container->payload_pid());
  channel.Write(started);

  std::atomic<bool> client_gone{false};
  absl::Notification reader_done;
  std::thread reader(ReadInputs, &channel, &*container, run.pty_master.get(), &client_gone,
                     &reader_done);
  bool client_alive =
      Supervise(channel, *container, run.pty_master.get(), peer->pidfd->get(), client_gone);
  if (!client_alive) {
    spdlog::info("uid {}: client gone, killing container pid {}", peer->uid, container->pid());
    (void)container->Kill();
  }
  auto status = container->Wait();
  if (status.ok()) {
    v1::RunOutput exited;
    exited.mutable_exited()->set_status(status->ShellStatus());
    exited.mutable_exited()->set_signal(status->signal);
    // A join into a limited instance: killed, while the instance's cgroup
    // counted a new OOM kill.
    exited.mutable_exited()->set_oom_killed((run.cgroup && run.cgroup->OomKilled()) ||
                                            (target_cgroup &&
                                             status->ShellStatus() == 128 + SIGKILL &&
                                             target_cgroup->OomKills() > oom_before));
    channel.Write(exited);
  }
  // The client closes its side when it sees Exited; one that does not must
  // not hold this thread.
  if (!reader_done.WaitForNotificationWithTimeout(kClientCloseGrace)) channel.Cancel();
  reader.join();
  return status.status();
}

}  // namespace berth::daemon
