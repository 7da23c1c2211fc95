#include "client/registry/registry_commands.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/cli_log.h"
#include "client/env_flags.h"
#include "client/registry/progress.h"
#include "client/registry/transfer_command.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"
#include "oras/credentials.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

// pull and push: Apptainer's --docker-login/-username/-password/-host and
// --library, refused by name; pull's --sandbox refused, --no-cleanup and
// --tmpdir accepted (nothing to keep, no temporary files in the client).
void AddRegistryParityFlags(CLI::App& cmd) {
  cmd.add_flag("--docker-login")->group("");
  for (const char* name :
       {"--docker-username", "--docker-password", "--docker-host", "--library"}) {
    cmd.add_option(name, "")->group("");
  }
  if (cmd.get_name() == "pull") {
    cmd.add_flag("--sandbox")->group("");
    cmd.add_flag("--no-cleanup")->group("");
    cmd.add_option("--tmpdir", "")->group("");
  }
}

absl::Status CheckRegistryParityFlags(const CLI::App& cmd) {
  for (const char* name : {"--docker-login", "--docker-username", "--docker-password"}) {
    if (cmd.count(name) > 0) {
      return absl::UnimplementedError(
          absl::StrCat(name, " is not supported: ",
                       "give registry credentials with `berth registry login` or --authfile"));
    }
  }
  if (cmd.count("--docker-host") > 0) {
    return absl::UnimplementedError(
        "--docker-host is not supported: berth pulls from registries only, not from a Docker "
        "daemon");
  }
  if (cmd.count("--library") > 0) {
    return absl::UnimplementedError(
        "--library is not supported: library:// services are gone or closed; use oras:// or "
        "docker://");
  }
  if (cmd.get_option_no_throw("--sandbox") != nullptr && cmd.count("--sandbox") > 0) {
    return absl::UnimplementedError(
        "--sandbox is not supported by pull: build one with `berth build --sandbox DIR URI`");
  }
  return absl::OkStatus();
}

struct CacheOptions {
  int days = 0;
  std::vector<std::string> types;
  bool dry_run = false;
  bool force = false;
};

struct CacheListOptions {
  std::vector<std::string> types;
  bool verbose = false;
  bool long_format = false;
};

struct LoginOptions {
  std::string target;
  std::string username;
  std::string password;
  bool password_stdin = false;
  bool no_https = false;
  std::string authfile;
};

absl::StatusOr<std::unique_ptr<v1::Berth::Stub>> Stub(const std::string& socket_flag) {
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket));
  return v1::Berth::NewStub(channel);
}

std::string Ago(int64_t mtime) {
  int64_t secs = static_cast<int64_t>(std::time(nullptr)) - mtime;
  if (secs < 3600) return absl::StrCat(secs / 60, " min ago");
  if (secs < 86400) return absl::StrCat(secs / 3600, " h ago");
  return absl::StrCat(secs / 86400, " days ago");
}

// Apptainer's cache type names → the node cache's ("oras", "blob", "sif",
// "sif-build"): its "oci-tmp" (alias "oci") holds images converted from OCI
// sources, our "sif" (and "sif-build", the builds' fast intermediates); "build-stage" is
// berth's own (the stage cache of `berth build --cache`). "library", "shub" and "net"
// name caches a node cache never has: they select nothing. false for a name that is no type at all.
bool NodeCacheTypes(const std::vector<std::string>& names, std::vector<std::string>& types,
                    bool& all, std::string& unknown) {
  all = names.empty();
  for (const std::string& n : names) {
    if (n == "all") {
      all = true;
    } else if (n == "oras" || n == "blob" || n == "sif" || n == "sif-build" || n == "build-stage") {
      types.push_back(n);
    } else if (n == "blobs") {
      types.push_back("blob");
    } else if (n == "oci-tmp" || n == "oci") {
      types.push_back("sif");
      types.push_back("sif-build");
    } else if (n != "library" && n != "shub" && n != "net") {
      unknown = n;
      return false;
    }
  }
  if (all) types.clear();
  return true;
}

// The type as Apptainer names it in `cache list -v`.
const char* ApptainerType(const std::string& type) {
  return type == "sif" || type == "sif-build" ? "oci-tmp" : type.c_str();
}

// Apptainer's fs.FindSize: decimal units, two decimals.
std::string FindSize(int64_t size) {
  double factor = 1e12;
  const char* unit = "TB";
  if (size < 1000000) {
    factor = 1e3, unit = "kB";
  } else if (size < 1000000000) {
    factor = 1e6, unit = "MB";
  } else if (size < 1000000000000) {
    factor = 1e9, unit = "GB";
  }
  return absl::StrFormat("%.2f %s", static_cast<double>(size) / factor, unit);
}

