// What `skiff stats` reads from a replica's cgroups, v1 and v2, against the
// in-memory cgroupfs holding the files as the kernel writes them (samples
// taken from a v1 host and a v2 host), and the parsers on their own.

#include <gtest/gtest.h>

#include <string>

#include "skiff/runtime/cgroup.h"
#include "skiff/runtime/container.h"

namespace skiff::runtime {
namespace {

const std::string kId = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef";

// A v2 memory.stat, shortened: the keys around inactive_file included.
constexpr const char* kV2MemoryStat =
    "anon 1875968\n"
    "file 3244032\n"
    "active_anon 0\n"
    "inactive_anon 1875968\n"
    "active_file 1011712\n"
    "inactive_file 2232320\n"
    "unevictable 0\n";

// A v1 memory.stat: the group's own inactive_file and the hierarchy's total_.
constexpr const char* kV1MemoryStat =
    "cache 3244032\n"
    "rss 1875968\n"
    "inactive_file 1000\n"
    "total_cache 3244032\n"
    "total_rss 1875968\n"
    "total_inactive_file 2232320\n"
    "total_active_file 1011712\n";

CgroupLayout v2Layout() {
  CgroupLayout l;
  l.version = CgroupVersion::kV2;
  l.unifiedRoot = "/cg";
  return l;
}

// This host's shape: cpu and cpuacct are separate hierarchies.
CgroupLayout v1Layout() {
  CgroupLayout l;
  l.version = CgroupVersion::kV1;
  l.v1Roots = {{"cpu", "/cg/cpu"}, {"cpuacct", "/cg/cpuacct"}, {"memory", "/cg/memory"}, {"pids", "/cg/pids"}};
  return l;
}

TEST(CgroupStatsParse, KeyedFilesGiveTheValueOfTheirKeyOnly) {
  const char* cpuStat = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n";
  EXPECT_EQ(parseKeyedValue(cpuStat, "usage_usec"), 2500000u);
  EXPECT_EQ(parseKeyedValue(cpuStat, "system_usec"), 500000u);
  // A key is a whole word: "file" is not "inactive_file"'s tail nor "file_mapped".
  EXPECT_EQ(parseKeyedValue(kV2MemoryStat, "file"), 3244032u);
  EXPECT_EQ(parseKeyedValue(kV2MemoryStat, "inactive_file"), 2232320u);
  EXPECT_EQ(parseKeyedValue(kV1MemoryStat, "inactive_file"), 1000u);
  EXPECT_EQ(parseKeyedValue(kV1MemoryStat, "total_inactive_file"), 2232320u);
  EXPECT_EQ(parseKeyedValue(kV2MemoryStat, "nosuch"), std::nullopt);
  EXPECT_EQ(parseKeyedValue("usage_usec many\n", "usage_usec"), std::nullopt);
  EXPECT_EQ(parseKeyedValue("", "usage_usec"), std::nullopt);
}

TEST(CgroupStatsParse, MemoryLimitsReadNoLimitAsZero) {
  EXPECT_EQ(parseMemoryLimit("52428800\n"), 52428800u);
  EXPECT_EQ(parseMemoryLimit("max\n"), 0u);                  // v2
  EXPECT_EQ(parseMemoryLimit("9223372036854771712\n"), 0u);  // v1: LONG_MAX rounded to a page
  EXPECT_EQ(parseMemoryLimit("junk"), std::nullopt);
  EXPECT_EQ(parseSingleValue(" 42 \n"), 42u);
  EXPECT_EQ(parseSingleValue("99999999999999999999999"), std::nullopt);  // beyond 64 bits
  EXPECT_EQ(parseSingleValue("-1"), std::nullopt);
}

TEST(CgroupStatsParse, HostMemoryFromMeminfoAndTheLimitDockerShows) {
  EXPECT_EQ(parseMemTotal("MemTotal:       16314424 kB\nMemFree:         1234 kB\n"), 16314424ull * 1024);
  EXPECT_EQ(parseMemTotal("MemFree: 1 kB\n"), 0u);
  const uint64_t host = 8ull << 30;
  EXPECT_EQ(shownMemoryLimit(0, host), host);              // no limit: the host's memory
  EXPECT_EQ(shownMemoryLimit(52428800, host), 52428800u);  // the seed's 50M
  EXPECT_EQ(shownMemoryLimit(16ull << 30, host), host);    // above the host: the host
  EXPECT_EQ(shownMemoryLimit(0, 0), 0u);                   // host unknown: as it is
}

TEST(CgroupStatsV2, CpuMemoryAndPidsFromTheGroupsFiles) {
  auto fs = std::make_shared<FakeCgroupFs>();
  const std::string g = "/cg/skiff/" + kId;
  ASSERT_TRUE(fs->makeDir(g).ok());
  fs->files[g + "/cpu.stat"] = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 7\n";
  fs->files[g + "/memory.current"] = "5120000\n";
  fs->files[g + "/memory.max"] = "52428800\n";
  fs->files[g + "/memory.stat"] = kV2MemoryStat;
  fs->files[g + "/pids.current"] = "3\n";
  CgroupManager m(fs, v2Layout(), "skiff");
  auto s = m.stats(kId);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->cpuNs, 2500000000u);                // usec -> ns
  EXPECT_EQ(s->memoryUsage, 5120000u - 2232320u);  // less the inactive page cache, as docker
  EXPECT_EQ(s->memoryLimit, 52428800u);
  EXPECT_EQ(s->pids, 3u);

