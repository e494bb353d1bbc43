// `skiff stats`, the pure parts: netd's answer read, CPU % and rates from two
// answers, the cells as docker prints them, the default table and --format,
// and the frames written on a terminal and to a pipe.

#include "skiff/cli/stats.h"

#include <gtest/gtest.h>

#include "skiff/cli/list.h"
#include "skiff/cli/template.h"

namespace skiff::cli {
namespace {

using nlohmann::json;

const std::string kId1 = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
const std::string kId2 = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";

// A row of GET /v1/stats as netd answers it.
json row(const std::string& id, const std::string& name, uint64_t cpuNs, int64_t sampledAt, uint64_t connections,
         uint64_t bytesIn, uint64_t bytesOut, uint64_t active = 0) {
  return json{
      {"id", id},
      {"taskId", "t"},
      {"name", name},
      {"service", "getstartedlab_web"},
      {"stack", "getstartedlab"},
      {"slot", 1},
      {"node", {{"id", "n1"}, {"hostname", "lab1"}}},
      {"running", true},
      {"cpuNs", cpuNs},
      {"memoryUsage", 5242880},
      {"memoryLimit", 52428800},
      {"pids", 2},
      {"sampledAt", sampledAt},
      {"error", ""},
      {"mesh", {{"connections", connections}, {"active", active}, {"bytesIn", bytesIn}, {"bytesOut", bytesOut}}}};
}

TEST(StatsAnswer, RowsAreReadWithTheirNodeAndMeshAndJunkIsSkipped) {
  json answer = json::array({row(kId1, "web.1.x", 5, 10, 3, 100, 200, 1), "junk", 7});
  answer[0]["cpuNs"] = nullptr;  // a v1 host without cpuacct
  auto samples = parseStatsAnswer(answer);
  ASSERT_EQ(samples.size(), 1u);
  const StatsSample& s = samples[0];
  EXPECT_EQ(s.id, kId1);
  EXPECT_EQ(s.name, "web.1.x");
  EXPECT_EQ(s.service, "getstartedlab_web");
  EXPECT_EQ(s.node, "lab1");
  EXPECT_EQ(s.nodeId, "n1");
  EXPECT_EQ(s.cpuNs, std::nullopt);
  EXPECT_EQ(s.memoryUsage, 5242880u);
  EXPECT_EQ(s.memoryLimit, 52428800u);
  EXPECT_EQ(s.connections, 3u);
  EXPECT_EQ(s.active, 1u);
  EXPECT_EQ(s.bytesIn, 100u);
  EXPECT_EQ(s.bytesOut, 200u);
  EXPECT_TRUE(s.hasUsage());
  EXPECT_TRUE(parseStatsAnswer(json::object()).empty());
}

TEST(StatsRates, CpuPercentIsCpuTimeOverTheNodesWallTime) {
  StatsSample a, b;
  a.sampledAtNs = 1'000'000'000;
  b.sampledAtNs = 2'000'000'000;
  a.cpuNs = 0;
  b.cpuNs = 250'000'000;  // a quarter of a second in one second
  EXPECT_DOUBLE_EQ(*cpuPercent(a, b), 25.0);
  b.cpuNs = 1'500'000'000;  // one and a half cores busy: above 100, as docker shows it
  EXPECT_DOUBLE_EQ(*cpuPercent(a, b), 150.0);
  // No CPU accounting, the same reading twice, a replica that restarted
  // (its counter went back), a reading with an error: no figure.
  StatsSample none = b;
  none.cpuNs.reset();
  EXPECT_EQ(cpuPercent(a, none), std::nullopt);
  EXPECT_EQ(cpuPercent(a, a), std::nullopt);
  StatsSample back = b;
  back.cpuNs = 0;
  a.cpuNs = 10;
  EXPECT_EQ(cpuPercent(a, back), std::nullopt);
  StatsSample broken = b;
  broken.error = "not running";
  EXPECT_EQ(cpuPercent(a, broken), std::nullopt);
}

TEST(StatsRates, CountersPerSecondAndNoneForAResetOrNoTime) {
  EXPECT_DOUBLE_EQ(*perSecond(10, 40, 2.0), 15.0);
  EXPECT_DOUBLE_EQ(*perSecond(10, 10, 1.0), 0.0);
  EXPECT_EQ(perSecond(40, 10, 1.0), std::nullopt);  // the proxy restarted
  EXPECT_EQ(perSecond(10, 40, 0.0), std::nullopt);
}

TEST(StatsCells, AsDockerPrintsThem) {
  EXPECT_EQ(percentCell(0.254), "0.25%");
  EXPECT_EQ(percentCell(12.0), "12.00%");
  EXPECT_EQ(percentCell(std::nullopt), "--");
  EXPECT_EQ(memUsageCell(5242880, 52428800), "5MiB / 50MiB");
  EXPECT_EQ(memUsageCell(1536 * 1024, 8589934592), "1.5MiB / 8GiB");
  EXPECT_EQ(ioCell(1200, 34000), "1.2kB / 34kB");
  EXPECT_EQ(ioCell(0, 0), "0B / 0B");
}

TEST(StatsTracker, TheSecondAnswerGivesCpuAndRatesAndTheDefaultTableShowsThem) {
  StatsTracker tracker;
  // Two replicas; one second apart on the nodes' clock and on ours.
  auto first = parseStatsAnswer(json::array({row(kId1, "web.1.x", 1'000'000'000, 5'000'000'000, 100, 10'000, 50'000),
                                             row(kId2, "web.2.y", 0, 5'000'000'000, 0, 0, 0)}));
  auto rows = tracker.observe(first, 100.0);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("CPUPerc"), "--");  // one reading has no rate yet
  EXPECT_EQ(rows[0].at("RequestsPerSec"), "--");

  auto second =
      parseStatsAnswer(json::array({row(kId1, "web.1.x", 1'050'000'000, 6'000'000'000, 130, 13'000, 250'000, 2),
                                    row(kId2, "web.2.y", 1'000'000, 6'000'000'000, 0, 0, 0)}));
  rows = tracker.observe(second, 101.0);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("ID"), "aaaaaaaaaaaa");
  EXPECT_EQ(rows[0].at("Container"), "aaaaaaaaaaaa");
  EXPECT_EQ(rows[0].at("Name"), "web.1.x");
  EXPECT_EQ(rows[0].at("Node"), "lab1");
  EXPECT_EQ(rows[0].at("CPUPerc"), "5.00%");
  EXPECT_EQ(rows[0].at("MemUsage"), "5MiB / 50MiB");
  EXPECT_EQ(rows[0].at("MemPerc"), "10.00%");
  EXPECT_EQ(rows[0].at("PIDs"), "2");
  EXPECT_EQ(rows[0].at("Connections"), "2");
  EXPECT_EQ(rows[0].at("RequestsPerSec"), "30.0");
  EXPECT_EQ(rows[0].at("NetIO"), "13kB / 250kB");
  EXPECT_EQ(rows[0].at("BytesPerSec"), "3kB/s / 200kB/s");
  EXPECT_EQ(rows[1].at("CPUPerc"), "0.10%");

  auto table = Template::parse(statsView().defaultFormat, statsView().fields);
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->render(rows),
            "CONTAINER ID   NAME      SERVICE             NODE      CPU %     MEM USAGE / LIMIT   MEM %     PIDS      "
            "CONNS     REQ/S     NET I/O/S\n"
            "aaaaaaaaaaaa   web.1.x   getstartedlab_web   lab1      5.00%     5MiB / 50MiB        10.00%    2         "
            "2         30.0      3kB/s / 200kB/s\n"
            "bbbbbbbbbbbb   web.2.y   getstartedlab_web   lab1      0.10%     5MiB / 50MiB        10.00%    2         "
            "0         0.0       0B/s / 0B/s\n");
}

TEST(StatsTracker, AWorkersFiguresBetweenHeartbeatsKeepTheLastCpuPercent) {
  StatsTracker tracker;
  tracker.observe(parseStatsAnswer(json::array({row(kId1, "w", 0, 1'000'000'000, 0, 0, 0)})), 1.0);
  auto rows =
      tracker.observe(parseStatsAnswer(json::array({row(kId1, "w", 500'000'000, 2'000'000'000, 0, 0, 0)})), 2.0);
  EXPECT_EQ(rows[0].at("CPUPerc"), "50.00%");
  // The next answer came before the node's next heartbeat: the same reading.
  rows = tracker.observe(parseStatsAnswer(json::array({row(kId1, "w", 500'000'000, 2'000'000'000, 0, 0, 0)})), 3.0);
  EXPECT_EQ(rows[0].at("CPUPerc"), "50.00%");
  rows = tracker.observe(parseStatsAnswer(json::array({row(kId1, "w", 600'000'000, 3'000'000'000, 0, 0, 0)})), 4.0);
  EXPECT_EQ(rows[0].at("CPUPerc"), "10.00%");
}

TEST(StatsTracker, AReplicaWithoutFiguresShowsDashesAndANewOneHasNoRateYet) {
  StatsTracker tracker({"web.1.x"}, /*noTrunc=*/true);
  json stopped = row(kId1, "web.1.x", 0, 0, 5, 0, 0);
  stopped["running"] = false;
  stopped["error"] = "not running";
  stopped["cpuNs"] = nullptr;
  tracker.observe(parseStatsAnswer(json::array({stopped})), 1.0);
  auto rows = tracker.observe(parseStatsAnswer(json::array({stopped, row(kId2, "new", 0, 1, 0, 0, 0)})), 2.0);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("Container"), "web.1.x");  // as typed
  EXPECT_EQ(rows[0].at("ID"), kId1);              // --no-trunc
  EXPECT_EQ(rows[0].at("CPUPerc"), "--");
  EXPECT_EQ(rows[0].at("MemUsage"), "-- / --");
  EXPECT_EQ(rows[0].at("MemPerc"), "--");
  EXPECT_EQ(rows[0].at("PIDs"), "--");
  EXPECT_EQ(rows[0].at("RequestsPerSec"), "0.0");
  EXPECT_EQ(rows[1].at("CPUPerc"), "--");
  EXPECT_EQ(rows[1].at("RequestsPerSec"), "--");
  EXPECT_EQ(rows[1].at("BytesPerSec"), "--");
}

TEST(StatsFormat, DockersFieldsAndOursAndATypoIsGosError) {
  StatsTracker tracker;
  tracker.observe(parseStatsAnswer(json::array({row(kId1, "web.1.x", 0, 1'000'000'000, 0, 0, 0)})), 1.0);
  auto rows = tracker.observe(
      parseStatsAnswer(json::array({row(kId1, "web.1.x", 20'000'000, 2'000'000'000, 4, 400, 4000, 1)})), 2.0);
  ListFlags flags;
  flags.format =
      "{{.Container}} {{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.PIDs}} {{.Service}} "
      "{{.Node}} {{.Connections}} {{.RequestsPerSec}} {{.BytesPerSec}}";
  auto t = listTemplate(statsView(), flags);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(
      t->render(rows),
      "aaaaaaaaaaaa web.1.x 2.00% 5MiB / 50MiB 10.00% 400B / 4kB 2 getstartedlab_web lab1 1 4.0 400B/s / 4kB/s\n");
  flags.format = "table {{.Name}}\t{{.CPUPerc}}";
  t = listTemplate(statsView(), flags);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->render(rows), "NAME      CPU %\nweb.1.x   2.00%\n");
  flags.format = "{{.BlockIO}}";
  t = listTemplate(statsView(), flags);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, "template: :1:2: executing \"\" at <.BlockIO>: can't evaluate field BlockIO");
}

TEST(StatsFrame, ATerminalIsRedrawnInPlaceAndAPipeGetsTheTableAsItIs) {
  const std::string table = "A   B\n1   2\n";
  EXPECT_EQ(statsFrame(table, false, true), table);
  EXPECT_EQ(statsFrame(table, false, false), table);
  // The first frame clears the screen; each starts at the top-left corner,
  // clears each line's rest and everything below.
  EXPECT_EQ(statsFrame(table, true, true), "\x1b[2J\x1b[HA   B\x1b[K\n1   2\x1b[K\n\x1b[J");
  EXPECT_EQ(statsFrame(table, true, false), "\x1b[HA   B\x1b[K\n1   2\x1b[K\n\x1b[J");
}

}  // namespace
}  // namespace skiff::cli
