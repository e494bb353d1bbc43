// CgroupManager against the kernel, including the `ip netns exec` case where
// /sys/fs/cgroup is empty and netd must mount the hierarchies itself.

#include "container_fixture.h"

namespace skiff::runtime::testing {
namespace {

TEST(CgroupKernel, HiddenHierarchiesAreMountedAndLimitsReadBack) {
  SKIFF_REQUIRE_ISOLATED();
  // As `ip netns exec` does: this test's private mount namespace loses /sys/fs/cgroup.
  if (std::filesystem::exists("/sys/fs/cgroup")) ::umount2("/sys/fs/cgroup", MNT_DETACH);
  ASSERT_EQ(readText("/proc/self/mountinfo").find(" - cgroup"), std::string::npos);
  const auto base = std::filesystem::temp_directory_path() / ("skiff-cg-test-" + std::to_string(::getpid()));
  const std::string parent = "skiff-test-" + std::to_string(::getpid());
  auto m = CgroupManager::detect(parent, base.string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto& mgr = **m;
  const std::string id = "cgtest" + std::to_string(::getpid());
  auto created = mgr.create(id, Resources{0.1, 52428800, 0});
  EXPECT_TRUE(created.ok()) << created.error().message;
  if (created.ok()) {
    for (const auto& dir : mgr.groupDirs(id)) {
      EXPECT_EQ(dir.rfind(base.string(), 0), 0u) << dir;  // mounted by us
      if (std::filesystem::exists(dir + "/memory.limit_in_bytes")) {
        EXPECT_EQ(trim(readText(dir + "/memory.limit_in_bytes")), "52428800");
      }
      if (std::filesystem::exists(dir + "/cpu.cfs_quota_us")) {
        EXPECT_EQ(trim(readText(dir + "/cpu.cfs_quota_us")), "10000");
      }
      if (std::filesystem::exists(dir + "/memory.max")) {
        EXPECT_EQ(trim(readText(dir + "/memory.max")), "52428800");
      }
    }
  }
  EXPECT_TRUE(mgr.remove(id).ok());
  for (const auto& dir : mgr.groupDirs(id)) {
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
    ::rmdir(std::filesystem::path(dir).parent_path().c_str());
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(base, ec)) ::umount2(e.path().c_str(), MNT_DETACH);
  std::filesystem::remove_all(base, ec);
}

}  // namespace
}  // namespace skiff::runtime::testing
