// CgroupManager against the in-memory cgroupfs: the files a kernel would see.

#include <gtest/gtest.h>
#include <signal.h>

#include "skiff/runtime/cgroup.h"

namespace skiff::runtime {
namespace {

const std::string kId = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef";

CgroupLayout v2Layout() {
  CgroupLayout l;
  l.version = CgroupVersion::kV2;
  l.unifiedRoot = "/cg";
  return l;
}

CgroupLayout v1Layout() {
  CgroupLayout l;
  l.version = CgroupVersion::kV1;
  l.v1Roots = {{"cpu", "/cg/cpu,cpuacct"}, {"memory", "/cg/memory"}, {"pids", "/cg/pids"}};
  return l;
}

TEST(CgroupManagerV2, CreateWritesLimitsAndEnablesControllers) {
  auto fs = std::make_shared<FakeCgroupFs>();
  fs->makeDir("/cg").ok();
  CgroupManager m(fs, v2Layout(), "skiff");
  ASSERT_TRUE(m.create(kId, Resources{0.1, 52428800, 100}).ok());
  const std::string g = "/cg/skiff/" + kId;
  EXPECT_EQ(fs->files.at(g + "/cpu.max"), "10000 100000");
  EXPECT_EQ(fs->files.at(g + "/memory.max"), "52428800");
  EXPECT_EQ(fs->files.at(g + "/pids.max"), "100");
  // The fake keeps the last write; the parent's subtree_control got every controller.
  EXPECT_EQ(fs->files.at("/cg/skiff/cgroup.subtree_control"), "+pids");
  EXPECT_EQ(m.groupDirs(kId), std::vector<std::string>{g});
}

TEST(CgroupManagerV2, AddProcessThenRemoveKillsItAndDeletesGroup) {
  auto fs = std::make_shared<FakeCgroupFs>();
  fs->makeDir("/cg").ok();
  CgroupManager m(fs, v2Layout(), "skiff");
  ASSERT_TRUE(m.create(kId, Resources{0.5, 0, 0}).ok());
  ASSERT_TRUE(m.addProcess(kId, 4242).ok());
  auto procs = m.processes(kId);
  ASSERT_TRUE(procs.ok());
  EXPECT_EQ(*procs, std::vector<pid_t>{4242});
  ASSERT_TRUE(m.remove(kId).ok());
  EXPECT_FALSE(fs->exists("/cg/skiff/" + kId));
  ASSERT_EQ(fs->signals.size(), 1u);
  EXPECT_EQ(fs->signals[0], std::make_pair(pid_t{4242}, SIGKILL));
  // Removing again is fine (netd may clean up twice after a crash).
  EXPECT_TRUE(m.remove(kId).ok());
}

TEST(CgroupManagerV2, FailedLimitWriteUndoesTheGroup) {
  auto fs = std::make_shared<FakeCgroupFs>();
  fs->makeDir("/cg").ok();
  fs->failWrites.insert("memory.max");
  CgroupManager m(fs, v2Layout(), "skiff");
  auto s = m.create(kId, Resources{0.1, 52428800, 0});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("memory.max"), std::string::npos) << s.error().message;
  EXPECT_FALSE(fs->exists("/cg/skiff/" + kId));
}

TEST(CgroupManagerV2, MissingControllerOnlyMattersWhenLimited) {
  auto fs = std::make_shared<FakeCgroupFs>();
  fs->makeDir("/cg").ok();
  fs->failWrites.insert("cgroup.subtree_control");
  CgroupManager m(fs, v2Layout(), "skiff");
  EXPECT_TRUE(m.create(kId, Resources{}).ok());
  EXPECT_FALSE(m.create(kId, Resources{0.1, 0, 0}).ok());
}

TEST(CgroupManagerV1, CreateWritesEachHierarchy) {
  auto fs = std::make_shared<FakeCgroupFs>();
  fs->hierarchyRoots = {"/cg/cpu,cpuacct", "/cg/memory", "/cg/pids"};
  CgroupManager m(fs, v1Layout(), "skiff-test");
  ASSERT_TRUE(m.create(kId, Resources{0.1, 52428800, 0}).ok());
  EXPECT_EQ(fs->files.at("/cg/cpu,cpuacct/skiff-test/" + kId + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(fs->files.at("/cg/cpu,cpuacct/skiff-test/" + kId + "/cpu.cfs_quota_us"), "10000");
  EXPECT_EQ(fs->files.at("/cg/memory/skiff-test/" + kId + "/memory.limit_in_bytes"), "52428800");
  EXPECT_TRUE(fs->exists("/cg/pids/skiff-test/" + kId));
  ASSERT_TRUE(m.addProcess(kId, 77).ok());
  for (const auto& dir : m.groupDirs(kId)) EXPECT_EQ(fs->files.at(dir + "/cgroup.procs"), "77\n") << dir;
  ASSERT_TRUE(m.remove(kId).ok());
  for (const auto& dir : m.groupDirs(kId)) EXPECT_FALSE(fs->exists(dir)) << dir;
}

TEST(CgroupManagerV1, LimitOnUnmountedControllerIsAnError) {
  auto fs = std::make_shared<FakeCgroupFs>();
  CgroupLayout l = v1Layout();
  l.v1Roots.erase("memory");
  CgroupManager m(fs, l, "skiff");
  auto s = m.create(kId, Resources{0, 52428800, 0});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("memory"), std::string::npos);
}

TEST(CgroupManager, RejectsIdsThatAreNotOneComponent) {
  auto fs = std::make_shared<FakeCgroupFs>();
  CgroupManager m(fs, v1Layout(), "skiff");
  EXPECT_FALSE(m.create("../escape", Resources{}).ok());
  EXPECT_FALSE(m.create("", Resources{}).ok());
}

}  // namespace
}  // namespace skiff::runtime