  // No limit, no pids controller, no memory.stat: the rest still reads.
  fs->files[g + "/memory.max"] = "max\n";
  fs->files.erase(g + "/pids.current");
  fs->files.erase(g + "/memory.stat");
  s = m.stats(kId);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->memoryUsage, 5120000u);
  EXPECT_EQ(s->memoryLimit, 0u);
  EXPECT_EQ(s->pids, 0u);
}

TEST(CgroupStatsV2, AGroupThatIsGoneIsAnError) {
  auto fs = std::make_shared<FakeCgroupFs>();
  CgroupManager m(fs, v2Layout(), "skiff");
  auto s = m.stats(kId);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/cg/skiff/" + kId + "/memory.current"), std::string::npos) << s.error().message;
}

TEST(CgroupStatsV1, CpuacctUsageFromItsOwnHierarchyAndMemoryFromTheMemoryOne) {
  auto fs = std::make_shared<FakeCgroupFs>();
  fs->hierarchyRoots = {"/cg/cpu", "/cg/cpuacct", "/cg/memory", "/cg/pids"};
  CgroupManager m(fs, v1Layout(), "skiff");
  // The container's group is made in cpuacct's hierarchy too, and its
  // process joins it: that is what counts its CPU time.
  ASSERT_TRUE(m.create(kId, Resources{0.1, 52428800, 0}).ok());
  const std::string acct = "/cg/cpuacct/skiff/" + kId, mem = "/cg/memory/skiff/" + kId;
  EXPECT_TRUE(fs->exists(acct));
  ASSERT_TRUE(m.addProcess(kId, 77).ok());
  EXPECT_EQ(fs->files.at(acct + "/cgroup.procs"), "77\n");

  fs->files[acct + "/cpuacct.usage"] = "123456789\n";
  fs->files[mem + "/memory.usage_in_bytes"] = "5120000\n";
  fs->files[mem + "/memory.stat"] = kV1MemoryStat;
  fs->files["/cg/pids/skiff/" + kId + "/pids.current"] = "2\n";
  auto s = m.stats(kId);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->cpuNs, 123456789u);
  EXPECT_EQ(s->memoryUsage, 5120000u - 2232320u);  // total_inactive_file, as docker on v1
  EXPECT_EQ(s->memoryLimit, 52428800u);            // what create() wrote
  EXPECT_EQ(s->pids, 2u);

  // No limit: v1's huge number reads as none.
  fs->files[mem + "/memory.limit_in_bytes"] = "9223372036854771712\n";
  EXPECT_EQ(m.stats(kId)->memoryLimit, 0u);
  ASSERT_TRUE(m.remove(kId).ok());
  EXPECT_FALSE(fs->exists(acct));
}

TEST(CgroupStatsV1, CpuAndCpuacctCoMountedShareOneGroup) {
  auto fs = std::make_shared<FakeCgroupFs>();
  CgroupLayout l;
  l.version = CgroupVersion::kV1;
  l.v1Roots = {{"cpu", "/cg/cpu,cpuacct"}, {"cpuacct", "/cg/cpu,cpuacct"}, {"memory", "/cg/memory"}};
  CgroupManager m(fs, l, "skiff");
  EXPECT_EQ(m.groupDirs(kId), (std::vector<std::string>{"/cg/cpu,cpuacct/skiff/" + kId, "/cg/memory/skiff/" + kId}));
  ASSERT_TRUE(m.create(kId, Resources{}).ok());
  fs->files["/cg/cpu,cpuacct/skiff/" + kId + "/cpuacct.usage"] = "42\n";
  fs->files["/cg/memory/skiff/" + kId + "/memory.usage_in_bytes"] = "4096\n";
  auto s = m.stats(kId);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->cpuNs, 42u);
  EXPECT_EQ(s->memoryUsage, 4096u);
}

TEST(CgroupStatsV1, WithoutCpuacctTheCpuIsUnknownNotZero) {
  auto fs = std::make_shared<FakeCgroupFs>();
  CgroupLayout l = v1Layout();
  l.v1Roots.erase("cpuacct");
  CgroupManager m(fs, l, "skiff");
  ASSERT_TRUE(m.create(kId, Resources{}).ok());
  fs->files["/cg/memory/skiff/" + kId + "/memory.usage_in_bytes"] = "4096\n";
  auto s = m.stats(kId);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->cpuNs, std::nullopt);
  EXPECT_EQ(s->memoryUsage, 4096u);
}

TEST(FakeLauncherStats, AnswersWhatTheTestSetAndAnErrorOtherwise) {
  FakeContainerLauncher launcher;
  ContainerSpec spec;
  spec.id = kId;
  EXPECT_FALSE(launcher.stats(spec).ok());
  launcher.statsById[kId] = CgroupStats{7, 100, 200, 1};
  auto s = launcher.stats(spec);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (CgroupStats{7, 100, 200, 1}));
}

}  // namespace
}  // namespace skiff::runtime
