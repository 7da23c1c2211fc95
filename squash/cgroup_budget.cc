#include "squash/cgroup_budget.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::squash {
namespace {

std::string ReadSmall(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out(4096, '\0');
  ssize_t n = ::read(fd, out.data(), out.size());
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

// The cgroup v2 mount point, from mountinfo ("... - cgroup2 ...").
std::string Cgroup2Mount() {
  std::string info;
  int fd = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "/sys/fs/cgroup";
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) info.append(buf, static_cast<size_t>(n));
  ::close(fd);
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, " - ");
    if (parts.size() != 2 || !absl::StartsWith(parts[1], "cgroup2 ")) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(parts[0], ' ');
    if (fields.size() >= 5) return std::string(fields[4]);
  }
  return "/sys/fs/cgroup";
}

unsigned AffinityCpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace

Budget BudgetFrom(unsigned affinity_cpus, absl::string_view mount, absl::string_view cgroup,
                  std::string (*read)(const std::string& path)) {
  Budget b;
  b.cpus = std::max(1u, affinity_cpus);
  std::string dir(absl::StripSuffix(cgroup, "/"));
  for (;;) {
    std::string base = absl::StrCat(mount, dir);
    std::vector<std::string> cpu =
        absl::StrSplit(absl::StripAsciiWhitespace(read(base + "/cpu.max")), ' ');
    int64_t quota = 0, period = 0;
    if (cpu.size() == 2 && absl::SimpleAtoi(cpu[0], &quota) && absl::SimpleAtoi(cpu[1], &period) &&
        quota > 0 && period > 0) {
      unsigned allowed = static_cast<unsigned>(std::ceil(double(quota) / double(period)));
      b.cpus = std::min(b.cpus, std::max(1u, allowed));
    }
    int64_t mem = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(read(base + "/memory.max")), &mem) && mem > 0) {
      b.memory_bytes = b.memory_bytes == 0 ? mem : std::min(b.memory_bytes, mem);
    }
    if (dir.empty()) break;
    dir = dir.substr(0, dir.rfind('/'));
  }
  return b;
}

Budget ReadBudget() {
  std::string cgroup;
  for (absl::string_view line : absl::StrSplit(ReadSmall("/proc/self/cgroup"), '\n')) {
    if (absl::StartsWith(line, "0::")) cgroup = std::string(line.substr(3));
  }
  return BudgetFrom(AffinityCpus(), Cgroup2Mount(), cgroup, ReadSmall);
}

}  // namespace berth::squash
