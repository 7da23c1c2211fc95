#include "client/instance/instance_command.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/action/action_command.h"
#include "client/action/action_flags.h"
#include "client/action/run_session.h"
#include "client/cli_log.h"
#include "client/env_flags.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "client/sif/tabwriter.h"
#include "common/file_io.h"
#include "common/go_json.h"
#include "common/status_macros.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

constexpr absl::Duration kListTimeout = absl::Seconds(30);

struct StartState {
  ActionFlags flags;
  std::string image, name, pid_file, restart;
  bool user_daemon = false;
  bool boot = false;  // Apptainer's --boot, refused
};

// $CONFIGDIR as Apptainer finds it: APPTAINER_CONFIGDIR (or the BERTH_ and
// SINGULARITY_ forms), else ~/.apptainer of the user's passwd entry.
absl::StatusOr<std::string> ConfigDir() {
  if (const char* v = EnvForm("CONFIGDIR"); v != nullptr && *v != '\0') return std::string(v);
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return absl::NotFoundError("no passwd entry for this user: set APPTAINER_CONFIGDIR");
  }
  return absl::StrCat(pw.pw_dir, "/.apptainer");
}

std::string UserName() {
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return pw.pw_name;
  }
  return absl::StrCat(::getuid());
}

absl::Status MakeDirs(const std::string& path) {
  std::string at;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&at, "/", part);
    if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("creating ", at), errno);
    }
  }
  return absl::OkStatus();
}

struct Logs {
  std::string out_path, err_path;
  UniqueFd out, err;
};

// $CONFIGDIR/instances/logs/<host>/<user>/<name>.{out,err}, opened by this
// process, as the user, for appending (Apptainer never rotates them).
absl::StatusOr<Logs> OpenLogs(const std::string& name) {
  ASSIGN_OR_RETURN(std::string config, ConfigDir());
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string dir = absl::StrCat(config, "/instances/logs/", host, "/", UserName());
  RETURN_IF_ERROR(MakeDirs(dir));
  Logs logs;
  logs.out_path = absl::StrCat(dir, "/", name, ".out");
  logs.err_path = absl::StrCat(dir, "/", name, ".err");
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW;
  ASSIGN_OR_RETURN(logs.out, OpenFile(logs.out_path, flags, 0644));
  ASSIGN_OR_RETURN(logs.err, OpenFile(logs.err_path, flags, 0644));
  return logs;
}

