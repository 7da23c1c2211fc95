// The plugin's process half: running berth for a job step, from slurmstepd
// (the step's check, before any task starts) and from a task (replacing the
// task by berth). Nothing here mounts or clones: berth asks berthd.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace berth::slurm {

// Runs ARGV with ENV as the step's user, waits, and returns nullopt when it
// succeeded, else its last line on stderr (berth's one-line error). Runs in
// slurmstepd with the user's effective ids; the child drops the real root
// ids as well before it runs berth, so berth is a plain user process.
std::optional<std::string> CheckStep(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env, const std::string& dir);

// Replaces the calling task by ARGV with ENV. Returns only when that failed,
// with the reason; the caller must then end the task (never run it bare).
std::string ExecTask(const std::vector<std::string>& argv, const std::vector<std::string>& env);

}  // namespace berth::slurm
