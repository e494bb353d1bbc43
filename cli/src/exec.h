#pragma once
// `skiff container exec`: the CLI runs on the daemon's host as root, so it
// enters the replica itself instead of asking netd to. It
//  - opens the container init's namespaces, root and cgroup.procs files
//    first (hierarchies not mounted here, as under `ip netns exec`, are
//    mounted in a private mount namespace of the CLI's own that goes away
//    with it), then joins the ipc, uts, net, pid and mount namespaces (mount
//    last) and forks so the new pid namespace applies;
//  - the child joins every cgroup of the replica (v1: each hierarchy's
//    cgroup.procs; v2: the one), so the replica's limits bind it, enters the
//    container's root, takes the user (the service's `user:` unless -u says
//    otherwise, looked up in the image's /etc/passwd), the replica's
//    capabilities and no_new_privs, loads the same seccomp filter, and execs;
//  - its stdin, stdout and stderr are pipes the CLI relays (stdin only with
//    -i); with -t a pseudo-terminal of the container's own devpts instead,
//    the caller's terminal in raw mode meanwhile. The caller's terminal is
//    never handed to the container.
// The calling process must be single-threaded (setns of a mount namespace
// requires it), and is inside the container's namespaces afterwards: exit
// soon after this returns.

#include <sys/types.h>

#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/runtime/seccomp.h"

namespace skiff::cli {

struct ExecOptions {
  std::vector<std::string> argv;
  std::string user;          // "" = root; "name", "uid", "name:group", "uid:gid"
  bool interactive = false;  // -i: relay our stdin to the command's
  bool tty = false;          // -t: a pseudo-terminal instead of pipes
  runtime::SeccompMode seccomp = runtime::SeccompMode::kDefault;
  std::string seccompProfile;  // kProfile: the profile's JSON
};

// Returns the command's exit status (128+signal when killed, 126/127 when it
// cannot be executed, as docker does).
[[nodiscard]] Result<int> execInContainer(pid_t pid, const ExecOptions& options);

}  // namespace skiff::cli
