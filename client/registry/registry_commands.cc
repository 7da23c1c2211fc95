#include "client/registry/registry_commands.h"

#include <unistd.h>

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
#include "client/registry/progress.h"
#include "client/registry/transfer_command.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"
#include "oras/credentials.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

struct CacheOptions {
  int days = 0;
  std::vector<std::string> types;
  bool dry_run = false;
  bool force = false;
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

absl::Status RunCacheList(const std::string& socket_flag) {
  ASSIGN_OR_RETURN(auto stub, Stub(socket_flag));
  grpc::ClientContext context;
  v1::CacheListReply reply;
  grpc::Status status = stub->CacheList(&context, v1::CacheListRequest(), &reply);
  if (!status.ok()) return Annotate(rpc::FromGrpcStatus(status), "listing the node cache");
  std::printf("%-6s %-71s %10s  %-12s %s\n", "TYPE", "DIGEST", "SIZE", "LAST USED", "USERS");
  int64_t total = 0;
  for (const v1::CacheEntry& e : reply.entries()) {
    std::string users;
    for (uint32_t uid : e.users()) absl::StrAppend(&users, users.empty() ? "" : ",", uid);
    std::printf("%-6s %-71s %10s  %-12s %s\n", e.type().c_str(), e.digest().c_str(),
                HumanBytes(e.size()).c_str(), Ago(e.mtime_unix()).c_str(),
                users.empty() ? "-" : users.c_str());
    total += e.size();
  }
  std::printf("There are %d entries using %s.\n", reply.entries_size(), HumanBytes(total).c_str());
  return absl::OkStatus();
}

absl::Status RunCacheClean(const std::string& socket_flag, const CacheOptions& o) {
  ASSIGN_OR_RETURN(auto stub, Stub(socket_flag));
  grpc::ClientContext context;
  v1::CacheCleanRequest request;
  request.set_days(o.days);
  for (const std::string& t : o.types) request.add_types(t);
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

}  // namespace

void RegisterRegistryCommands(CLI::App& app, const std::string& socket_flag,
                              std::shared_ptr<absl::Status> result) {
  auto pull = std::make_shared<PullOptions>();
  CLI::App* pull_cmd =
      app.add_subcommand("pull", "Pull an image from a registry (oras://, docker://)");
  pull_cmd->add_option("output", pull->output, "Output SIF file (default <name>_<tag>.sif)");
  pull_cmd->add_option("uri", pull->reference, "oras://REG/REPO:TAG or docker://REPO:TAG")
      ->required();
  pull_cmd->add_flag("--no-https,--nohttps", pull->no_https, "Use plain HTTP for this registry");
  pull_cmd->add_flag("-F,--force", pull->force, "Overwrite an existing output file");
  pull_cmd->add_flag("-q,--quiet", pull->quiet, "No progress output");
  pull_cmd->add_option("--authfile", pull->authfile, "Credentials file (docker config format)");
  pull_cmd->add_option("--arch", pull->arch, "Architecture to pull from a multi-platform index");
  pull_cmd->fallthrough();
  pull_cmd->callback([&socket_flag, result, pull] { *result = RunPull(socket_flag, *pull); });

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
  push_cmd->fallthrough();
  push_cmd->callback([&socket_flag, result, push] { *result = RunPush(socket_flag, *push); });

  CLI::App* cache = app.add_subcommand("cache", "The node cache of registry content");
  cache->require_subcommand(1);
  cache->fallthrough();
  cache->add_subcommand("list", "List your node cache entries (root: every entry)")
      ->callback([&socket_flag, result] { *result = RunCacheList(socket_flag); });
  auto clean = std::make_shared<CacheOptions>();
  CLI::App* clean_cmd =
      cache->add_subcommand("clean", "Remove your node cache entries (root: every entry)");
  clean_cmd->add_option("-D,-d,--days", clean->days, "Only entries unused for this many days");
  clean_cmd->add_option("-T,--type", clean->types, "oras, blob, sif or all")->delimiter(',');
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
  login_cmd->callback([&socket_flag, result, login] { *result = RunLogin(socket_flag, *login); });
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
