// Which cgroup version skiff picks, and what it must mount, from the text of
// /proc/self/mountinfo and /proc/cgroups as real hosts show them.

#include <gtest/gtest.h>

#include "skiff/runtime/cgroup.h"

namespace skiff::runtime {
namespace {

// This machine (Debian, cgroup v1, one hierarchy per controller).
constexpr const char* kV1MountInfo =
    "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr const char* kV1ProcCgroups =
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    "cpuset\t3\t1\t1\n"
    "cpu\t1\t1\t1\n"
    "cpuacct\t2\t1\t1\n"
    "blkio\t7\t1\t1\n"
    "memory\t4\t47\t1\n"
    "devices\t5\t1\t1\n"
    "freezer\t6\t1\t1\n"
    "net_cls\t0\t1\t1\n"
    "pids\t8\t1\t1\n";

// Ubuntu 20.04 hybrid: cpu and cpuacct co-mounted, systemd's cgroup2 at unified.
constexpr const char* kHybridMountInfo =
    "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup "
    "rw,xattr,name=systemd\n"
    "39 33 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:17 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "40 33 0:35 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup "
    "rw,memory\n"
    "44 33 0:39 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:22 - cgroup cgroup "
    "rw,pids\n";
constexpr const char* kHybridProcCgroups =
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    "cpuset\t6\t1\t1\n"
    "cpu\t2\t80\t1\n"
    "cpuacct\t2\t80\t1\n"
    "memory\t3\t120\t1\n"
    "pids\t7\t90\t1\n";

// Debian 12 / Fedora: pure v2.
constexpr const char* kV2MountInfo =
    "21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n"
    "27 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
constexpr const char* kV2ProcCgroups =
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    "cpuset\t0\t120\t1\n"
    "cpu\t0\t120\t1\n"
    "cpuacct\t0\t120\t1\n"
    "memory\t0\t120\t1\n"
    "pids\t0\t120\t1\n";

// Under `ip netns exec`: /sys is a fresh sysfs, /sys/fs/cgroup is empty.
constexpr const char* kNetnsExecMountInfo =
    "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "801 22 0:90 / /sys rw,relatime - sysfs lab1 rw\n";

TEST(MountInfo, ParsesFieldsAndDecodesEscapes) {
  auto entries = parseMountInfo(
      "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
      "garbage line\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].root, "/mnt1");
  EXPECT_EQ(entries[0].mountPoint, "/mnt/my dir");
  EXPECT_EQ(entries[0].fsType, "ext3");
  EXPECT_EQ(entries[0].source, "/dev/root");
  EXPECT_EQ(entries[0].superOptions, "rw,errors=continue");
}

TEST(ProcCgroups, ParsesHierarchies) {
  auto entries = parseProcCgroups(kV1ProcCgroups);
  ASSERT_EQ(entries.size(), 9u);
  EXPECT_EQ(entries[1].name, "cpu");
  EXPECT_EQ(entries[1].hierarchy, 1);
  EXPECT_TRUE(entries[1].enabled);
  EXPECT_EQ(entries[4].name, "memory");
  EXPECT_EQ(entries[4].hierarchy, 4);
}

TEST(CgroupLayout, V1HostUsesEachHierarchy) {
  auto layout = detectCgroupLayout(kV1MountInfo, kV1ProcCgroups);
  EXPECT_EQ(layout.version, CgroupVersion::kV1);
  EXPECT_EQ(layout.v1Roots.at("cpu"), "/sys/fs/cgroup/cpu");
  EXPECT_EQ(layout.v1Roots.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout.v1Roots.at("pids"), "/sys/fs/cgroup/pids");
  // cpuacct, a hierarchy of its own here, counts a replica's CPU time.
  EXPECT_EQ(layout.v1Roots.at("cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_TRUE(layout.missingV1.empty());
  EXPECT_FALSE(layout.needsUnifiedMount);
}

TEST(CgroupLayout, HybridHostPrefersV1Controllers) {
  auto layout = detectCgroupLayout(kHybridMountInfo, kHybridProcCgroups);
  EXPECT_EQ(layout.version, CgroupVersion::kV1);
  EXPECT_EQ(layout.v1Roots.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(layout.v1Roots.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(layout.v1Roots.at("memory"), "/sys/fs/cgroup/memory");
}

TEST(CgroupLayout, V2Host) {
  auto layout = detectCgroupLayout(kV2MountInfo, kV2ProcCgroups);
  EXPECT_EQ(layout.version, CgroupVersion::kV2);
  EXPECT_EQ(layout.unifiedRoot, "/sys/fs/cgroup");
  EXPECT_TRUE(layout.v1Roots.empty());
  EXPECT_FALSE(layout.needsUnifiedMount);
}

TEST(CgroupLayout, NetnsExecOnV1HostMountsEachHierarchy) {
  auto layout = detectCgroupLayout(kNetnsExecMountInfo, kV1ProcCgroups);
  EXPECT_EQ(layout.version, CgroupVersion::kV1);
  ASSERT_EQ(layout.missingV1.size(), 4u);  // cpu, cpuacct, memory, pids; not cpuset etc.
  EXPECT_EQ(layout.missingV1[0].options, "cpu");
  EXPECT_EQ(layout.missingV1[1].options, "cpuacct");
  EXPECT_EQ(layout.missingV1[2].options, "memory");
  EXPECT_EQ(layout.missingV1[3].options, "pids");
  EXPECT_FALSE(layout.needsUnifiedMount);
}

TEST(CgroupLayout, NetnsExecOnHybridHostMountsCoMountedTogether) {
  auto layout = detectCgroupLayout(kNetnsExecMountInfo, kHybridProcCgroups);
  EXPECT_EQ(layout.version, CgroupVersion::kV1);
  ASSERT_EQ(layout.missingV1.size(), 3u);
  // The kernel refuses -o cpu alone for a hierarchy that also holds cpuacct.
  EXPECT_EQ(layout.missingV1[0].options, "cpu,cpuacct");
  EXPECT_EQ(layout.missingV1[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
}

TEST(CgroupLayout, NetnsExecOnV2HostMountsCgroup2) {
  auto layout = detectCgroupLayout(kNetnsExecMountInfo, kV2ProcCgroups);
  EXPECT_EQ(layout.version, CgroupVersion::kV2);
  EXPECT_TRUE(layout.needsUnifiedMount);
  EXPECT_TRUE(layout.missingV1.empty());
  // No /proc/cgroups at all (newer v2-only kernels) is v2 as well.
  EXPECT_EQ(detectCgroupLayout(kNetnsExecMountInfo, "").version, CgroupVersion::kV2);
}

TEST(CgroupLimits, SeedStackValues) {
  Resources seed{0.1, 52428800, 0};
  auto v1 = limitWrites(CgroupVersion::kV1, seed);
  ASSERT_EQ(v1.size(), 3u);
  EXPECT_EQ(v1[0].file, "cpu.cfs_period_us");
  EXPECT_EQ(v1[0].value, "100000");
  EXPECT_EQ(v1[1].file, "cpu.cfs_quota_us");
  EXPECT_EQ(v1[1].value, "10000");
  EXPECT_EQ(v1[2].file, "memory.limit_in_bytes");
  EXPECT_EQ(v1[2].value, "52428800");
  auto v2 = limitWrites(CgroupVersion::kV2, Resources{1.5, 1024, 64});
  ASSERT_EQ(v2.size(), 3u);
  EXPECT_EQ(v2[0].value, "150000 100000");
  EXPECT_EQ(v2[1].file, "memory.max");
  EXPECT_EQ(v2[2].file, "pids.max");
  EXPECT_EQ(v2[2].value, "64");
  EXPECT_TRUE(limitWrites(CgroupVersion::kV2, Resources{}).empty());
}

}  // namespace
}  // namespace skiff::runtime
