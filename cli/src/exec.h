#pragma once
// `skiff container exec`: the CLI runs on the daemon's host as root, so it
// enters the replica itself instead of asking netd to: it joins the ipc, uts,
// net, pid and mount namespaces of the container's init (mount last, once
// every /proc path is open), forks so the new pid namespace applies, and
// runs the command there with the container's environment and root, stdio
// inherited. The calling process must be single-threaded (setns of a mount
// namespace requires it). Not joined: the container's cgroups, so the exec'd
// process is not under the replica's limits (and never keeps netd from
// removing the cgroup).

#include <sys/types.h>

#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

// Returns the command's exit status (128+signal when killed, 126/127 when it
// cannot be executed, as docker does).
[[nodiscard]] Result<int> execInNamespaces(pid_t pid, const std::vector<std::string>& argv);

}  // namespace skiff::cli
