// Running one OCI hook process, with system calls only, so that the
// container's child (which must not allocate: child.h) and the daemon's
// thread can share it.
//
// The hook gets the OCI state on its stdin, `out_fd` as its stdout and
// stderr (the caller's stderr: hook output is the user's to read), default
// signal dispositions, an empty signal mask and no other descriptor. A hook
// the daemon opened is exec'd from that descriptor (execveat), never by a
// path resolved again; after its timeout it is killed.
#pragma once

#include <cstddef>

namespace berth::daemon::launch {

struct HookProcess {
  int binary_fd = -1;          // exec'd with execveat when >= 0
  const char* path = nullptr;  // else this path, in the caller's mount namespace
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  int timeout_ms = 30000;
};

struct HookOutcome {
  int spawn_errno = 0;  // could not start (exec failed: its errno)
  bool timed_out = false;
  int wait_status = 0;  // as from wait4
  bool ok() const { return spawn_errno == 0 && !timed_out && wait_status == 0; }
};

// Runs `hook` to its end (or timeout). System calls only.
HookOutcome RunHookProcess(const HookProcess& hook, const char* state, size_t state_len,
                           int out_fd);

// Writes a short description of a failed outcome ("exited with status 3",
// "killed by signal 9", "timed out", "could not be started": then
// spawn_errno says why) into `buf`, without allocating.
void DescribeHookOutcome(const HookOutcome& outcome, char* buf, size_t size);

}  // namespace berth::daemon::launch
