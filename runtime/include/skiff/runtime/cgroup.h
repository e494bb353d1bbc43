#pragma once
// cgroups for containers, v1 and v2, chosen at run time.
//
// Design note: which hierarchy a host has is decided by a pure function over
// the text of /proc/self/mountinfo and /proc/cgroups (detectCgroupLayout), so
// every kind of host (v1, v2, hybrid, and the empty /sys/fs/cgroup seen under
// `ip netns exec`) is a unit test with a text sample. When nothing is mounted,
// the layout lists what has to be mounted (by hierarchy, so co-mounted v1
// controllers like "cpu,cpuacct" are mounted together, as the kernel demands);
// CgroupManager::detect mounts it in netd's own mount namespace. All file
// access goes through the CgroupFs seam: the real one touches the kernel, the
// fake one is an in-memory tree that behaves like cgroupfs for the few files
// we use (and can inject errors).
//
// Threading: CgroupManager is not internally synchronized; netd calls it from
// its orchestrator thread (the launcher calls create/addProcess/remove).

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/runtime/stack.h"

namespace skiff::runtime {

enum class CgroupVersion { kNone, kV1, kV2 };
const char* toString(CgroupVersion version);

// One line of /proc/self/mountinfo (only the fields we need).
struct MountInfoEntry {
  std::string root;        // field 4: root of the mount within its filesystem
  std::string mountPoint;  // field 5 (octal escapes like \040 decoded)
  std::string fsType;      // after the " - " separator
  std::string source;
  std::string superOptions;  // e.g. "rw,cpu,cpuacct" for a v1 hierarchy
};
std::vector<MountInfoEntry> parseMountInfo(std::string_view text);

// One line of /proc/cgroups.
struct ProcCgroupsEntry {
  std::string name;
  int hierarchy = 0;  // 0 = not bound to a v1 hierarchy (v2 or unused)
  bool enabled = false;
};
std::vector<ProcCgroupsEntry> parseProcCgroups(std::string_view text);

// A v1 hierarchy that /proc/cgroups says exists but is not mounted here.
struct MissingHierarchy {
  std::string options;                   // mount -o value: "cpu,cpuacct"
  std::vector<std::string> controllers;  // which of ours it serves: {"cpu"}
};

struct CgroupLayout {
  CgroupVersion version = CgroupVersion::kNone;
  std::string unifiedRoot;                     // v2: mount point of cgroup2
  std::map<std::string, std::string> v1Roots;  // v1: controller -> mount point
  // Set when nothing usable is mounted (e.g. under `ip netns exec`).
  std::vector<MissingHierarchy> missingV1;
  bool needsUnifiedMount = false;
};

// Controllers skiff uses, in the order it configures them.
inline const std::vector<std::string>& wantedControllers() {
  static const std::vector<std::string> kWanted = {"cpu", "memory", "pids"};
  return kWanted;
}

// On v1, the hierarchies a container's group is made in: the wanted ones
// plus cpuacct, which counts its CPU time (`skiff stats`) and is a hierarchy
// of its own on some hosts (this one), co-mounted with cpu on others. v2's
// cpu controller counts CPU time itself.
inline const std::vector<std::string>& v1Controllers() {
  static const std::vector<std::string> kV1 = {"cpu", "memory", "pids", "cpuacct"};
  return kV1;
}

// Pure: which version to use and where. v1 wins when a v1 hierarchy carries
// cpu or memory (a hybrid host's cgroup2 mount then has no controllers).
CgroupLayout detectCgroupLayout(std::string_view mountinfo, std::string_view procCgroups);

// Pure: the values to write for limits, as the kernel spells them.
// v2: cpu.max "10000 100000" for 0.1 cpus, memory.max bytes, pids.max.
// v1: cpu.cfs_period_us/cpu.cfs_quota_us, memory.limit_in_bytes, pids.max.
struct CgroupWrite {
  std::string controller;  // "cpu" | "memory" | "pids"
  std::string file;
  std::string value;
};
std::vector<CgroupWrite> limitWrites(CgroupVersion version, const Resources& limits);

// What a container's groups say about its use, as `docker stats` shows it.
struct CgroupStats {
  // Cumulative CPU time in ns (v2: cpu.stat usage_usec; v1: cpuacct.usage);
  // unset when the host does not account it (a v1 host without cpuacct).
  std::optional<uint64_t> cpuNs;
  // Bytes in use without the page cache the kernel may drop at once
  // (inactive_file), as docker's CLI computes it: v2 memory.current, v1
  // memory.usage_in_bytes, each minus memory.stat's inactive_file
  // (v1: total_inactive_file).
  uint64_t memoryUsage = 0;
  // memory.max / memory.limit_in_bytes; 0 when unlimited ("max", or v1's
  // page-rounded LONG_MAX).
  uint64_t memoryLimit = 0;
  uint64_t pids = 0;  // pids.current; 0 without the pids controller
  bool operator==(const CgroupStats&) const = default;
};

// Pure parsers of the files stats() reads.
// The value of `key` in a flat keyed file ("key value" lines: cpu.stat,
// memory.stat); nullopt when missing or not a number.
std::optional<uint64_t> parseKeyedValue(std::string_view text, std::string_view key);
// A one-number file ("123\n"); nullopt when it is not one.
std::optional<uint64_t> parseSingleValue(std::string_view text);
// memory.max / memory.limit_in_bytes: bytes, 0 for no limit ("max", or a v1
// value of 2^62 or more: the kernel's LONG_MAX rounded down to a page).
std::optional<uint64_t> parseMemoryLimit(std::string_view text);
// /proc/meminfo's MemTotal in bytes (0 when missing).
uint64_t parseMemTotal(std::string_view meminfo);
// The limit `docker stats` shows: the host's memory when there is no limit
// (0) or the limit is above it, else the limit. hostMemory 0 (unknown)
// leaves the limit as it is.
uint64_t shownMemoryLimit(uint64_t limit, uint64_t hostMemory);

// Seam to the cgroup file system. Paths are absolute.
class CgroupFs {
 public:
  virtual ~CgroupFs() = default;
  virtual Status makeDir(const std::string& path) = 0;    // ok if it exists
  virtual Status removeDir(const std::string& path) = 0;  // ok if it is gone
  virtual bool exists(const std::string& path) = 0;
  virtual Status writeFile(const std::string& path, const std::string& value) = 0;
  virtual Result<std::string> readFile(const std::string& path) = 0;
  virtual Status killProcess(pid_t pid, int sig) = 0;
  virtual void pauseMillis(int millis) = 0;  // the fake does not sleep
};
std::shared_ptr<CgroupFs> makeRealCgroupFs();

// In-memory cgroupfs: directories and files in a map. Writing a pid to
// cgroup.procs moves it there (removing it from every other group of the same
// hierarchy, as the kernel does; hierarchyRoots lists v1 mount points, none
// = one v2 tree); killProcess removes it; rmdir of a
// group with processes fails with EBUSY. failWrites makes writes to files
// whose path ends with the given suffix fail with EACCES.
class FakeCgroupFs : public CgroupFs {
 public:
  Status makeDir(const std::string& path) override;
  Status removeDir(const std::string& path) override;
  bool exists(const std::string& path) override;
  Status writeFile(const std::string& path, const std::string& value) override;
  Result<std::string> readFile(const std::string& path) override;
  Status killProcess(pid_t pid, int sig) override;
  void pauseMillis(int) override {}

