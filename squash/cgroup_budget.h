// What this process may use, so that squashing respects the limits of the
// cgroup it runs in (a build runs in its caller's cgroup: under Slurm, the
// job's). mksquashfs's defaults (a thread per online CPU, memory sized for
// the machine) are what fail under job limits (Apptainer #2601).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace berth::squash {

struct Budget {
  unsigned cpus = 1;         // min(CPU affinity, the tightest cpu.max quota above us)
  int64_t memory_bytes = 0;  // the tightest memory.max above us; 0: no limit
};

// Reads /proc/self/cgroup, the cgroup v2 files above it and the affinity.
Budget ReadBudget();

// The pure part, for tests: `read(path)` returns a cgroup file's contents
// ("" when missing); `cgroup` is our path in the v2 hierarchy, mounted at `mount`.
Budget BudgetFrom(unsigned affinity_cpus, absl::string_view mount, absl::string_view cgroup,
                  std::string (*read)(const std::string& path));

}  // namespace berth::squash
