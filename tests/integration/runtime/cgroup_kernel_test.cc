// CgroupManager against the kernel, including the `ip netns exec` case where
// /sys/fs/cgroup is empty and netd must mount the hierarchies itself.

#include <algorithm>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "container_fixture.h"

namespace skiff::runtime::testing {
namespace {

// Words of a text (cgroup.controllers: "cpuset cpu io memory pids").
std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Which version the kernel's own /proc/cgroups calls for, independently of
// detectCgroupLayout: v1 when cpu or memory is bound to a v1 hierarchy.
CgroupVersion versionFromProcCgroups() {
  for (const auto& e : parseProcCgroups(readText("/proc/cgroups"))) {
    if ((e.name == "cpu" || e.name == "memory") && e.enabled && e.hierarchy != 0) return CgroupVersion::kV1;
  }
  return CgroupVersion::kV2;
}

// cgroups are global: a group outlives this process and its mount namespace.
// Removes the container's groups, the test's parent groups and the mounts,
// also when an assertion ends the test early.
struct CgroupCleanup {
  std::shared_ptr<CgroupManager> mgr;
  std::string id;
  std::filesystem::path base;
  ~CgroupCleanup() {
    if (mgr) {
      (void)mgr->remove(id);
      for (const auto& dir : mgr->groupDirs(id)) ::rmdir(std::filesystem::path(dir).parent_path().c_str());
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(base, ec)) ::umount2(e.path().c_str(), MNT_DETACH);
    std::filesystem::remove_all(base, ec);
  }
};

struct LimitFile {
  std::string path;
  std::string value;  // as the kernel reads it back
};

TEST(CgroupKernel, HiddenHierarchiesAreMountedAndLimitsReadBack) {
  SKIFF_REQUIRE_ISOLATED();
  // As `ip netns exec` does: this test's private mount namespace loses /sys/fs/cgroup.
  if (std::filesystem::exists("/sys/fs/cgroup")) ::umount2("/sys/fs/cgroup", MNT_DETACH);
  ASSERT_EQ(readText("/proc/self/mountinfo").find(" - cgroup"), std::string::npos);
  const auto base = std::filesystem::temp_directory_path() / ("skiff-cg-test-" + std::to_string(::getpid()));
  const std::string parent = "skiff-test-" + std::to_string(::getpid());
  const std::string id = "cgtest" + std::to_string(::getpid());
  CgroupCleanup cleanup{nullptr, id, base};
  auto m = CgroupManager::detect(parent, base.string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  cleanup.mgr = *m;
  auto& mgr = **m;
  const CgroupLayout& layout = mgr.layout();
  ASSERT_EQ(toString(mgr.version()), std::string(toString(versionFromProcCgroups())));

  // The files every limit must land in, for the version this kernel uses:
  // cpu and memory are required (containers get them on every host netd
  // supports); pids is checked too when the kernel has the controller.
  Resources limits{0.1, 52428800, 0};
  std::vector<LimitFile> expected;
  if (mgr.version() == CgroupVersion::kV1) {
    for (const char* c : {"cpu", "memory"}) {
      ASSERT_TRUE(layout.v1Roots.count(c)) << "cgroup v1 host, but no " << c << " hierarchy was mounted";
    }
    auto group = [&](const char* c) { return layout.v1Roots.at(c) + "/" + parent + "/" + id; };
    expected = {{group("cpu") + "/cpu.cfs_period_us", "100000"},
                {group("cpu") + "/cpu.cfs_quota_us", "10000"},
                {group("memory") + "/memory.limit_in_bytes", "52428800"}};
    if (layout.v1Roots.count("pids")) {
      limits.pids = 100;
      expected.push_back({group("pids") + "/pids.max", "100"});
    }
  } else {
    const auto controllers = words(readText(layout.unifiedRoot + "/cgroup.controllers"));
    for (const char* c : {"cpu", "memory"}) {
      ASSERT_TRUE(contains(controllers, c))
          << "cgroup v2 host, but " << layout.unifiedRoot << "/cgroup.controllers lacks " << c;
    }
    const std::string group = layout.unifiedRoot + "/" + parent + "/" + id;
    expected = {{group + "/cpu.max", "10000 100000"}, {group + "/memory.max", "52428800"}};
    if (contains(controllers, "pids")) {
      limits.pids = 100;
      expected.push_back({group + "/pids.max", "100"});
    }
  }

  auto created = mgr.create(id, limits);
  ASSERT_TRUE(created.ok()) << created.error().message;
  for (const auto& dir : mgr.groupDirs(id)) {
    EXPECT_EQ(dir.rfind(base.string(), 0), 0u) << dir;  // mounted by us
    EXPECT_TRUE(std::filesystem::is_directory(dir)) << dir;
  }
  size_t checked = 0;
  std::string list;
  for (const auto& f : expected) {
    if (!std::filesystem::exists(f.path)) {
      ADD_FAILURE() << "limit file " << f.path << " is missing: the limit was not applied";
      continue;
    }
    EXPECT_EQ(trim(readText(f.path)), f.value) << f.path;
    ++checked;
    list += ' ';  // appended in place: " " + std::string trips GCC 12's false -Wrestrict at -O3
    list += std::filesystem::path(f.path).filename().string();
  }
  std::cout << "cgroup " << toString(mgr.version()) << ": checked " << checked << " limit files:" << list << "\n";
  EXPECT_EQ(checked, expected.size());
  EXPECT_GE(checked, 2u) << "at least the cpu and the memory limit must have been read back";

  EXPECT_TRUE(mgr.remove(id).ok());
  for (const auto& dir : mgr.groupDirs(id)) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

}  // namespace
}  // namespace skiff::runtime::testing
