// GPU and CDI devices in the container's mount plan (LaunchSpec::devices):
// device nodes in /dev, driver files, and a full /dev rebuilt when GPUs
// must be left out of it.
//
// A full /dev is normally a recursive clone of the host's. When a request
// brings device nodes or hides the host's ungranted GPUs, /dev becomes a
// tmpfs of ours instead, with each host entry back (directories as
// recursive clones, so /dev/pts and /dev/shm are the host's as before;
// symlinks copied; device nodes made afresh with the host's numbers, mode
// and owner by the system daemon, bound by a user-mode one) except the
// hidden ones and those a device replaces; the devices are then bound onto
// placeholders in it. Nothing is ever created on the host's devtmpfs.
//
// Every node is bound from the descriptor the daemon opened and checked to
// be a device, never by a path resolved again; the child checks, inside the
// caller's cgroups, that each node may be opened before attaching it
// (MountStep::device_access).
//
// Privilege: the daemon's (open_tree clones, tmpfs, mknod in system mode).
#pragma once

#include "absl/status/status.h"
#include "daemon/launch/launch.h"
#include "daemon/launch/mount_planner.h"

namespace berth::daemon::launch {

// True when a full /dev must be rebuilt (nodes under /dev, or hidden entries).
bool DevicesInDev(const DeviceSet& devices);

// Mount attributes of a /dev tmpfs of ours: nosuid and noexec, and nodev
// unless nodes are made in it (CDI fileMode/uid/gid; the host's nodes of a
// `full` /dev in system mode), as runc's /dev.
uint64_t DevTmpfsAttributes(const DeviceSet& devices, bool full);

// The device nodes under /dev, in the /dev tmpfs of ours open at `dev_fd`
// (already planned at /dev).
absl::Status PlanDevicesInDev(MountPlanner& planner, int dev_fd, const DeviceSet& devices);

// A full /dev: the host's entries on a tmpfs, less the hidden and replaced
// ones, then the devices.
absl::Status PlanHostDevWithDevices(MountPlanner& planner, const DeviceSet& devices);

// Device nodes outside /dev (or every node when the container has no /dev
// of ours), then the driver files and CDI mounts.
absl::Status PlanDeviceFiles(MountPlanner& planner, const DeviceSet& devices, bool dev_mounted);

}  // namespace berth::daemon::launch
