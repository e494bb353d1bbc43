// Which cgroup.procs files `skiff container exec` writes to join a replica:
// every hierarchy of a hybrid host, mounts whose root is not the hierarchy's,
// and hierarchies not mounted here (to be mounted privately).

#include "skiff/runtime/cgroup_join.h"

#include <gtest/gtest.h>

namespace skiff::runtime {
namespace {

const char* kHybridMountinfo =
    "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:6 - cgroup2 cgroup2 rw,nsdelegate\n"
    "31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:7 - cgroup cgroup rw,xattr,name=systemd\n"
    "35 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct\n"
    "36 25 0:32 /skiff /run/skiff/cgroup/memory rw shared:13 - cgroup cgroup rw,memory\n";

TEST(CgroupJoin, EveryHierarchyOfTheReplicaWithItsProcsFile) {
  const char* procCgroup =
      "12:pids:/skiff/abc\n"
      "4:memory:/skiff/abc\n"
      "3:cpu,cpuacct:/skiff/abc\n"
      "1:name=systemd:/system.slice/netd.service\n"
      "0::/system.slice/netd.service\n";
  const std::vector<CgroupJoinTarget> want = {
      {"pids", "/skiff/abc", "", "cgroup", "pids"},
      {"memory", "/skiff/abc", "/run/skiff/cgroup/memory/abc/cgroup.procs", "cgroup", "memory"},
      {"cpu,cpuacct", "/skiff/abc", "/sys/fs/cgroup/cpu,cpuacct/skiff/abc/cgroup.procs", "cgroup", "cpu,cpuacct"},
      {"name=systemd", "/system.slice/netd.service", "/sys/fs/cgroup/systemd/system.slice/netd.service/cgroup.procs",
       "cgroup", "none,name=systemd"},
      {"", "/system.slice/netd.service", "/sys/fs/cgroup/unified/system.slice/netd.service/cgroup.procs", "cgroup2",
       ""}};
  EXPECT_EQ(cgroupJoinTargets(procCgroup, kHybridMountinfo), want);
}

TEST(CgroupJoin, AMountThatDoesNotShowTheGroupIsNotUsed) {
  // The memory mount's root is /skiff: /other is not below it.
  const auto t = cgroupJoinTargets("4:memory:/other/x\n", kHybridMountinfo);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].procsFile, "");
  EXPECT_EQ(t[0].mountOptions, "memory");
}

TEST(CgroupJoin, PureV2HostAndTheRootGroup) {
  const char* mountinfo = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(
      cgroupJoinTargets("0::/skiff/abc\n", mountinfo),
      (std::vector<CgroupJoinTarget>{{"", "/skiff/abc", "/sys/fs/cgroup/skiff/abc/cgroup.procs", "cgroup2", ""}}));
  EXPECT_EQ(cgroupJoinTargets("0::/\n", mountinfo)[0].procsFile, "/sys/fs/cgroup/cgroup.procs");
  // Under `ip netns exec` nothing is mounted: the caller mounts it.
  EXPECT_EQ(cgroupJoinTargets("0::/skiff/abc\n", "")[0].procsFile, "");
}

TEST(CgroupJoin, MalformedLinesAreSkipped) {
  EXPECT_TRUE(cgroupJoinTargets("garbage\n3:cpu\n\n", kHybridMountinfo).empty());
}

}  // namespace
}  // namespace skiff::runtime
