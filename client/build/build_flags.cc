#include "client/build/build_flags.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli_log.h"
#include "client/env_flags.h"
#include "common/status_macros.h"
#include "deffile/plan.h"

namespace berth::client {
namespace {

constexpr const char* kCompressors[] = {"zstd", "gzip", "lz4", "xz"};

bool KnownCompressor(absl::string_view name) {
  return std::find(std::begin(kCompressors), std::end(kCompressors), name) !=
         std::end(kCompressors);
}

absl::Status MksquashfsError(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--mksquashfs-args: ", why,
                   " (berth writes the squashfs itself and understands -comp, -Xcompression-level, "
                   "-processors and -b)"));
}

absl::StatusOr<int> PositiveNumber(absl::string_view option, absl::string_view value, int max) {
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < 1 || n > max) {
    return MksquashfsError(absl::StrCat(option, " ", value, ": not a number from 1 to ", max));
  }
  return n;
}

absl::Status ApplyMksquashfsOption(absl::string_view option, absl::string_view value,
                                   SquashOptions& o) {
  if (option == "-comp") {
    if (!KnownCompressor(value)) {
      return MksquashfsError(absl::StrCat("-comp ", value, ": use zstd, gzip, lz4 or xz"));
    }
    o.compressor = std::string(value);
  } else if (option == "-Xcompression-level") {
    ASSIGN_OR_RETURN(o.level, PositiveNumber(option, value, 22));
  } else if (option == "-processors") {
    ASSIGN_OR_RETURN(o.processors, PositiveNumber(option, value, 4096));
  } else if (option == "-b") {
    ASSIGN_OR_RETURN(int size, PositiveNumber(option, value, 1 << 20));
    if (size < 4096 || (size & (size - 1)) != 0) {
      return MksquashfsError(
          absl::StrCat("-b ", value, ": a block size is a power of two from 4096 to 1048576"));
    }
    o.block_size = static_cast<uint32_t>(size);
  } else {
    return MksquashfsError(absl::StrCat(option, " is not supported"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SquashOptions> ParseSquashOptions(const BuildFlags& f) {
  SquashOptions o;
  std::vector<absl::string_view> words =
      absl::StrSplit(f.mksquashfs_args, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  for (size_t i = 0; i < words.size(); i += 2) {
    if (i + 1 == words.size()) return MksquashfsError(absl::StrCat(words[i], " needs a value"));
    RETURN_IF_ERROR(ApplyMksquashfsOption(words[i], words[i + 1], o));
  }
  if (!f.compress.empty()) {
    if (!KnownCompressor(f.compress)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--compress ", absl::CEscape(f.compress), ": use zstd, gzip, lz4 or xz"));
    }
    if (!o.compressor.empty() && o.compressor != f.compress) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--compress ", f.compress, " and --mksquashfs-args -comp ", o.compressor, " disagree"));
    }
    o.compressor = f.compress;
  }
  if (o.level != 0 && o.compressor != "gzip" && o.compressor != "zstd") {
    return MksquashfsError("-Xcompression-level needs -comp gzip or zstd (or --compress)");
  }
  if (o.compressor == "gzip" && o.level > 9) {
    return MksquashfsError("gzip levels run from 1 to 9");
  }
  return o;
}

struct Refused {
  const char* names;  // CLI11's "-x,--long"
  bool value;
  const char* why;
};

std::string LongName(const char* names) {
  std::vector<std::string> parts = absl::StrSplit(names, ',');
  return parts.back();
}

constexpr const char* kCreds =
    "give registry credentials with `berth registry login` or --authfile";
constexpr const char* kFakerootMaps =
    "berthd decides how a build maps ids (/etc/subuid, docs/security.md)";

constexpr Refused kRefused[] = {
    {"--library", true, "library:// services are gone or closed; use a docker:// or oras:// base"},
    {"--docker-host", true, "berth pulls from registries only, not from a Docker daemon"},
    {"--docker-login", false, kCreds},
    {"--docker-username", true, kCreds},
    {"--docker-password", true, kCreds},
    {"--ignore-userns", false, kFakerootMaps},
    {"--ignore-fakeroot-command", false, kFakerootMaps},
};

}  // namespace

void AddBuildFlags(CLI::App& cmd, BuildFlags& f) {
  cmd.add_flag("--dry-run", f.dry_run,
               "check the definition file and print the build plan; build nothing");
  cmd.add_flag("--json", f.json,
               "build from a JSON definition (Apptainer's shape); with --dry-run: print the "
               "parsed definition as JSON");
  cmd.add_flag("-s,--sandbox", f.sandbox, "build a sandbox directory instead of a SIF");
  cmd.add_flag("-F,--force", f.force, "overwrite an image file if it exists");
  cmd.add_flag("-u,--update", f.update, "run the definition over an existing sandbox");
  // One value per occurrence: `--build-arg A=1 app.def` must leave app.def alone.
  cmd.add_option("--section", f.sections,
                 "only run these sections (setup, post, files, environment, test, labels, none)")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd.add_flag("-T,--notest", f.notest, "do not run the %test section");
  cmd.add_flag("--fix-perms", f.fix_perms, "give the owner rwX on all content of OCI sources");
  cmd.add_option("--compress", f.compress, "squashfs compression: zstd (default), gzip, lz4, xz");
  cmd.add_option("--mksquashfs-args", f.mksquashfs_args,
                 "squashfs options: -comp, -Xcompression-level, -processors, -b");
  cmd.add_option("--tmpdir", f.tmpdir, "directory for the build's temporary files");
  cmd.add_option("--build-arg", f.build_args, "NAME=VALUE for {{ NAME }} in the definition file")
      ->allow_extra_args(false);
  cmd.add_option("--build-arg-file", f.build_arg_file, "a file of NAME=VALUE lines");
  cmd.add_flag("--warn-unused-build-args", f.warn_unused_build_args,
               "warn, instead of failing, when a build arg is not used");
  cmd.add_flag("-f,--fakeroot", f.fakeroot,
               "build as root inside a user namespace (implied for definition files)");
  cmd.add_flag("--ignore-subuid", f.ignore_subuid, "ignore /etc/subuid: map only your own uid");
  cmd.add_flag("--cache", f.cache,
               "reuse stages (their root after %post) from berth's stage cache (BERTH_CACHE)");
  cmd.add_flag("--nv", f.nv, "the host's NVIDIA libraries and GPUs in %post and %test");
  cmd.add_flag("--rocm", f.rocm, "the host's ROCm libraries and GPUs in %post and %test");
  cmd.add_option("--authfile", f.authfile, "credentials file for a registry base (docker config)");
  cmd.add_flag("--no-https,--nohttps", f.no_https, "use plain HTTP for a registry base");
  cmd.add_option("--arch", f.arch, "architecture of a docker base to pull");
  cmd.add_option("--arch-variant", f.arch_variant,
                 "architecture variant of a docker base (v7, v8)");
  cmd.add_flag("--disable-cache", f.disable_cache,
               "pull a registry base without the node cache (neither used nor filled)");
  cmd.add_option("-B,--bind", f.binds, "SRC[:DST[:ro|rw]] bound in %post and %test")
      ->allow_extra_args(false);
  cmd.add_option("--mount", f.mounts, "type=bind,src=SRC,dst=DST[,ro] bound in %post and %test")
      ->allow_extra_args(false);
  cmd.add_flag("--writable-tmpfs", f.writable_tmpfs,
               "%test writes to a discarded tmpfs layer (else its root is read-only)");
  // Hidden (an empty group): accepted or refused for Apptainer's scripts.
  cmd.add_flag("--nvccli", f.nv, "")->group("");
  cmd.add_flag("--no-cleanup", f.no_cleanup, "")->group("");
  cmd.add_flag("--userns", f.userns, "")->group("");
  for (const Refused& r : kRefused) {
    if (r.value) {
      cmd.add_option(r.names, "")->group("");
    } else {
      cmd.add_flag(r.names)->group("");
    }
  }
}

absl::Status ApplyBuildEnvironment(const CLI::App& cmd, BuildFlags& f) {
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--sandbox", "SANDBOX", f.sandbox));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--force", "FORCE", f.force));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--update", "UPDATE", f.update));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--notest", "NOTEST", f.notest));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--fix-perms", "FIXPERMS", f.fix_perms));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--json", "JSON", f.json));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--fakeroot", "FAKEROOT", f.fakeroot));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--ignore-subuid", "IGNORE_SUBUID", f.ignore_subuid));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--nv", "NV", f.nv));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--rocm", "ROCM", f.rocm));
  if (!f.nv) RETURN_IF_ERROR(BoolFromEnv(cmd, "--nvccli", "NVCCLI", f.nv));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--disable-cache", "DISABLE_CACHE", f.disable_cache));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--writable-tmpfs", "WRITABLE_TMPFS", f.writable_tmpfs));
  // As Apptainer's build: -B has no environment form; APPTAINER_MOUNT holds
  // one --mount value per line, added to the command line's.
  if (const char* v = EnvForm("MOUNT"); v != nullptr && *v != '\0') {
    for (absl::string_view line : absl::StrSplit(v, '\n', absl::SkipWhitespace())) {
      f.mounts.emplace_back(line);
    }
  }
  for (const Refused& r : kRefused) {
    if (cmd.count(LongName(r.names)) > 0) f.refused.push_back(LongName(r.names));
  }
  StringFromEnv(cmd, "--tmpdir", "TMPDIR", f.tmpdir);
  StringFromEnv(cmd, "--mksquashfs-args", "MKSQUASHFS_ARGS", f.mksquashfs_args);
  if (cmd.count("--section") == 0) {
    if (const char* v = EnvForm("SECTION"); v != nullptr && *v != '\0') {
      f.sections = absl::StrSplit(v, ',', absl::SkipEmpty());
    }
  }
  // berth's own options have no Apptainer form.
  if (const char* v = std::getenv("BERTH_COMPRESS"); v != nullptr && cmd.count("--compress") == 0) {
    f.compress = v;
  }
  if (const char* v = std::getenv("BERTH_CACHE"); v != nullptr && cmd.count("--cache") == 0) {
    ASSIGN_OR_RETURN(f.cache, ParseEnvBool("BERTH_CACHE", v));
  }
  return absl::OkStatus();
}

