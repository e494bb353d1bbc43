#pragma once
// The id (nsid) of a process's network namespace as this process's
// namespace knows it: what bpf_sk_lookup_tcp/udp take to look for a socket
// in another namespace. Kernel code (rtnetlink, /proc); see maps.h.

#include <sys/types.h>

#include <cstdint>

#include "skiff/common/result.h"

namespace skiff::socklb {

// -1 when pid's network namespace is this process's; otherwise its nsid,
// which is assigned (RTM_NEWNSID) when it has none yet. An error when pid
// is gone or the kernel refuses.
Result<int32_t> netnsId(pid_t pid);

}  // namespace skiff::socklb