absl::Status RunCacheList(const std::string& socket_flag, const CacheListOptions& o) {
  std::vector<std::string> types;
  bool all = false;
  std::string unknown;
  if (!NodeCacheTypes(o.types, types, all, unknown)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache list: unknown cache type '", unknown,
                     "' (library, oci, shub, blob, net, oras, build-stage, all)"));
  }
  ASSIGN_OR_RETURN(auto stub, Stub(socket_flag));
  grpc::ClientContext context;
  v1::CacheListReply reply;
  grpc::Status status = stub->CacheList(&context, v1::CacheListRequest(), &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "listing the node cache");
  auto selected = [&](const v1::CacheEntry& e) {
    return all || std::find(types.begin(), types.end(), e.type()) != types.end();
  };
  if (o.long_format) {
    // berth's own view: whole digests, last use and the users of each entry.
    std::printf("%-11s %-71s %10s  %-12s %s\n", "TYPE", "DIGEST", "SIZE", "LAST USED", "USERS");
    int64_t total = 0;
    int shown = 0;
    for (const v1::CacheEntry& e : reply.entries()) {
      if (!selected(e)) continue;
      std::string users;
      for (uint32_t uid : e.users()) absl::StrAppend(&users, users.empty() ? "" : ",", uid);
      std::printf("%-11s %-71s %10s  %-12s %s\n", e.type().c_str(), e.digest().c_str(),
                  HumanBytes(e.size()).c_str(), Ago(e.mtime_unix()).c_str(),
                  users.empty() ? "-" : users.c_str());
      total += e.size();
      ++shown;
    }
    std::printf("There are %d entries using %s.\n", shown, HumanBytes(total).c_str());
    return absl::OkStatus();
  }
  // Apptainer's: an optional table, then what the containers (SIF files:
  // oras, oci-tmp) and the OCI blobs use.
  if (o.verbose) std::printf("%-24s %-22s %-16s %s\n", "NAME", "DATE CREATED", "SIZE", "TYPE");
  int containers = 0, blobs = 0;
  int64_t container_bytes = 0, blob_bytes = 0;
  for (const v1::CacheEntry& e : reply.entries()) {
    if (!selected(e)) continue;
    if (o.verbose) {
      std::time_t t = static_cast<std::time_t>(e.mtime_unix());
      std::tm tm{};
      ::localtime_r(&t, &tm);
      char date[32];
      std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
      std::string name = e.digest().substr(e.digest().find(':') + 1);
      std::printf("%-24.22s %-22s %-16s %s\n", name.c_str(), date, FindSize(e.size()).c_str(),
                  ApptainerType(e.type()));
    }
    if (e.type() == "blob") {
      ++blobs, blob_bytes += e.size();
    } else {
      ++containers, container_bytes += e.size();
    }
  }
  if (o.verbose) std::printf("\n");
  // Apptainer names the kinds the -T filter asked for.
  const bool show_containers =
      all || std::any_of(types.begin(), types.end(), [](auto& t) { return t != "blob"; }) ||
      (types.empty() && !o.types.empty());
  const bool show_blobs = all || std::find(types.begin(), types.end(), "blob") != types.end();
  std::string line = "There are";
  if (show_containers) {
    absl::StrAppend(&line, " ", containers, " container file(s) using ", FindSize(container_bytes));
  }
  if (show_containers && show_blobs) absl::StrAppend(&line, " and");
  if (show_blobs)
    absl::StrAppend(&line, " ", blobs, " oci blob file(s) using ", FindSize(blob_bytes));
  std::printf("%s of space\nTotal space used: %s\n", line.c_str(),
              FindSize(container_bytes + blob_bytes).c_str());
  return absl::OkStatus();
}