  std::map<std::string, std::string> files;  // path -> content
  std::set<std::string> dirs;
  std::set<std::string> failWrites;            // path suffixes
  std::vector<std::string> hierarchyRoots;     // v1: one per mounted hierarchy
  std::vector<std::pair<pid_t, int>> signals;  // what was sent
};

class CgroupManager {
 public:
  // parent: group path below each hierarchy root, e.g. "skiff" (tests use
  // "skiff-test-<pid>"); a container's group is <root>/<parent>/<id>.
  CgroupManager(std::shared_ptr<CgroupFs> fs, CgroupLayout layout, std::string parent);

  // Reads /proc/self/mountinfo and /proc/cgroups; when the hierarchies are not
  // mounted (ip netns exec), mounts them below mountBase in the calling
  // process's mount namespace (v1: one dir per hierarchy; v2: mountBase/unified).
  static Result<std::shared_ptr<CgroupManager>> detect(std::string parent = "skiff",
                                                       std::string mountBase = "/run/skiff/cgroup");

  CgroupVersion version() const { return layout_.version; }
  const CgroupLayout& layout() const { return layout_; }

  // Creates the container's group in every hierarchy and writes its limits.
  // On failure, removes what it created.
  [[nodiscard]] Status create(const std::string& id, const Resources& limits);
  // Moves pid into the container's groups.
  [[nodiscard]] Status addProcess(const std::string& id, pid_t pid);
  // Pids still in the container's groups (from the first hierarchy).
  [[nodiscard]] Result<std::vector<pid_t>> processes(const std::string& id);
  // SIGKILLs what is left, waits briefly (bounded), removes the groups and,
  // when empty, nothing else. Ok if the group does not exist.
  [[nodiscard]] Status remove(const std::string& id);
  // The group directories of a container (one per hierarchy for v1).
  std::vector<std::string> groupDirs(const std::string& id) const;
  // Its CPU time, memory and pids now (a few small reads; any thread, as
  // groupDirs). An error when its memory group cannot be read (gone).
  [[nodiscard]] Result<CgroupStats> stats(const std::string& id) const;

 private:
  std::vector<std::string> parentDirs() const;

  std::shared_ptr<CgroupFs> fs_;
  CgroupLayout layout_;
  std::string parent_;
};

}  // namespace skiff::runtime
