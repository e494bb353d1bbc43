#pragma once
// Joining a running container's cgroups from outside (`skiff container
// exec`): which cgroup.procs file to write for each hierarchy the container's
// init is in, and how to mount a hierarchy that is not mounted here (e.g.
// under `ip netns exec`, where /sys/fs/cgroup is empty).
//
// Pure: reads the text of /proc/<pid>/cgroup and of the caller's
// /proc/self/mountinfo. On a v1 or hybrid host every line is one hierarchy
// (cpu,cpuacct; memory; name=systemd; ...) and the process joins each; on v2
// there is the one "0::" line.

#include <string>
#include <string_view>
#include <vector>

namespace skiff::runtime {

struct CgroupJoinTarget {
  std::string controllers;   // as /proc/<pid>/cgroup names them: "cpu,cpuacct", "name=systemd", "" (v2)
  std::string path;          // the cgroup, from the hierarchy's root: "/skiff/<id>"
  std::string procsFile;     // "<mount point>/<path below the mount's root>/cgroup.procs"; "" if not mounted here
  std::string fsType;        // "cgroup" (v1) or "cgroup2", to mount it when procsFile is ""
  std::string mountOptions;  // mount -o for that: "cpu,cpuacct", "none,name=systemd", "" (v2)
  bool operator==(const CgroupJoinTarget&) const = default;
};

// One target per line of procPidCgroup, in its order. Lines that are not
// "id:controllers:path" are skipped.
std::vector<CgroupJoinTarget> cgroupJoinTargets(std::string_view procPidCgroup, std::string_view mountinfo);

}  // namespace skiff::runtime
