// Helpers for the image tests: scratch directories root can trust, test
// rootfs trees, squashfs (mksquashfs) and SIF images (berth's SIF library),
// and views of the node's loop devices and mounts to prove nothing leaks.
// The tests need root (CI runs as root) and create user "berthtest".
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace berth::testing {

// Runs `command` with /bin/sh; returns its exit status (127 if it could not run).
int Shell(const std::string& command);

// A fresh directory under /run (whose chain /, /run is root-owned and not
// user-writable, unlike /tmp), mode 0755, removed (after detaching anything
// mounted below it) when the object dies.
class TrustedScratch {
 public:
  TrustedScratch();
  ~TrustedScratch();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The uid/gid of user berthtest, creating the user when missing.
struct TestUser {
  uid_t uid;
  gid_t gid;
};
TestUser EnsureTestUser();

// Writes a small rootfs (text files, a 3 MiB binary file, nested dirs, a
// symlink, a 0600 file) under `dir`; returns relative path -> content sha256.
std::map<std::string, std::string> MakeRootfs(const std::string& dir, const std::string& flavour);

// mksquashfs `dir` into `out` (gzip unless `compression` says otherwise;
// `extra` is appended to the command line, e.g. "-b 4096").
void MakeSquashfs(const std::string& dir, const std::string& out,
                  const std::string& compression = "gzip", const std::string& extra = "");

struct SifPartition {
  int32_t fs_type = 1;    // squashfs
  int32_t part_type = 2;  // primary system
};
// A SIF holding `data_path` as one partition object (plus a Def.FILE).
void MakeSif(const std::string& data_path, const std::string& out, SifPartition partition = {});

// SIF of a fresh rootfs in one go; returns its manifest (path -> sha256).
std::map<std::string, std::string> MakeImage(const std::string& work_dir, const std::string& out,
                                             const std::string& flavour);

// Lower-case hex SHA-256 of a file's content.
std::string Sha256OfFile(const std::string& path);

// "/dev/loopN -> backing file" for every attached loop device whose backing
// file path starts with one of `prefixes` (other users of the node ignored).
std::set<std::string> LoopDevicesBacking(const std::vector<std::string>& prefixes);
// Attached loop device (e.g. "loop3") reading `backing`, or "".
std::string LoopDeviceFor(const std::string& backing);
std::string ReadSysfs(const std::string& path);

// Mount points in /proc/self/mountinfo at or below `dir`.
std::vector<std::string> MountsUnder(const std::string& dir);

// Checks every file of `manifest` under `root` has the expected content;
// returns "" or the first mismatch.
std::string VerifyTree(const std::string& root, const std::map<std::string, std::string>& manifest);

// Drops the page cache so a re-read really goes to the block device.
void DropCaches();

}  // namespace berth::testing
