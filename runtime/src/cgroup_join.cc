// Where to write to join a container's cgroups (see cgroup_join.h).
#include "skiff/runtime/cgroup_join.h"

#include <sstream>

#include "skiff/runtime/cgroup.h"

namespace skiff::runtime {
namespace {

std::vector<std::string> splitComma(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

bool hasAll(const std::vector<std::string>& options, const std::vector<std::string>& wanted) {
  for (const auto& w : wanted) {
    bool found = false;
    for (const auto& o : options) found = found || o == w;
    if (!found) return false;
  }
  return true;
}

// The directory of `path` (from the hierarchy's root) under a mount of that
// hierarchy whose own root is `mountRoot`; "" when the mount does not show it.
std::string dirUnder(const MountInfoEntry& m, const std::string& path) {
  if (m.root == "/") return m.mountPoint + (path == "/" ? "" : path);
  if (path == m.root) return m.mountPoint;
  if (path.rfind(m.root + "/", 0) == 0) return m.mountPoint + path.substr(m.root.size());
  return "";
}

}  // namespace

std::vector<CgroupJoinTarget> cgroupJoinTargets(std::string_view procPidCgroup, std::string_view mountinfo) {
  const auto mounts = parseMountInfo(mountinfo);
  std::vector<CgroupJoinTarget> out;
  std::istringstream lines{std::string(procPidCgroup)};
  std::string line;
  while (std::getline(lines, line)) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    CgroupJoinTarget t;
    const std::string id = line.substr(0, first);
    t.controllers = line.substr(first + 1, second - first - 1);
    t.path = line.substr(second + 1);
    if (t.path.empty() || t.path[0] != '/') continue;
    const bool v2 = id == "0" && t.controllers.empty();
    t.fsType = v2 ? "cgroup2" : "cgroup";
    const auto wanted = splitComma(t.controllers);
    if (!v2) {
      // A named hierarchy without controllers is mounted with "none".
      t.mountOptions = t.controllers.rfind("name=", 0) == 0 ? "none," + t.controllers : t.controllers;
    }
    for (const auto& m : mounts) {
      if (m.fsType != t.fsType) continue;
      if (!v2 && (wanted.empty() || !hasAll(splitComma(m.superOptions), wanted))) continue;
      const std::string dir = dirUnder(m, t.path);
      if (dir.empty()) continue;
      t.procsFile = dir + "/cgroup.procs";
      break;
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace skiff::runtime
