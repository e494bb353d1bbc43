#pragma once
// The privileges a container's processes keep: docker's default capability
// set minus CAP_MKNOD (there is no devices cgroup yet), empty inheritable
// and ambient sets, and no_new_privs. Used by the in-container init shim
// before it execs the replica's command, and by `skiff container exec`.
// Each call acts on the calling thread; meant for a single-threaded process
// about to execve.

#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::runtime {

// The kept set by name ("CAP_CHOWN", ...): the bounding set a seccomp
// profile's includes/excludes are matched against, as Docker does.
std::vector<std::string> keptCapabilityNames();

// Drops every capability not kept from the bounding set. Needs CAP_SETPCAP,
// so it runs before setuid.
[[nodiscard]] Status dropBoundingSet();

// After setuid: root keeps exactly the kept set, other uids none; clears
// the ambient set and sets no_new_privs.
[[nodiscard]] Status applyCapabilities(bool root);

}  // namespace skiff::runtime
