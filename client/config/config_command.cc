#include "client/config/config_command.h"

#include <pwd.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "subid/subid_edit.h"
#include "subid/subid_io.h"

namespace berth::client {
namespace {

struct FakerootFlags {
  bool add = false, remove = false, enable = false, disable = false;
  std::string user;
  std::string subuid_path = "/etc/subuid";
  std::string subgid_path = "/etc/subgid";
};

struct Operation {
  subid::EditOp op;
  const char* verb;  // Apptainer's "while adding USER: ..."
};

// Apptainer's precedence when several are given: add, remove, enable, disable.
absl::StatusOr<Operation> OperationOf(const FakerootFlags& f) {
  if (f.add) return Operation{subid::EditOp::kAdd, "adding"};
  if (f.remove) return Operation{subid::EditOp::kRemove, "removing"};
  if (f.enable) return Operation{subid::EditOp::kEnable, "enabling"};
  if (f.disable) return Operation{subid::EditOp::kDisable, "disabling"};
  return absl::InvalidArgumentError("you must specify an option (eg: --add/--remove)");
}

absl::StatusOr<subid::User> LookUpUser(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  int err = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("could not retrieve user information for ", name, ": ",
                                            err != 0 ? strerror(err) : "no such user"));
  }
  return subid::User{pw.pw_uid, pw.pw_name};
}

// Reads, edits and replaces both files under their locks; nothing is
// written unless both edits succeed.
absl::Status EditBoth(const FakerootFlags& f, subid::EditOp op, const subid::User& user) {
  ASSIGN_OR_RETURN(subid::SubidLock uid_lock, subid::SubidLock::Acquire(f.subuid_path));
  ASSIGN_OR_RETURN(subid::SubidLock gid_lock, subid::SubidLock::Acquire(f.subgid_path));
  ASSIGN_OR_RETURN(std::string uids, subid::ReadSubidFile(f.subuid_path));
  ASSIGN_OR_RETURN(std::string gids, subid::ReadSubidFile(f.subgid_path));
  ASSIGN_OR_RETURN(std::string new_uids, subid::EditFile(uids, op, user, f.subuid_path));
  ASSIGN_OR_RETURN(std::string new_gids, subid::EditFile(gids, op, user, f.subgid_path));
  if (new_uids != uids) RETURN_IF_ERROR(subid::ReplaceSubidFile(f.subuid_path, new_uids));
  if (new_gids != gids) RETURN_IF_ERROR(subid::ReplaceSubidFile(f.subgid_path, new_gids));
  return absl::OkStatus();
}

// Privilege: root (checked: Apptainer's CheckRoot message).
absl::Status RunFakerootConfig(const FakerootFlags& f) {
  if (::geteuid() != 0) {
    return absl::PermissionDeniedError(
        "\"berth config fakeroot\" command requires root privileges");
  }
  ASSIGN_OR_RETURN(Operation operation, OperationOf(f));
  std::string context = absl::StrCat("while ", operation.verb, " ", f.user);
  absl::StatusOr<subid::User> user = LookUpUser(f.user);
  if (!user.ok()) return Annotate(user.status(), context);
  return Annotate(EditBoth(f, operation.op, *user), context);
}

}  // namespace

void RegisterConfigCommands(CLI::App& app, std::shared_ptr<absl::Status> result) {
  CLI::App* config = app.add_subcommand("config", "Manage the configuration of berth (root)");
  config->require_subcommand(1);
  CLI::App* cmd = config->add_subcommand(
      "fakeroot", "Manage fakeroot user mappings in /etc/subuid and /etc/subgid");
  auto flags = std::make_shared<FakerootFlags>();
  cmd->add_flag(
      "-a,--add", flags->add,
      "add a fakeroot mapping entry for a user so they can use --fakeroot with their own ids");
  cmd->add_flag("-r,--remove", flags->remove,
                "remove the user fakeroot mapping entry so --fakeroot falls back to the "
                "root-mapped namespace");
  cmd->add_flag("-e,--enable", flags->enable,
                "enable a user fakeroot mapping entry (the user mapping must be present)");
  cmd->add_flag("-d,--disable", flags->disable,
                "disable a user fakeroot mapping entry (the user mapping must be present)");
  cmd->add_option("user", flags->user, "the user name")->required();
  cmd->add_option("--subuid-file", flags->subuid_path)->group("");
  cmd->add_option("--subgid-file", flags->subgid_path)->group("");
  cmd->callback([flags, result] { *result = RunFakerootConfig(*flags); });
}

}  // namespace berth::client
