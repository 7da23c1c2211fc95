#include "tests/image/image_test_util.h"

#include <fcntl.h>
#include <glob.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "common/digest.h"
#include "common/file_io.h"
#include "sif/image.h"

namespace berth::testing {
namespace fs = std::filesystem;

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return 127;
  return WEXITSTATUS(status);
}

static void Require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("test setup failed: " + what);
}

TrustedScratch::TrustedScratch() {
  std::string tmpl = "/run/berth-image-test-XXXXXX";
  Require(mkdtemp(tmpl.data()) != nullptr, "mkdtemp under /run");
  path_ = tmpl;
  chmod(path_.c_str(), 0755);
}

TrustedScratch::~TrustedScratch() {
  std::vector<std::string> mounts = MountsUnder(path_);
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& m : mounts) umount2(m.c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TestUser EnsureTestUser() {
  Require(Shell("id berthtest >/dev/null 2>&1 || useradd -m berthtest") == 0, "useradd berthtest");
  passwd* pw = getpwnam("berthtest");
  Require(pw != nullptr, "getpwnam berthtest");
  return {pw->pw_uid, pw->pw_gid};
}

static void WriteText(const fs::path& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
  chmod(path.c_str(), mode);
}

std::string Sha256OfFile(const std::string& path) {
  auto fd = OpenFile(path, O_RDONLY);
  if (!fd.ok()) return "unreadable: " + std::string(fd.status().message());
  auto digest = DigestStream(fd->get(), DigestAlgorithm::kSha256);
  return digest.ok() ? *digest : "unreadable";
}

std::map<std::string, std::string> MakeRootfs(const std::string& dir, const std::string& flavour) {
  const fs::path root(dir);
  WriteText(root / "etc/os-release", "NAME=berth-test-" + flavour + "\n");
  WriteText(root / "bin/hello.sh", "#!/bin/sh\necho hello " + flavour + "\n", 0755);
  std::string readme;
  for (int i = 0; i < 2000; ++i) readme += "line " + std::to_string(i) + " of " + flavour + "\n";
  WriteText(root / "usr/share/doc/readme.txt", readme);
  WriteText(root / "deep/a/b/c/d/leaf.txt", "leaf " + flavour + "\n");
  WriteText(root / "secret/only-root.txt", "root only\n", 0600);
  std::mt19937_64 rng(std::hash<std::string>{}(flavour));
  std::string blob(3 << 20, '\0');
  for (size_t i = 0; i < blob.size(); i += 8) {
    uint64_t v = rng() & 0x0f0f0f0f0f0f0f0full;  // half-compressible
    std::memcpy(&blob[i], &v, 8);
  }
  WriteText(root / "data/blob.bin", blob);
  fs::create_symlink("usr/share/doc/readme.txt", root / "link-to-readme");
  std::map<std::string, std::string> manifest;
  for (const char* rel : {"etc/os-release", "bin/hello.sh", "usr/share/doc/readme.txt",
                          "deep/a/b/c/d/leaf.txt", "data/blob.bin", "link-to-readme"}) {
    manifest[rel] = Sha256OfFile((root / rel).string());
  }
  return manifest;
}

void MakeSquashfs(const std::string& dir, const std::string& out, const std::string& compression,
                  const std::string& extra) {
  Require(Shell("mksquashfs '" + dir + "' '" + out + "' -noappend -quiet -no-progress -comp " +
                compression + " " + extra + " >/dev/null") == 0,
          "mksquashfs " + dir);
}

void MakeSif(const std::string& data_path, const std::string& out, SifPartition partition) {
  auto image = sif::Image::Create(out, {});
  Require(image.ok(), "creating SIF " + out);
  const std::string def = out + ".def";
  WriteText(def, "Bootstrap: scratch\n");
  auto def_fd = OpenFile(def, O_RDONLY);
  auto data_fd = OpenFile(data_path, O_RDONLY);
  Require(def_fd.ok() && data_fd.ok(), "opening SIF inputs");
  sif::ObjectInput deffile;
  deffile.type = sif::DataType::kDeffile;
  deffile.data_fd = def_fd->get();
  deffile.group_id = 1;
  Require(image->AddObject(deffile).ok(), "adding Def.FILE");
  sif::ObjectInput rootfs;
  rootfs.type = sif::DataType::kPartition;
  rootfs.data_fd = data_fd->get();
  rootfs.name = "rootfs";
  rootfs.group_id = 1;
  rootfs.partition = sif::PartitionInfo{partition.fs_type, partition.part_type, "02"};
  Require(image->AddObject(rootfs).ok(), "adding partition");
  fs::remove(def);
}

std::map<std::string, std::string> MakeImage(const std::string& work_dir, const std::string& out,
                                             const std::string& flavour) {
  const std::string rootfs = work_dir + "/rootfs-" + flavour;
  auto manifest = MakeRootfs(rootfs, flavour);
  const std::string squashfs = work_dir + "/" + flavour + ".sqfs";
  MakeSquashfs(rootfs, squashfs);
  MakeSif(squashfs, out);
  return manifest;
}

std::string ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

static std::vector<std::pair<std::string, std::string>> AttachedLoops() {
  std::vector<std::pair<std::string, std::string>> out;
  glob_t g{};
  if (glob("/sys/block/loop*/loop/backing_file", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string p = g.gl_pathv[i];
      std::string name = p.substr(11, p.find("/loop/") - 11);  // "/sys/block/" is 11 chars
      out.emplace_back(name, ReadSysfs(p));
    }
  }
  globfree(&g);
  return out;
}

std::set<std::string> LoopDevicesBacking(const std::vector<std::string>& prefixes) {
  std::set<std::string> out;
  for (const auto& [name, backing] : AttachedLoops()) {
    for (const std::string& prefix : prefixes) {
      if (backing.rfind(prefix, 0) == 0) out.insert(name + " -> " + backing);
    }
  }
  return out;
}

std::string LoopDeviceFor(const std::string& backing) {
  for (const auto& [name, file] : AttachedLoops()) {
    if (file == backing) return name;
  }
  return "";
}

std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == dir || point.rfind(dir + "/", 0) == 0) out.push_back(point);
  }
  return out;
}

std::string VerifyTree(const std::string& root,
                       const std::map<std::string, std::string>& manifest) {
  for (const auto& [rel, sha] : manifest) {
    std::string got = Sha256OfFile(root + "/" + rel);
    if (got != sha) return rel + ": got " + got + ", want " + sha;
  }
  return "";
}

void DropCaches() {
  Shell("sync; echo 3 > /proc/sys/vm/drop_caches");
}

}  // namespace berth::testing
