// `skiff stats` as a user runs it: flags parsed by CLI11, requests sent to a
// fake netd whose counters move between answers, and the exact bytes
// printed. The clock is fake and the sleep advances it instead of waiting;
// streaming is bounded by maxFrames or by a stop the test asks for (the
// SIGINT of a real run).

#include "src/stats_command.h"

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <sstream>

#include "fake_daemon.h"

namespace skiff::cli {
namespace {

using fake::FakeDaemon;
using fake::jsonResponse;
using fake::Request;
using nlohmann::json;

const std::string kId1 = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
const std::string kId2 = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";

struct Outcome {
  int code = 0;
  std::string out;
  std::string err;
  std::vector<std::chrono::milliseconds> sleeps;
};

class Capture {
 public:
  Capture() : oldOut_(std::cout.rdbuf(out_.rdbuf())), oldErr_(std::cerr.rdbuf(err_.rdbuf())) {}
  ~Capture() {
    std::cout.rdbuf(oldOut_);
    std::cerr.rdbuf(oldErr_);
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

 private:
  std::ostringstream out_, err_;
  std::streambuf* oldOut_;
  std::streambuf* oldErr_;
};

// `skiff ARGS...` with only `stats`, against `daemon`. stopAfterSleeps > 0:
// the user presses Ctrl-C during that sleep.
// host: another daemon address than the fake's.
Outcome skiff(FakeDaemon& daemon, std::vector<std::string> args, bool terminal = false, uint64_t maxFrames = 0,
              int stopAfterSleeps = 0, const std::string& hostOverride = "") {
  CLI::App app{"skiff", "skiff"};
  app.require_subcommand(1);
  std::function<int()> action;
  const std::string host = hostOverride.empty() ? daemon.host() : hostOverride;
  Commands commands(action, host);
  Outcome outcome;
  auto clock = std::chrono::steady_clock::time_point{};
  StatsOptions options;
  options.terminal = terminal;
  options.maxFrames = maxFrames;
  options.now = [&] { return clock; };
  options.sleep = [&](std::chrono::milliseconds d) {
    clock += d;
    outcome.sleeps.push_back(d);
  };
  options.stopped = [&] { return stopAfterSleeps > 0 && static_cast<int>(outcome.sleeps.size()) >= stopAfterSleeps; };
  StatsCommand stats(app, commands, options);

  args.insert(args.begin(), "skiff");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  Capture capture;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    outcome.code = action ? action() : 0;
  } catch (const CLI::ParseError& e) {
    outcome.code = app.exit(e);
  }
  outcome.out = capture.out();
  outcome.err = capture.err();
  return outcome;
}

// One replica's row at answer n: 0.1 s of CPU, 10 connections and 1 kB in
// / 5 kB out per second (one answer per second of the fake clock).
json replica(const std::string& id, const std::string& name, uint64_t n) {
  return json{{"id", id},
              {"taskId", name.substr(name.rfind('.') + 1)},
              {"name", name},
              {"service", "getstartedlab_web"},
              {"stack", "getstartedlab"},
              {"slot", 1},
              {"node", {{"id", "n1"}, {"hostname", "lab1"}}},
              {"running", true},
              {"cpuNs", 100'000'000 * n},
              {"memoryUsage", 3 * 1048576},
              {"memoryLimit", 52428800},
              {"pids", 1},
              {"sampledAt", 1'000'000'000 * static_cast<int64_t>(n + 1)},
              {"error", ""},
              {"mesh", {{"connections", 10 * n}, {"active", 1}, {"bytesIn", 1000 * n}, {"bytesOut", 5000 * n}}}};
}

// A daemon whose stats move by one second per GET; other paths are 404.
FakeDaemon::Handler moving(std::shared_ptr<uint64_t> gets) {
  return [gets](const Request& r) {
    if (r.method != "GET" || r.target.rfind("/v1/stats", 0) != 0) return jsonResponse(404, {{"message", "no"}});
    const uint64_t n = (*gets)++;
    if (r.target.find("nosuch") != std::string::npos)
      return jsonResponse(404, {{"message", "No such container: nosuch"}});
    json rows = json::array({replica(kId1, "getstartedlab_web.1.aaa", n)});
    if (r.target == "/v1/stats") rows.push_back(replica(kId2, "getstartedlab_web.2.bbb", n));
    return jsonResponse(200, rows);
  };
}

const std::string kHeader =
    "CONTAINER ID   NAME                      SERVICE             NODE      CPU %     MEM USAGE / LIMIT   MEM %     "
    "PIDS      CONNS     REQ/S     NET I/O/S\n";
const std::string kRow1 =
    "aaaaaaaaaaaa   getstartedlab_web.1.aaa   getstartedlab_web   lab1      10.00%    3MiB / 50MiB        6.00%     "
    "1         1         10.0      1kB/s / 5kB/s\n";
const std::string kRow2 =
    "bbbbbbbbbbbb   getstartedlab_web.2.bbb   getstartedlab_web   lab1      10.00%    3MiB / 50MiB        6.00%     "
    "1         1         10.0      1kB/s / 5kB/s\n";

TEST(StatsCommand, NoStreamTakesTwoSamplesOneSecondApartAndPrintsOneTable) {
  auto gets = std::make_shared<uint64_t>(0);
  FakeDaemon daemon(moving(gets));
  Outcome o = skiff(daemon, {"stats", "--no-stream"});
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.out, kHeader + kRow1 + kRow2);
  EXPECT_EQ(o.sleeps, std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(1000)});
  const auto& requests = daemon.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/v1/stats");
}

TEST(StatsCommand, NoStreamOnATerminalStillPrintsAPlainTable) {
  auto gets = std::make_shared<uint64_t>(0);
  FakeDaemon daemon(moving(gets));
  Outcome o = skiff(daemon, {"stats", "--no-stream"}, /*terminal=*/true);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, kHeader + kRow1 + kRow2);
}

