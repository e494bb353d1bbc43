// CgroupManager against the in-memory cgroupfs: the files a kernel would see.

#include <gtest/gtest.h>
#include <signal.h>

#include <ostream>
#include <string>
#include <vector>

#include "skiff/runtime/cgroup.h"

namespace skiff::runtime {
namespace {

const std::string kId = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef";

// The in-memory cgroupfs keeps only the last value of each file; this one also
// records every write (path and value, in order, failed ones too) so a test can
// see all of them, as a kernel would have received them.
struct Write {
  std::string path;
  std::string value;
  bool operator==(const Write&) const = default;
};
void PrintTo(const Write& w, std::ostream* os) { *os << w.path << " <- \"" << w.value << "\""; }

class RecordingCgroupFs : public FakeCgroupFs {
 public:
  Status writeFile(const std::string& path, const std::string& value) override {
    writes.push_back({path, value});
    return FakeCgroupFs::writeFile(path, value);
  }
  std::vector<Write> writes;
};

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
  auto fs = std::make_shared<RecordingCgroupFs>();
  fs->makeDir("/cg").ok();
  CgroupManager m(fs, v2Layout(), "skiff");
  ASSERT_TRUE(m.create(kId, Resources{0.1, 52428800, 100}).ok());
  const std::string g = "/cg/skiff/" + kId;
  // Every controller enabled in the root's and then the parent's
  // subtree_control (one controller per write, as cgroupfs takes them), then
  // the three limits in the group, and nothing else.
  EXPECT_EQ(fs->writes, (std::vector<Write>{
                            {"/cg/cgroup.subtree_control", "+cpu"},
                            {"/cg/cgroup.subtree_control", "+memory"},
                            {"/cg/cgroup.subtree_control", "+pids"},
                            {"/cg/skiff/cgroup.subtree_control", "+cpu"},
                            {"/cg/skiff/cgroup.subtree_control", "+memory"},
                            {"/cg/skiff/cgroup.subtree_control", "+pids"},
                            {g + "/cpu.max", "10000 100000"},
                            {g + "/memory.max", "52428800"},
                            {g + "/pids.max", "100"},
                        }));
  EXPECT_EQ(fs->files.at(g + "/cpu.max"), "10000 100000");
  EXPECT_EQ(fs->files.at(g + "/memory.max"), "52428800");
  EXPECT_EQ(fs->files.at(g + "/pids.max"), "100");
  EXPECT_EQ(m.groupDirs(kId), std::vector<std::string>{g});

  // Moving a process in is one more write, to the group's cgroup.procs.
  fs->writes.clear();
  ASSERT_TRUE(m.addProcess(kId, 4242).ok());
  EXPECT_EQ(fs->writes, (std::vector<Write>{{g + "/cgroup.procs", "4242"}}));
}

TEST(CgroupManagerV2, UnlimitedResourcesWriteNoLimitFile) {
  auto fs = std::make_shared<RecordingCgroupFs>();
  fs->makeDir("/cg").ok();
  CgroupManager m(fs, v2Layout(), "skiff");
  ASSERT_TRUE(m.create(kId, Resources{0, 1048576, 0}).ok());
  EXPECT_EQ(fs->writes, (std::vector<Write>{
                            {"/cg/cgroup.subtree_control", "+cpu"},
                            {"/cg/cgroup.subtree_control", "+memory"},
                            {"/cg/cgroup.subtree_control", "+pids"},
                            {"/cg/skiff/cgroup.subtree_control", "+cpu"},
                            {"/cg/skiff/cgroup.subtree_control", "+memory"},
                            {"/cg/skiff/cgroup.subtree_control", "+pids"},
                            {"/cg/skiff/" + kId + "/memory.max", "1048576"},
                        }));
  EXPECT_TRUE(fs->exists("/cg/skiff/" + kId));
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
  auto fs = std::make_shared<RecordingCgroupFs>();
  fs->hierarchyRoots = {"/cg/cpu,cpuacct", "/cg/memory", "/cg/pids"};
  CgroupManager m(fs, v1Layout(), "skiff-test");
  ASSERT_TRUE(m.create(kId, Resources{0.1, 52428800, 0}).ok());
  const std::string cpu = "/cg/cpu,cpuacct/skiff-test/" + kId;
  const std::string memory = "/cg/memory/skiff-test/" + kId;
  const std::string pids = "/cg/pids/skiff-test/" + kId;
  // The period, then the quota, each in its controller's hierarchy; no pids
  // limit asked, so no pids.max written, though the pids group exists.
  EXPECT_EQ(fs->writes, (std::vector<Write>{
                            {cpu + "/cpu.cfs_period_us", "100000"},
                            {cpu + "/cpu.cfs_quota_us", "10000"},
                            {memory + "/memory.limit_in_bytes", "52428800"},
                        }));
  EXPECT_EQ(fs->files.at(cpu + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(fs->files.at(cpu + "/cpu.cfs_quota_us"), "10000");
  EXPECT_EQ(fs->files.at(memory + "/memory.limit_in_bytes"), "52428800");
  EXPECT_TRUE(fs->exists(pids));
  EXPECT_EQ(m.groupDirs(kId), (std::vector<std::string>{cpu, memory, pids}));

  fs->writes.clear();
  ASSERT_TRUE(m.addProcess(kId, 77).ok());
  EXPECT_EQ(fs->writes, (std::vector<Write>{
                            {cpu + "/cgroup.procs", "77"},
                            {memory + "/cgroup.procs", "77"},
                            {pids + "/cgroup.procs", "77"},
                        }));
  for (const auto& dir : {cpu, memory, pids}) EXPECT_EQ(fs->files.at(dir + "/cgroup.procs"), "77\n") << dir;
  ASSERT_TRUE(m.remove(kId).ok());
  for (const auto& dir : m.groupDirs(kId)) EXPECT_FALSE(fs->exists(dir)) << dir;
}

TEST(CgroupManagerV1, PidsLimitGoesToThePidsHierarchy) {
  auto fs = std::make_shared<RecordingCgroupFs>();
  fs->hierarchyRoots = {"/cg/cpu,cpuacct", "/cg/memory", "/cg/pids"};
  CgroupManager m(fs, v1Layout(), "skiff");
  ASSERT_TRUE(m.create(kId, Resources{1.5, 0, 64}).ok());
  EXPECT_EQ(fs->writes, (std::vector<Write>{
                            {"/cg/cpu,cpuacct/skiff/" + kId + "/cpu.cfs_period_us", "100000"},
                            {"/cg/cpu,cpuacct/skiff/" + kId + "/cpu.cfs_quota_us", "150000"},
                            {"/cg/pids/skiff/" + kId + "/pids.max", "64"},
                        }));
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
