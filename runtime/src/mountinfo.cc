// Parsers for /proc/self/mountinfo and /proc/cgroups, and the pure decision
// of which cgroup version to use and what has to be mounted.

#include <map>
#include <sstream>

#include "skiff/runtime/cgroup.h"

namespace skiff::runtime {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7' && in[i + 2] >= '0' &&
        in[i + 2] <= '7' && in[i + 3] >= '0' && in[i + 3] <= '7') {
      out.push_back(static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool hasOption(const std::string& options, const std::string& name) {
  for (const auto& o : split(options, ',')) {
    if (o == name) return true;
  }
  return false;
}

}  // namespace

const char* toString(CgroupVersion version) {
  switch (version) {
    case CgroupVersion::kV1:
      return "v1";
    case CgroupVersion::kV2:
      return "v2";
    case CgroupVersion::kNone:
      break;
  }
  return "none";
}

std::vector<MountInfoEntry> parseMountInfo(std::string_view text) {
  std::vector<MountInfoEntry> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string word;
    while (fields >> word) f.push_back(word);
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    size_t sep = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        sep = i;
        break;
      }
    }
    if (sep == 0 || sep + 1 >= f.size()) continue;
    MountInfoEntry e;
    e.root = unescape(f[3]);
    e.mountPoint = unescape(f[4]);
    e.fsType = f[sep + 1];
    e.source = sep + 2 < f.size() ? unescape(f[sep + 2]) : "";
    e.superOptions = sep + 3 < f.size() ? f[sep + 3] : "";
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ProcCgroupsEntry> parseProcCgroups(std::string_view text) {
  std::vector<ProcCgroupsEntry> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    ProcCgroupsEntry e;
    int numCgroups = 0;
    int enabled = 0;
    if (!(fields >> e.name >> e.hierarchy >> numCgroups >> enabled)) continue;
    e.enabled = enabled != 0;
    out.push_back(std::move(e));
  }
  return out;
}

CgroupLayout detectCgroupLayout(std::string_view mountinfo, std::string_view procCgroups) {
  CgroupLayout layout;
  const auto mounts = parseMountInfo(mountinfo);
  std::string unified;
  for (const auto& m : mounts) {
    if (m.fsType == "cgroup") {
      for (const auto& c : v1Controllers()) {
        // The first mount of a hierarchy wins; a bind mount of a sub-group
        // (root != "/") would put our groups in the wrong place.
        if (hasOption(m.superOptions, c) && !layout.v1Roots.count(c) && m.root == "/") {
          layout.v1Roots[c] = m.mountPoint;
        }
      }
    } else if (m.fsType == "cgroup2" && m.root == "/") {
      // Prefer the canonical pure-v2 mount over a hybrid's /sys/fs/cgroup/unified.
      if (unified.empty() || m.mountPoint == "/sys/fs/cgroup") unified = m.mountPoint;
    }
  }
  if (layout.v1Roots.count("cpu") || layout.v1Roots.count("memory")) {
    layout.version = CgroupVersion::kV1;
    return layout;
  }
  layout.v1Roots.clear();
  const auto controllers = parseProcCgroups(procCgroups);
  // Group enabled controllers by v1 hierarchy id.
  std::map<int, std::vector<std::string>> hierarchies;
  for (const auto& c : controllers) {
    if (c.enabled && c.hierarchy != 0) hierarchies[c.hierarchy].push_back(c.name);
  }
  bool v1Wanted = false;
  for (const auto& [id, names] : hierarchies) {
    MissingHierarchy h;
    for (const auto& n : names) {
      h.options += (h.options.empty() ? "" : ",") + n;
      for (const auto& w : v1Controllers()) {
        if (n == w) h.controllers.push_back(n);
      }
    }
    for (const auto& c : h.controllers) {
      if (c == "cpu" || c == "memory") v1Wanted = true;
    }
    if (!h.controllers.empty()) layout.missingV1.push_back(std::move(h));
  }
  if (v1Wanted) {
    layout.version = CgroupVersion::kV1;
    return layout;
  }
  layout.missingV1.clear();
  layout.version = CgroupVersion::kV2;
  if (!unified.empty()) {
    layout.unifiedRoot = unified;
  } else {
    layout.needsUnifiedMount = true;
  }
  return layout;
}

std::vector<CgroupWrite> limitWrites(CgroupVersion version, const Resources& limits) {
  constexpr int64_t kPeriod = 100000;
  std::vector<CgroupWrite> out;
  const int64_t quota = limits.cpus > 0 ? static_cast<int64_t>(limits.cpus * kPeriod + 0.5) : 0;
  if (version == CgroupVersion::kV2) {
    if (quota > 0) out.push_back({"cpu", "cpu.max", std::to_string(quota) + " " + std::to_string(kPeriod)});
    if (limits.memoryBytes > 0) out.push_back({"memory", "memory.max", std::to_string(limits.memoryBytes)});
    if (limits.pids > 0) out.push_back({"pids", "pids.max", std::to_string(limits.pids)});
  } else if (version == CgroupVersion::kV1) {
    if (quota > 0) {
      out.push_back({"cpu", "cpu.cfs_period_us", std::to_string(kPeriod)});
      out.push_back({"cpu", "cpu.cfs_quota_us", std::to_string(quota)});
    }
    if (limits.memoryBytes > 0) {
      out.push_back({"memory", "memory.limit_in_bytes", std::to_string(limits.memoryBytes)});
    }
    if (limits.pids > 0) out.push_back({"pids", "pids.max", std::to_string(limits.pids)});
  }
  return out;
}

}  // namespace skiff::runtime