absl::StatusOr<SquashOptions> CheckBuildFlags(const BuildFlags& f) {
  if (f.update && !f.sandbox) {
    return absl::InvalidArgumentError(
        "only sandbox update is supported: --sandbox flag is missing");
  }
  for (const std::string& name : f.refused) {
    for (const Refused& r : kRefused) {
      if (name == LongName(r.names)) {
        return absl::UnimplementedError(absl::StrCat(name, " is not supported: ", r.why));
      }
    }
  }
  RETURN_IF_ERROR(deffile::CheckSectionsOption(f.sections));
  return ParseSquashOptions(f);
}

absl::Status ResolveBuildArch(BuildFlags& f) {
  if (f.arch_variant.empty()) return absl::OkStatus();
  // berthd reads one platform string, OS/ARCH/VARIANT, as pull sends it.
  if (f.arch.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        "--arch-variant: give the variant either there or in --arch OS/ARCH/VARIANT");
  }
  std::string arch = f.arch;
  if (arch.empty()) {
    struct utsname u {};
    arch = ::uname(&u) == 0 ? u.machine : "x86_64";
  }
  f.arch = absl::StrCat("linux/", arch, "/", f.arch_variant);
  f.arch_variant.clear();
  return absl::OkStatus();
}

}  // namespace berth::client