absl::Status StartInstance(const CLI::App& cmd, bool run, StartState& state,
                           const std::string& socket_flag) {
  if (state.boot) {
    return absl::UnimplementedError(
        "--boot is not supported: a berth instance runs its startscript as its caller, never "
        "the image's /sbin/init as root");
  }
  RETURN_IF_ERROR(ApplyEnvironmentDefaults(cmd, state.flags));
  if (state.pid_file.empty()) {
    if (const char* v = EnvForm("PID_FILE"); v != nullptr) state.pid_file = v;
  }
  // The name is checked here for a clear message before anything is
  // created; the daemon checks it again.
  if (state.name.empty() || state.name.size() > 128 ||
      state.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._-") != std::string::npos ||
      state.name == "." || state.name == "..") {
    return absl::InvalidArgumentError(
        "instance name may only use letters, digits, '.', '_' and '-' (^[a-zA-Z0-9._-]+$), at "
        "most 128 of them");
  }
  if (absl::StartsWith(state.image, "instance://")) {
    return absl::InvalidArgumentError(
        "an instance starts from an image, not from another instance");
  }
  ASSIGN_OR_RETURN(v1::RunRequest request,
                   BuildRunRequest(run ? v1::ACTION_RUN : v1::ACTION_EXEC, state.image,
                                   SplitArguments(), state.flags));
  ASSIGN_OR_RETURN(Logs logs, OpenLogs(state.name));
  ASSIGN_OR_RETURN(UniqueFd null, OpenFile("/dev/null", O_RDONLY));
  std::vector<int> handoff{null.get(), logs.out.get(), logs.err.get()};
  for (int i = 0; i < 3; ++i) {
    v1::FdMapping* m = request.add_fds();
    m->set_handoff_index(static_cast<uint32_t>(i));
    m->set_container_fd(i);
  }
  v1::InstanceStart* start = request.mutable_instance();
  start->set_name(state.name);
  start->set_log_out_path(logs.out_path);
  start->set_log_err_path(logs.err_path);
  start->set_restart(state.restart);
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, state.user_daemon));
  ASSIGN_OR_RETURN(int pid, RunDetachedSession(socket, std::move(request), handoff));
  if (!state.pid_file.empty()) {
    ASSIGN_OR_RETURN(UniqueFd f, OpenFile(state.pid_file, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    std::string text = absl::StrCat(pid, "\n");
    RETURN_IF_ERROR(
        WriteAll(f.get(), std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  }
  log::Info("instance started successfully");
  return absl::OkStatus();
}

void AddStart(CLI::App& parent, const char* verb, const char* help, bool run,
              const std::string& socket_flag, std::shared_ptr<absl::Status> result) {
  auto state = std::make_shared<StartState>();
  CLI::App* cmd = parent.add_subcommand(verb, help);
  AddActionFlags(*cmd, state->flags);
  cmd->add_flag("--user-daemon", state->user_daemon,
                "use (and start if needed) a private berthd, even where a system one runs");
  cmd->add_option("--pid-file", state->pid_file, "write the instance's PID to this file");
  cmd->add_flag("--boot", state->boot, "")->group("");
  cmd->add_option("--restart", state->restart,
                  "bring the instance back when its init dies: no (default), always, "
                  "on-failure[:N]");
  cmd->add_option("image", state->image, "SIF image")->required();
  cmd->add_option("name", state->name, "the instance's name; what follows is its arguments")
      ->required();
  cmd->callback([cmd, run, state, &socket_flag, result] {
    *result = StartInstance(*cmd, run, *state, socket_flag);
  });
}

struct ListState {
  std::string user, pattern;
  bool json = false, logs = false, all = false, user_daemon = false;
};

absl::Status ListInstances(const ListState& s, const std::string& socket_flag) {
  if (s.json && s.logs) return absl::InvalidArgumentError("-j/--json and -l/--logs contradict");
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, s.user_daemon));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kListTimeout));
  v1::InstanceListRequest request;
  request.set_pattern(s.pattern);
  request.set_user(s.user);
  request.set_all_users(s.all);
  v1::InstanceListReply reply;
  grpc::Status status = stub->InstanceList(&context, request, &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "listing instances");
  std::string out;
  if (s.json) {
    // Go's json.MarshalIndent(v, "", "\t"), Apptainer's shape.
    out = "{\n\t\"instances\": [";
    for (int i = 0; i < reply.instances_size(); ++i) {
      const v1::InstanceInfo& in = reply.instances(i);
      absl::StrAppend(
          &out, i == 0 ? "\n" : ",\n", "\t\t{\n", "\t\t\t\"instance\": ", GoJsonQuote(in.name()),
          ",\n", "\t\t\t\"pid\": ", in.pid(), ",\n", "\t\t\t\"img\": ", GoJsonQuote(in.image()),
          ",\n", "\t\t\t\"ip\": ", GoJsonQuote(in.ip()), ",\n",
          "\t\t\t\"logErrPath\": ", GoJsonQuote(in.log_err_path()), ",\n",
          "\t\t\t\"logOutPath\": ", GoJsonQuote(in.log_out_path()));
      // berth's own key, once --restart has brought the instance back.
      if (in.restarts() > 0) absl::StrAppend(&out, ",\n\t\t\t\"restarts\": ", in.restarts());
      absl::StrAppend(&out, "\n\t\t}");
    }
    absl::StrAppend(&out, reply.instances_size() == 0 ? "]\n}\n" : "\n\t]\n}\n");
  } else {
    TabWriter table(4);
    if (s.logs) {
      table.AddRow({"INSTANCE NAME", "PID", "LOGS"});
      for (const auto& in : reply.instances()) {
        table.AddRow({in.name(), absl::StrCat(in.pid()), in.log_err_path()});
        table.AddRow({"", "", in.log_out_path()});
      }
    } else {
      table.AddRow({"INSTANCE NAME", "PID", "IP", "IMAGE"});
      for (const auto& in : reply.instances()) {
        table.AddRow({in.name(), absl::StrCat(in.pid()), in.ip(), in.image()});
      }
    }
    out = table.Render();
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

struct StopState {
  std::string user, pattern, signal;
  bool all = false, force = false, user_daemon = false;
  int timeout = 10;
};

// SIGTERM, TERM, term, 15.
absl::StatusOr<int> ParseSignal(const std::string& text) {
  int number;
  if (absl::SimpleAtoi(text, &number)) {
    if (number >= 1 && number <= SIGRTMAX) return number;
  } else {
    std::string name = absl::AsciiStrToUpper(text);
    if (absl::StartsWith(name, "SIG")) name = name.substr(3);
    for (int sig = 1; sig < NSIG; ++sig) {
      const char* abbrev = ::sigabbrev_np(sig);
      if (abbrev != nullptr && name == abbrev) return sig;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("--signal ", text, ": not a signal"));
}

absl::Status StopInstances(const StopState& s, const std::string& socket_flag) {
  v1::InstanceStopRequest request;
  if (!s.signal.empty()) {
    ASSIGN_OR_RETURN(int sig, ParseSignal(s.signal));
    request.set_signal(sig);
  }
  if (s.all && !s.pattern.empty()) {
    return absl::InvalidArgumentError("give an instance name or --all, not both");
  }
  if (!s.all && s.pattern.empty()) {
    return absl::InvalidArgumentError("instance stop needs an instance name, a glob, or --all");
  }
  if (s.timeout < 1) return absl::InvalidArgumentError("--timeout must be at least 1 second");
  request.set_pattern(s.pattern);
  request.set_all(s.all);
  request.set_timeout_seconds(s.timeout);
  request.set_force(s.force);
  request.set_user(s.user);
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, s.user_daemon));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(s.timeout) + kListTimeout));
  v1::InstanceStopReply reply;
  grpc::Status status = stub->InstanceStop(&context, request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  for (const auto& in : reply.stopped()) {
    log::Info(
        absl::StrCat("Stopping ", in.name(), " instance of ", in.image(), " (PID=", in.pid(), ")"));
  }
  return absl::OkStatus();
}

