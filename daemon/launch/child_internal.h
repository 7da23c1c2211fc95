// Helpers shared by the child's source files (child*.cc). Everything here
// follows child.h's rules: system calls only, no allocation.
#pragma once

#include <cstdint>

#include "daemon/launch/child.h"

namespace berth::daemon::launch::child {

// The exit status of a child (or payload) that failed a step: the shell's
// "command not found / could not run" convention.
inline constexpr int kFailedExit = 127;

// Reports "what[: detail]" with `err` to the parent and exits. `detail` may
// be null.
[[noreturn]] void Fail(const ChildPlan& plan, const char* what, const char* detail, int err);

// Fail(), with the kernel's own message from an fs context fd (fsopen) as
// the detail when there is one.
[[noreturn]] void FailFs(const ChildPlan& plan, const char* what, int fs_fd, int err);

// Closes [first, last]; nothing when the range is empty.
void CloseRange(long first, long last);

// Closes every descriptor from `first` up except those in `keep` (-1
// entries ignored; `keep` is sorted in place).
void CloseAbove(int first, int (&keep)[4]);

// Sends a bodiless message; errors are ignored (the parent notices EOF).
void Send(const ChildPlan& plan, uint32_t kind);

// openat2(dirfd, path, flags | O_CLOEXEC, resolve), retried on EINTR/EAGAIN.
int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t resolve);

// child_rootfs.cc: builds the tree, pivots into it, detaches the old root.
void BuildRootAndPivot(ChildPlan& plan);

// child_join.cc: enters a live container's namespaces (all but the user
// namespace) in place of building a root.
void EnterLiveContainer(const ChildPlan& plan);

// child.cc: enters the working directory, as the caller (after
// DropPrivileges).
void EnterCwd(const ChildPlan& plan);

// child_credentials.cc: becomes the caller (or fakeroot); no caps, NNP.
void DropPrivileges(ChildPlan& plan);

// child_hooks.cc: the OCI hooks of `stage` (HookSpec::Stage), with `out_fd`
// as their output.
void RunHooks(const ChildPlan& plan, int stage, int out_fd);

// child_credentials.cc: the init's identity: the caller's processes cannot
// signal it, it can signal them; no caps, NNP, non-dumpable.
void DropInitPrivileges(ChildPlan& plan);

// child_credentials.cc: a holder with a user namespace (--userns,
// --fakeroot) makes it itself, before the launcher opens its namespaces, so
// that /proc/<init>/ns/user is the container's (joins and a restarted
// daemon take it from there), with the caller's maps; no groups.
void EnterHolderUserNamespace(ChildPlan& plan);

// child_init.cc: opens plan.children_fd when the init will need it.
void OpenChildrenList(ChildPlan& plan);

// child_init.cc: takes the caller's identity (DropPrivileges) and execs the
// payload, through an init when the plan says so.
[[noreturn]] void StartPayload(ChildPlan& plan);

}  // namespace berth::daemon::launch::child
