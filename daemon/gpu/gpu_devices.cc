#include "daemon/gpu/gpu_devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::gpu {
namespace {

constexpr const char* kNvidiaControl[] = {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools",
                                          "nvidia-modeset"};

// The names in the directory `dir` beneath the root; none when it is missing.
std::vector<std::string> ListNames(const DriverRoot& root, const std::string& dir) {
  auto fd = root.OpenPath(dir, O_RDONLY | O_DIRECTORY);
  if (!fd.ok()) return {};
  DIR* d = ::fdopendir(fd->Release());
  if (d == nullptr) return {};
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// The node at `path` if it is a character device (not followed if a link).
std::optional<GpuNode> CharNode(const DriverRoot& root, const std::string& path, int index) {
  auto fd = root.OpenPath(path, O_PATH | O_NOFOLLOW);
  if (!fd.ok()) return std::nullopt;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0 || !S_ISCHR(st.st_mode)) return std::nullopt;
  return GpuNode{path, index, *std::move(fd)};
}

// The number after `prefix` when the rest of `name` is all digits.
std::optional<int> Numbered(absl::string_view name, absl::string_view prefix) {
  int n;
  if (!absl::ConsumePrefix(&name, prefix) || name.empty() || name.size() > 6 ||
      !std::all_of(name.begin(), name.end(), absl::ascii_isdigit) || !absl::SimpleAtoi(name, &n)) {
    return std::nullopt;
  }
  return n;
}

void ScanNvidia(const DriverRoot& root, GpuNodes& out) {
  for (const char* name : kNvidiaControl) {
    if (auto node = CharNode(root, absl::StrCat("/dev/", name), -1))
      out.control.push_back(*std::move(node));
  }
  for (const std::string& name : ListNames(root, "/dev/nvidia-caps")) {
    if (auto node = CharNode(root, absl::StrCat("/dev/nvidia-caps/", name), -1)) {
      out.control.push_back(*std::move(node));
    }
  }
  for (const std::string& name : ListNames(root, "/dev")) {
    std::optional<int> index = Numbered(name, "nvidia");
    if (!index) continue;
    if (auto node = CharNode(root, absl::StrCat("/dev/", name), *index))
      out.gpus.push_back(*std::move(node));
  }
}

void ScanAmd(const DriverRoot& root, GpuNodes& out) {
  if (auto kfd = CharNode(root, "/dev/kfd", -1)) out.control.push_back(*std::move(kfd));
  std::vector<std::pair<int, std::string>> render;
  for (const std::string& name : ListNames(root, "/dev/dri")) {
    if (auto minor = Numbered(name, "renderD")) render.emplace_back(*minor, name);
    if (Numbered(name, "card")) {
      if (auto node = CharNode(root, absl::StrCat("/dev/dri/", name), -1)) {
        out.all_gpus_only.push_back(*std::move(node));
      }
    }
  }
  std::sort(render.begin(), render.end());
  for (const auto& [minor, name] : render) {
    int index = static_cast<int>(out.gpus.size());
    if (auto node = CharNode(root, absl::StrCat("/dev/dri/", name), index)) {
      out.gpus.push_back(*std::move(node));
    }
  }
}

}  // namespace

absl::StatusOr<GpuNodes> ScanGpuNodes(const DriverRoot& root, Vendor vendor) {
  GpuNodes out;
  if (vendor == Vendor::kNvidia) {
    ScanNvidia(root, out);
  } else {
    ScanAmd(root, out);
  }
  std::sort(out.gpus.begin(), out.gpus.end(),
            [](const GpuNode& a, const GpuNode& b) { return a.index < b.index; });
  return out;
}

std::map<std::string, int> ReadNvidiaUuids(const DriverRoot& root) {
  std::map<std::string, int> uuids;
  for (const std::string& bus : ListNames(root, "/proc/driver/nvidia/gpus")) {
    auto fd =
        root.OpenPath(absl::StrCat("/proc/driver/nvidia/gpus/", bus, "/information"), O_RDONLY);
    if (!fd.ok()) continue;
    char buf[4096];
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n <= 0) continue;
    std::string uuid;
    int minor = -1;
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(buf, static_cast<size_t>(n)), '\n')) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(line, absl::MaxSplits(':', 1));
      absl::string_view key = absl::StripAsciiWhitespace(kv.first);
      absl::string_view value = absl::StripAsciiWhitespace(kv.second);
      if (key == "GPU UUID") uuid = std::string(value);
      if (key == "Device Minor" && !absl::SimpleAtoi(value, &minor)) minor = -1;
    }
    if (!uuid.empty() && minor >= 0) uuids[uuid] = minor;
  }
  return uuids;
}

}  // namespace berth::daemon::gpu