struct StatsState {
  std::string user, name;
  bool json = false, no_stream = false, user_daemon = false;
};

// docker's units.BytesSize, which Apptainer's stats table uses: "%.4g" and
// a binary unit.
std::string BytesSize(double size) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int i = 0;
  while (size >= 1024 && i < 6) {
    size /= 1024;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g%s", size, kUnits[i]);
  return buf;
}

uint64_t MemTotal() {
  std::string text;
  if (FILE* f = std::fopen("/proc/meminfo", "re")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      unsigned long long kib;
      if (std::sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
        std::fclose(f);
        return kib * 1024;
      }
    }
    std::fclose(f);
  }
  return 0;
}

absl::StatusOr<v1::InstanceStatsReply> Sample(v1::Berth::Stub& stub, const StatsState& s) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kListTimeout));
  v1::InstanceStatsRequest request;
  request.set_name(s.name);
  request.set_user(s.user);
  v1::InstanceStatsReply reply;
  grpc::Status status = stub.InstanceStats(&context, request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return reply;
}

// The opencontainers/cgroups Stats shape Apptainer prints, tab-indented.
std::string StatsJson(const v1::InstanceStatsReply& r) {
  return absl::StrCat(
      "{\n\t\"cpu_stats\": {\n\t\t\"cpu_usage\": {\n\t\t\t\"total_usage\": ", r.cpu_usage_ns(),
      ",\n\t\t\t\"usage_in_kernelmode\": ", r.cpu_system_ns(),
      ",\n\t\t\t\"usage_in_usermode\": ", r.cpu_user_ns(),
      "\n\t\t},\n\t\t\"throttling_data\": {}\n\t},\n\t\"cpuset_stats\": {},\n",
      "\t\"memory_stats\": {\n\t\t\"usage\": {\n\t\t\t\"usage\": ", r.memory_usage(),
      ",\n\t\t\t\"limit\": ", r.memory_limit(), "\n\t\t}\n\t},\n",
      "\t\"pids_stats\": {\n\t\t\"current\": ", r.pids_current(),
      ",\n\t\t\"limit\": ", r.pids_limit(), "\n\t},\n",
      "\t\"blkio_stats\": {\n\t\t\"io_service_bytes_recursive\": [\n",
      "\t\t\t{\n\t\t\t\t\"major\": 0,\n\t\t\t\t\"minor\": 0,\n\t\t\t\t\"op\": \"Read\",\n",
      "\t\t\t\t\"value\": ", r.io_read_bytes(), "\n\t\t\t},\n",
      "\t\t\t{\n\t\t\t\t\"major\": 0,\n\t\t\t\t\"minor\": 0,\n\t\t\t\t\"op\": \"Write\",\n",
      "\t\t\t\t\"value\": ", r.io_write_bytes(), "\n\t\t\t}\n\t\t]\n\t},\n",
      "\t\"hugetlb_stats\": {},\n\t\"rdma_stats\": {},\n\t\"misc_stats\": {}\n}\n");
}