absl::Status RunCacheClean(const std::string& socket_flag, const CacheOptions& o) {
  std::vector<std::string> types;
  bool all = false;
  std::string unknown;
  if (!NodeCacheTypes(o.types, types, all, unknown)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache clean: unknown cache type '", unknown,
                     "' (library, oci, shub, blob, net, oras, build-stage, all)"));
  }
  if (o.dry_run) std::printf("User requested a dry run. Not actually deleting any data!\n");
  // Only types the node cache never has (library, shub, net): nothing to do.
  if (!all && types.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto stub, Stub(socket_flag));
  grpc::ClientContext context;
  v1::CacheCleanRequest request;
  request.set_days(o.days);
  for (const std::string& t : types) request.add_types(t);
  request.set_dry_run(o.dry_run);
  v1::CacheCleanReply reply;
  grpc::Status status = stub->CacheClean(&context, request, &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "cleaning the node cache");
  for (const v1::CacheEntry& e : reply.removed()) {
    std::printf("%s %s %s\n", o.dry_run ? "would remove" : "removed", e.type().c_str(),
                e.digest().c_str());
  }
  // Entries other users also pulled stay for them; only our reference goes.
  for (const v1::CacheEntry& e : reply.released()) {
    std::printf("%s %s %s\n", o.dry_run ? "would leave to other users" : "left to other users",
                e.type().c_str(), e.digest().c_str());
  }
  for (const v1::CacheEntry& e : reply.in_use()) {
    std::printf("kept, in use by a pull: %s %s\n", e.type().c_str(), e.digest().c_str());
  }
  std::fflush(stdout);  // the listing before the summary, in a shared terminal or file
  log::Info(absl::StrFormat(
      "%s %d entries%s", o.dry_run ? "Would remove" : "Removed", reply.removed_size(),
      reply.released_size() == 0
          ? ""
          : absl::StrFormat(" (%d shared with other users kept for them)", reply.released_size())));
  return absl::OkStatus();
}

// "oras://host", "docker://host", "https://host" or "host" → "host".
std::string RegistryHost(std::string target) {
  for (const char* prefix : {"oras://", "docker://", "https://", "http://"}) {
    if (absl::StartsWith(target, prefix)) target.erase(0, strlen(prefix));
  }
  if (size_t slash = target.find('/'); slash != std::string::npos) target.resize(slash);
  if (target == "docker.io") target = "index.docker.io";
  return target;
}

absl::StatusOr<std::string> AuthFile(const std::string& flag) {
  if (!flag.empty()) return flag;
  return oras::BerthAuthFile();
}

// Asks the daemon whether the registry accepts the credentials (the client
// itself has no network code), as Apptainer checks before storing them.
absl::Status CheckLogin(const std::string& socket_flag, const std::string& host,
                        const LoginOptions& o) {
  ASSIGN_OR_RETURN(auto stub, Stub(socket_flag));
  grpc::ClientContext context;
  // The daemon retries a failing registry with backoff; a dead one ends here.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::CheckLoginRequest request;
  request.set_registry(host);
  request.mutable_auth()->set_username(o.username);
  request.mutable_auth()->set_password(o.password);
  request.set_no_https(o.no_https);
  v1::CheckLoginReply reply;
  return rpc::FromGrpcStatus(stub->CheckLogin(&context, request, &reply));
}

absl::Status RunLogin(const std::string& socket_flag, LoginOptions o) {
  std::string host = RegistryHost(o.target);
  if (host.empty()) return absl::InvalidArgumentError("registry login: no registry named");
  if (o.password_stdin) {
    if (!std::getline(std::cin, o.password)) {
      return absl::InvalidArgumentError("registry login: no password on standard input");
    }
  }
  if (o.username.empty() || o.password.empty()) {
    return absl::InvalidArgumentError(
        "registry login: --username and --password (or --password-stdin) are required");
  }
  ASSIGN_OR_RETURN(std::string file, AuthFile(o.authfile));
  RETURN_IF_ERROR_CTX(CheckLogin(socket_flag, host, o), "registry login");
  RETURN_IF_ERROR_CTX(oras::StoreCredentials(file, host, {o.username, o.password, ""}),
                      "registry login");
  log::Info(absl::StrCat("Token stored in ", file));
  return absl::OkStatus();
}

absl::Status RunLogout(const std::string& target, const std::string& authfile) {
  ASSIGN_OR_RETURN(std::string file, AuthFile(authfile));
  RETURN_IF_ERROR_CTX(oras::RemoveCredentials(file, RegistryHost(target)), "registry logout");
  log::Info("Logout succeeded");
  return absl::OkStatus();
}

absl::Status RunList(const std::string& authfile) {
  ASSIGN_OR_RETURN(std::string file, AuthFile(authfile));
  ASSIGN_OR_RETURN(std::vector<std::string> hosts, oras::ListCredentialRegistries(file));
  std::printf("URI%-30sSECURE?\n", "");
  for (const std::string& h : hosts) std::printf("%-33s✓\n", h.c_str());
  return absl::OkStatus();
}