TEST(StatsCommand, ContainersFilterRowsInTheDaemonAndAnUnknownOneIsDockersError) {
  auto gets = std::make_shared<uint64_t>(0);
  FakeDaemon daemon(moving(gets));
  Outcome o = skiff(daemon, {"stats", "--no-stream", "--format", "{{.Container}}: {{.CPUPerc}} {{.MemPerc}}",
                             "getstartedlab_web.1.aaa"});
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "getstartedlab_web.1.aaa: 10.00% 6.00%\n");
  EXPECT_EQ(daemon.requests()[0].target, "/v1/stats?containers=getstartedlab_web.1.aaa");

  FakeDaemon missing(moving(std::make_shared<uint64_t>(0)));
  o = skiff(missing, {"stats", "--no-stream", "aaaa", "nosuch"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "Error response from daemon: No such container: nosuch\n");
  EXPECT_EQ(missing.requests()[0].target, "/v1/stats?containers=aaaa%2Cnosuch");
}

TEST(StatsCommand, ATemplateTypoIsReportedBeforeAnyRequest) {
  FakeDaemon daemon(moving(std::make_shared<uint64_t>(0)));
  Outcome o = skiff(daemon, {"stats", "--no-stream", "--format", "{{.Nope}}"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope\n");
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(StatsCommand, StreamingToAPipePrintsAWholeTableEachSecond) {
  FakeDaemon daemon(moving(std::make_shared<uint64_t>(0)));
  Outcome o = skiff(daemon, {"stats", "--format", "table {{.Name}}\t{{.RequestsPerSec}}"}, false, /*maxFrames=*/3);
  EXPECT_EQ(o.code, 0) << o.err;
  const std::string table =
      "NAME                      REQ/S\ngetstartedlab_web.1.aaa   10.0\ngetstartedlab_web.2.bbb   10.0\n";
  EXPECT_EQ(o.out, table + table + table);
  EXPECT_EQ(o.sleeps.size(), 3u);
  EXPECT_EQ(daemon.requests().size(), 4u);  // one more than frames: the first has no rates
}

TEST(StatsCommand, StreamingOnATerminalRedrawsInPlace) {
  FakeDaemon daemon(moving(std::make_shared<uint64_t>(0)));
  Outcome o = skiff(daemon, {"stats", "--format", "table {{.Name}}"}, /*terminal=*/true, /*maxFrames=*/2);
  EXPECT_EQ(o.code, 0) << o.err;
  const std::string lines = "NAME\x1b[K\ngetstartedlab_web.1.aaa\x1b[K\ngetstartedlab_web.2.bbb\x1b[K\n\x1b[J";
  EXPECT_EQ(o.out, "\x1b[2J\x1b[H" + lines + "\x1b[H" + lines);
}

TEST(StatsCommand, CtrlCEndsTheStreamCleanlyWithExitZero) {
  FakeDaemon daemon(moving(std::make_shared<uint64_t>(0)));
  // Stopped during the third wait: two frames were printed, no third request.
  Outcome o = skiff(daemon, {"stats", "--format", "{{.ID}}"}, false, 0, /*stopAfterSleeps=*/3);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.out, "aaaaaaaaaaaa\nbbbbbbbbbbbb\naaaaaaaaaaaa\nbbbbbbbbbbbb\n");
  EXPECT_EQ(daemon.requests().size(), 3u);
}

TEST(StatsCommand, ADaemonThatIsNotThereIsDockersConnectError) {
  FakeDaemon daemon(moving(std::make_shared<uint64_t>(0)));
  const std::string gone = "unix:///nonexistent/skiff-test/netd.sock";
  Outcome o = skiff(daemon, {"stats", "--no-stream"}, false, 0, 0, gone);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "Cannot connect to the skiff daemon at " + gone + ". Is the netd daemon running?\n");
}

}  // namespace
}  // namespace skiff::cli