std::string StatsTable(const v1::InstanceStatsReply& a, const v1::InstanceStatsReply& b) {
  double wall = static_cast<double>(b.sampled_ns() - a.sampled_ns());
  double cpu =
      wall > 0 ? 100.0 * static_cast<double>(b.cpu_usage_ns() - a.cpu_usage_ns()) / wall : 0.0;
  uint64_t limit = b.memory_limit() != 0 ? b.memory_limit() : MemTotal();
  double mem = limit != 0 ? 100.0 * static_cast<double>(b.memory_usage()) / limit : 0.0;
  TabWriter table(4);
  table.AddRow({"INSTANCE NAME", "CPU USAGE", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O", "PIDS"});
  char cpu_text[32], mem_text[32];
  std::snprintf(cpu_text, sizeof cpu_text, "%.2f%%", cpu);
  std::snprintf(mem_text, sizeof mem_text, "%.2f%%", mem);
  table.AddRow({b.instance().name(), cpu_text,
                absl::StrCat(BytesSize(static_cast<double>(b.memory_usage())), " / ",
                             BytesSize(static_cast<double>(limit))),
                mem_text,
                absl::StrCat(BytesSize(static_cast<double>(b.io_read_bytes())), " / ",
                             BytesSize(static_cast<double>(b.io_write_bytes()))),
                absl::StrCat(b.pids_current())});
  return table.Render();
}

absl::Status InstanceStats(const StatsState& s, const std::string& socket_flag) {
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, s.user_daemon));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  auto stub = v1::Berth::NewStub(channel);
  ASSIGN_OR_RETURN(v1::InstanceStatsReply first, Sample(*stub, s));
  // Figures that are not the instance's alone are never shown as if they were.
  if (!first.note().empty()) log::Warning(first.note());
  if (s.json) {
    std::string out = StatsJson(first);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return absl::OkStatus();
  }
  // CPU % is the usage between two samples over the time between them.
  for (;;) {
    absl::SleepFor(s.no_stream ? absl::Milliseconds(500) : absl::Seconds(1));
    ASSIGN_OR_RETURN(v1::InstanceStatsReply next, Sample(*stub, s));
    std::string out = StatsTable(first, next);
    if (!s.no_stream) out = "\033[H\033[2J" + out;  // the screen cleared, as Apptainer
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    if (s.no_stream) return absl::OkStatus();
    first = std::move(next);
  }
}

}  // namespace

void RegisterInstanceCommands(CLI::App& app, const std::string& socket_flag,
                              std::shared_ptr<absl::Status> result) {
  CLI::App* instance = app.add_subcommand("instance", "Manage containers running as services");
  instance->require_subcommand(1);
  AddStart(*instance, "start", "Start a named instance of an image (runs its startscript)", false,
           socket_flag, result);
  AddStart(*instance, "run", "Start a named instance of an image (runs its runscript)", true,
           socket_flag, result);

  auto list = std::make_shared<ListState>();
  CLI::App* lc = instance->add_subcommand("list", "List running instances");
  lc->add_option("-u,--user", list->user, "root: list this user's instances");
  lc->add_flag("-j,--json", list->json, "print as JSON");
  lc->add_flag("-l,--logs", list->logs, "show the log files' paths");
  lc->add_flag("-a,--all", list->all, "root: every user's instances");
  lc->add_flag("--user-daemon", list->user_daemon, "use a private berthd");
  lc->add_option("pattern", list->pattern, "a glob over instance names");
  lc->callback([list, &socket_flag, result] { *result = ListInstances(*list, socket_flag); });

  auto stop = std::make_shared<StopState>();
  CLI::App* sc = instance->add_subcommand("stop", "Stop named instances");
  sc->add_flag("-a,--all", stop->all, "stop all of your instances");
  sc->add_flag("-F,--force", stop->force, "SIGKILL at once");
  sc->add_option("-s,--signal", stop->signal, "signal to send first (default SIGINT)");
  sc->add_option("-t,--timeout", stop->timeout, "seconds before SIGKILL (default 10)");
  sc->add_option("-u,--user", stop->user, "root: stop this user's instances");
  sc->add_flag("--user-daemon", stop->user_daemon, "use a private berthd");
  sc->add_option("pattern", stop->pattern, "an instance name or a glob");
  sc->callback([stop, &socket_flag, result] { *result = StopInstances(*stop, socket_flag); });

  auto stats = std::make_shared<StatsState>();
  CLI::App* tc = instance->add_subcommand("stats", "Show an instance's resource usage");
  tc->add_option("-u,--user", stats->user, "root: this user's instance");
  tc->add_flag("-j,--json", stats->json, "print as JSON (implies --no-stream)");
  tc->add_flag("--no-stream", stats->no_stream, "print once instead of every second");
  tc->add_flag("--user-daemon", stats->user_daemon, "use a private berthd");
  tc->add_option("name", stats->name, "the instance's name")->required();
  tc->callback([stats, &socket_flag, result] { *result = InstanceStats(*stats, socket_flag); });
}

}  // namespace berth::client