// The environment forms of pull's flags, as Apptainer names them.
absl::Status PullFlagsFromEnv(const CLI::App& cmd, PullOptions& o) {
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--force", "FORCE", o.force));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--disable-cache", "DISABLE_CACHE", o.disable_cache));
  if (cmd.count("--no-https") == 0) {
    for (const char* key : {"NOHTTPS", "NO_HTTPS"}) {
      if (EnvForm(key) == nullptr) continue;
      RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-https", key, o.no_https));
      break;
    }
  }
  StringFromEnv(cmd, "--authfile", "AUTH_FILE", o.authfile);
  StringFromEnv(cmd, "--arch", "PULL_ARCH", o.arch);
  // --arch-variant: berthd reads one platform string, OS/ARCH/VARIANT
  // (ARCH as uname or Go spell it; the node's when --arch is not given).
  if (!o.arch_variant.empty()) {
    if (o.arch.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          "--arch-variant: give the variant either there or in --arch OS/ARCH/VARIANT");
    }
    std::string arch = o.arch;
    if (arch.empty()) {
      struct utsname u {};
      arch = ::uname(&u) == 0 ? u.machine : "x86_64";
    }
    o.arch = absl::StrCat("linux/", arch, "/", o.arch_variant);
  }
  StringFromEnv(cmd, "--name", "PULL_NAME", o.name);
  if (cmd.count("--dir") == 0) {
    for (const char* key : {"PULLDIR", "PULLFOLDER"}) {
      if (const char* v = EnvForm(key); v != nullptr) {
        o.dir = v;
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterRegistryCommands(CLI::App& app, const std::string& socket_flag,
                              std::shared_ptr<absl::Status> result) {
  auto pull = std::make_shared<PullOptions>();
  auto pull_args = std::make_shared<std::vector<std::string>>();
  CLI::App* pull_cmd =
      app.add_subcommand("pull", "Pull an image from a registry (oras://, docker://)");
  // Apptainer's `pull [output] URI`: the URI is the last argument.
  pull_cmd->add_option("args", *pull_args, "[output SIF (default NAME_TAG.sif)] URI")
      ->expected(1, 2)
      ->required();
  pull_cmd->add_flag("--no-https,--nohttps", pull->no_https, "Use plain HTTP for this registry");
  pull_cmd->add_flag("-F,--force", pull->force, "Overwrite an existing output file");
  pull_cmd->add_flag("-q,--quiet", pull->quiet, "No progress output");
  pull_cmd->add_option("--authfile", pull->authfile, "Credentials file (docker config format)");
  pull_cmd->add_option("--arch", pull->arch, "Architecture to pull from a multi-platform index");
  pull_cmd->add_option("--arch-variant", pull->arch_variant,
                       "Architecture variant to pull (v7, v8)");
  pull_cmd->add_option("--dir", pull->dir, "Write the image in this directory");
  pull_cmd->add_option("--name", pull->name, "Name of the image file")->group("");
  pull_cmd->add_flag("--disable-cache", pull->disable_cache,
                     "Neither use nor fill the node cache for this pull");
  // Apptainer's deprecated -U/--allow-unsigned and hidden
  // --allow-unauthenticated: a pull never refuses an unsigned image.
  auto unsigned_ok = std::make_shared<bool>(false);
  pull_cmd->add_flag("-U,--allow-unsigned,--allow-unauthenticated", *unsigned_ok, "")->group("");
  AddRegistryParityFlags(*pull_cmd);
  pull_cmd->fallthrough();
  pull_cmd->callback([&socket_flag, result, pull, pull_args, pull_cmd] {
    pull->reference = pull_args->back();
    if (pull_args->size() == 2) pull->output = pull_args->front();
    *result = CheckRegistryParityFlags(*pull_cmd);
    if (result->ok()) *result = PullFlagsFromEnv(*pull_cmd, *pull);
    if (result->ok()) *result = RunPull(socket_flag, *pull);
  });

  auto push = std::make_shared<PushOptions>();
  CLI::App* push_cmd = app.add_subcommand("push", "Push a SIF image to an OCI registry (oras://)");
  push_cmd->add_option("image", push->image, "SIF file")->required();
  push_cmd->add_option("uri", push->reference, "oras://REG/REPO:TAG")->required();
  push_cmd->add_flag("--no-https,--nohttps", push->no_https, "Use plain HTTP for this registry");
  push_cmd->add_flag("-q,--quiet", push->quiet, "No progress output");
  push_cmd->add_option("--authfile", push->authfile, "Credentials file (docker config format)");
  push_cmd->add_option("--annotation", push->annotations, "Manifest annotation key=value");
  push_cmd->add_option("-D,--description", push->description, "Manifest description annotation");
  push_cmd->add_option("--chunk-size", push->chunk_size, "Upload in chunks of this many bytes");
  // Apptainer's -U/--allow-unsigned: berth pushes an unsigned image as it is.
  auto push_unsigned = std::make_shared<bool>(false);
  push_cmd->add_flag("-U,--allow-unsigned", *push_unsigned, "")->group("");
  push_cmd->fallthrough();
  AddRegistryParityFlags(*push_cmd);
  push_cmd->callback([&socket_flag, result, push, push_cmd] {
    *result = CheckRegistryParityFlags(*push_cmd);
    if (result->ok()) *result = RunPush(socket_flag, *push);
  });

  CLI::App* cache = app.add_subcommand("cache", "The node cache of registry content");
  cache->require_subcommand(1);
  cache->fallthrough();
  auto list = std::make_shared<CacheListOptions>();
  CLI::App* list_cmd_cache =
      cache->add_subcommand("list", "List your node cache entries (root: every entry)");
  list_cmd_cache
      ->add_option("-T,--type", list->types,
                   "Cache types to list: library, oci, shub, blob(s), oras, net, all")
      ->delimiter(',');
  list_cmd_cache->add_flag("-v,--verbose", list->verbose, "Include the cache entries");
  list_cmd_cache->add_flag("--long", list->long_format,
                           "Whole digests, last use and users of each entry");
  list_cmd_cache->callback(
      [&socket_flag, result, list] { *result = RunCacheList(socket_flag, *list); });
  auto clean = std::make_shared<CacheOptions>();
  CLI::App* clean_cmd =
      cache->add_subcommand("clean", "Remove your node cache entries (root: every entry)");
  // -d was berth's spelling before Apptainer's -D; kept for old scripts.
  clean_cmd->add_option("-D,-d,--days", clean->days, "Only entries unused for this many days");
  clean_cmd
      ->add_option("-T,--type", clean->types,
                   "Cache types to clean: library, oci, shub, blob, net, oras, all")
      ->delimiter(',');
  clean_cmd->add_flag("-n,--dry-run", clean->dry_run, "Show what would be removed");
  clean_cmd->add_flag("-f,--force", clean->force, "Do not ask (berth never asks)");
  clean_cmd->callback(
      [&socket_flag, result, clean] { *result = RunCacheClean(socket_flag, *clean); });

  CLI::App* registry = app.add_subcommand("registry", "Registry credentials");
  registry->require_subcommand(1);
  auto login = std::make_shared<LoginOptions>();
  CLI::App* login_cmd = registry->add_subcommand("login", "Store credentials for a registry");
  login_cmd->add_option("registry", login->target, "oras://HOST, docker://HOST or HOST")
      ->required();
  login_cmd->add_option("-u,--username", login->username, "User name");
  login_cmd->add_option("-p,--password", login->password, "Password");
  login_cmd->add_flag("--password-stdin", login->password_stdin, "Read the password from stdin");
  login_cmd->add_option("--authfile", login->authfile, "Credentials file to write");
  login_cmd->add_flag("--no-https,--nohttps", login->no_https,
                      "Use plain HTTP to check the credentials");
  login_cmd->callback([&socket_flag, result, login, login_cmd] {
    StringFromEnv(*login_cmd, "--username", "LOGIN_USERNAME", login->username);
    StringFromEnv(*login_cmd, "--password", "LOGIN_PASSWORD", login->password);
    StringFromEnv(*login_cmd, "--authfile", "AUTH_FILE", login->authfile);
    *result = RunLogin(socket_flag, *login);
  });
  auto logout_target = std::make_shared<std::string>();
  auto logout_file = std::make_shared<std::string>();
  CLI::App* logout_cmd = registry->add_subcommand("logout", "Remove stored credentials");
  logout_cmd->add_option("registry", *logout_target, "Registry")->required();
  logout_cmd->add_option("--authfile", *logout_file, "Credentials file");
  logout_cmd->callback(
      [result, logout_target, logout_file] { *result = RunLogout(*logout_target, *logout_file); });
  auto list_file = std::make_shared<std::string>();
  CLI::App* list_cmd = registry->add_subcommand("list", "List registries with stored credentials");
  list_cmd->add_option("--authfile", *list_file, "Credentials file");
  list_cmd->callback([result, list_file] { *result = RunList(*list_file); });
}

}  // namespace berth::client
