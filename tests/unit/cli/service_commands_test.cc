// `skiff service update` and `service rollback` as a user runs them: flags
// parsed by CLI11, requests sent to a fake netd whose service moves through
// an update look by look, and the exact bytes printed (no terminal: only
// changed lines). The clock is fake and the sleep records instead of waiting.

#include "src/service_commands.h"

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <sstream>

#include "fake_daemon.h"

namespace skiff::cli {
namespace {

using fake::FakeDaemon;
using fake::jsonResponse;
using fake::Request;
using nlohmann::json;

struct Outcome {
  int code = 0;
  std::string out;
  std::string err;
  int sleeps = 0;
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

// `skiff service ARGS...` with only update and rollback, against `daemon`;
// each sleep advances the fake clock by its interval.
Outcome skiff(FakeDaemon& daemon, std::vector<std::string> args, bool terminal = false) {
  CLI::App app{"skiff", "skiff"};
  app.require_subcommand(1);
  std::function<int()> action;
  const std::string host = daemon.host();
  Commands commands(action, host);
  auto* service = app.add_subcommand("service", "Manage services")->require_subcommand(1);
  Outcome outcome;
  auto clock = std::chrono::steady_clock::time_point{};
  FollowOptions follow;
  follow.terminal = terminal;
  follow.now = [&] { return clock; };
  follow.sleep = [&](std::chrono::milliseconds d) {
    clock += d;
    ++outcome.sleeps;
  };
  ServiceUpdateCommands update(*service, commands, follow);

  args.insert(args.begin(), "service");
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

json serviceAt(uint64_t version, uint64_t replicas, const std::string& state, const std::string& message = "") {
  json s = {{"ID", "svc1"},
            {"Version", {{"Index", version}}},
            {"Spec", {{"Name", "app_web"}, {"Mode", {{"Replicated", {{"Replicas", replicas}}}}}}}};
  if (!state.empty()) s["UpdateStatus"] = {{"State", state}, {"Message", message}};
  return s;
}

json task(uint64_t slot, uint64_t version, const std::string& state, bool ready,
          const std::string& desired = "Running") {
  return {{"slot", slot},          {"specVersion", version},
          {"currentState", state}, {"desiredState", desired},
          {"ready", ready},        {"error", ""}};
}

// A daemon whose service is at look i the i-th of `looks` (the last one
// repeats); the update or rollback POST answers `answer`.
struct Look {
  json service;
  json tasks;
};
FakeDaemon::Handler rolling(std::vector<Look> looks, json answer = {{"ID", "svc1"}, {"Warnings", json::array()}}) {
  auto serviceGets = std::make_shared<size_t>(0);
  return [looks = std::move(looks), answer, serviceGets](const Request& r) {
    if (r.method == "POST") return jsonResponse(200, answer);
    if (r.target.rfind("/v1/services/", 0) == 0) {
      const size_t i = std::min(*serviceGets, looks.size() - 1);
      ++*serviceGets;
      return jsonResponse(200, looks[i].service);
    }
    // The tasks go with the service look just served.
    const size_t i = std::min(*serviceGets, looks.size()) - 1;
    return jsonResponse(200, looks[i].tasks);
  };
}

const std::string kFull = "[==================================================>]";
const std::string kStarting = "[============================================>      ]";

TEST(ServiceUpdate, SendsOnlyTheGivenFlagsAndFollowsToConvergence) {
  FakeDaemon daemon(rolling({
      {serviceAt(2, 2, "updating"), json::array({task(1, 2, "Starting", false), task(2, 1, "Running", true)})},
      {serviceAt(2, 2, "updating"), json::array({task(1, 2, "Running", true), task(2, 1, "Running", true)})},
      {serviceAt(2, 2, "updating"), json::array({task(1, 2, "Running", true), task(2, 2, "Running", true)})},
      {serviceAt(2, 2, "completed"), json::array({task(1, 2, "Running", true), task(2, 2, "Running", true)})},
  }));
  const Outcome r = skiff(daemon, {"update", "--image", "web:v2", "--env-add", "A=1", "--env-add", "B=2",
                                   "--update-delay", "1m30s", "--update-order", "start-first", "app_web"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "app_web\n"
            "overall progress: 0 out of 2 tasks\n"
            "1/2: starting  " +
                kStarting +
                "\n"
                "2/2: waiting (old task running)\n"
                "overall progress: 1 out of 2 tasks\n"
                "1/2: running   " +
                kFull +
                "\n"
                "overall progress: 2 out of 2 tasks\n"
                "2/2: running   " +
                kFull +
                "\n"
                "verify: Service converged\n");
  EXPECT_EQ(r.sleeps, 3);
  const auto& requests = daemon.requests();
  ASSERT_GE(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/services/app_web/update");
  EXPECT_EQ(requests[0].json(), json::parse(R"({"image": "web:v2", "envAdd": ["A=1", "B=2"],
                                                "updateConfig": {"delay": 90.0, "order": "start-first"}})"));
  EXPECT_EQ(requests[1].target, "/v1/services/app_web");
  EXPECT_EQ(requests[2].target, "/v1/tasks?service=app_web");
}

TEST(ServiceUpdate, DetachPrintsTheNameAndDoesNotWait) {
  FakeDaemon daemon(rolling({{serviceAt(2, 1, "updating"), json::array()}},
                            {{"ID", "svc1"}, {"Warnings", json::array({"image web:v2 could not be accessed"})}}));
  const Outcome r = skiff(daemon, {"update", "-d", "--replicas", "3", "--force", "app_web"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "app_web\n");
  EXPECT_EQ(r.err, "image web:v2 could not be accessed\n");
  const auto& requests = daemon.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].json(), (json{{"replicas", 3}, {"force", true}}));
}

TEST(ServiceUpdate, QuietWaitsWithoutProgress) {
  FakeDaemon daemon(rolling({
      {serviceAt(2, 1, "updating"), json::array({task(1, 2, "Starting", false)})},
      {serviceAt(2, 1, "completed"), json::array({task(1, 2, "Running", true)})},
  }));
  const Outcome r = skiff(daemon, {"update", "-q", "--force", "app_web"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "app_web\n");
  EXPECT_EQ(r.sleeps, 1);
}

TEST(ServiceUpdate, APausedUpdateExitsOneWithTheDaemonsReason) {
  FakeDaemon daemon(rolling({
      {serviceAt(2, 1, "updating"), json::array({task(1, 2, "Starting", false)})},
      {serviceAt(2, 1, "paused", "update paused due to failure or early termination of task abc"),
       json::array({task(1, 2, "Failed", false, "Shutdown")})},
  }));
  const Outcome r = skiff(daemon, {"update", "--image", "broken:1", "app_web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "service update paused: update paused due to failure or early termination of task abc\n");
  EXPECT_NE(r.out.find("1/1: failed\n"), std::string::npos) << r.out;
}

TEST(ServiceUpdate, AnUpdateRolledBackIsFollowedToItsEndAndFails) {
  const std::string why = "update rolled back due to failure or early termination of task abc";
  FakeDaemon daemon(rolling({
      {serviceAt(2, 1, "updating"), json::array({task(1, 2, "Starting", false), task(1, 1, "Running", true)})},
      {serviceAt(3, 1, "rollback_started", why), json::array({task(1, 1, "Running", true)})},
      {serviceAt(3, 1, "rollback_started", why), json::array({task(1, 3, "Running", true)})},
      {serviceAt(3, 1, "rollback_completed", why), json::array({task(1, 3, "Running", true)})},
  }));
  const Outcome r = skiff(daemon, {"update", "--image", "broken:1", "--update-failure-action", "rollback", "app_web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out,
            "app_web\n"
            "overall progress: 0 out of 1 tasks\n"
            "1/1: starting  " +
                kStarting +
                "\n"
                "rollback: " +
                why +
                "\n"
                "overall progress: rolling back update: 0 out of 1 tasks\n"
                "1/1: waiting (old task running)\n"
                "overall progress: rolling back update: 1 out of 1 tasks\n"
                "1/1: running   " +
                kFull + "\n");
  EXPECT_EQ(r.err, "service rolled back: " + why + "\n");
}

TEST(ServiceUpdate, GivesUpAfterTheTimeLimit) {
  FakeDaemon daemon(rolling({{serviceAt(2, 1, "updating"), json::array({task(1, 2, "Starting", false)})}}));
  const Outcome r = skiff(daemon, {"update", "--force", "app_web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.sleeps, 1200);  // 10 minutes of 500 ms
  EXPECT_EQ(r.err,
            "gave up waiting after 10m: service app_web has not converged; the update goes on (follow it with "
            "`skiff service ps app_web`)\n");
}

TEST(ServiceUpdate, FlagErrorsCostNoRequest) {
  FakeDaemon daemon(jsonResponse(200, json::object()));
  Outcome r = skiff(daemon, {"update", "--update-delay", "5", "app_web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "invalid argument \"5\" for \"--update-delay\" flag: missing unit in duration \"5\"\n");
  r = skiff(daemon, {"update", "--rollback", "--image", "x", "app_web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "other flags may not be combined with --rollback\n");
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(ServiceUpdate, TheDaemonsErrorIsPrinted) {
  FakeDaemon daemon(jsonResponse(404, {{"message", "service nope not found"}}));
  const Outcome r = skiff(daemon, {"update", "--force", "nope"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Error response from daemon: service nope not found\n");
}

TEST(ServiceRollback, PostsWithoutBodyAndConverges) {
  FakeDaemon daemon(rolling({
      {serviceAt(4, 1, "rollback_started", "manually requested rollback"), json::array()},
      {serviceAt(4, 1, "rollback_completed", "manually requested rollback"),
       json::array({task(1, 4, "Running", true)})},
  }));
  const Outcome r = skiff(daemon, {"rollback", "app_web"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "app_web\n"
            "overall progress: rolling back update: 0 out of 1 tasks\n"
            "1/1: waiting\n"
            "overall progress: rolling back update: 1 out of 1 tasks\n"
            "1/1: running   " +
                kFull +
                "\n"
                "verify: Service converged\n");
  const auto& requests = daemon.requests();
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/services/app_web/rollback");
  EXPECT_EQ(requests[0].body, "");
}

TEST(ServiceRollback, UpdateRollbackFlagIsTheSame) {
  FakeDaemon daemon(rolling({{serviceAt(4, 0, "rollback_completed"), json::array()}}));
  const Outcome r = skiff(daemon, {"update", "--rollback", "-d", "app_web"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "app_web\n");
  EXPECT_EQ(daemon.requests()[0].target, "/v1/services/app_web/rollback");
}

TEST(ServiceRollback, OnATerminalTheBarsRedrawInPlace) {
  FakeDaemon daemon(rolling({
      {serviceAt(4, 1, "rollback_started"), json::array({task(1, 4, "Starting", false)})},
      {serviceAt(4, 1, "rollback_completed"), json::array({task(1, 4, "Running", true)})},
  }));
  const Outcome r = skiff(daemon, {"rollback", "app_web"}, /*terminal=*/true);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "app_web\n"
            "overall progress: rolling back update: 0 out of 1 tasks\n"
            "1/1: starting  " +
                kStarting +
                "\n"
                "\x1b[2A\x1b[J"
                "overall progress: rolling back update: 1 out of 1 tasks\n"
                "1/1: running   " +
                kFull +
                "\n"
                "verify: Service converged\n");
}

}  // namespace
}  // namespace skiff::cli
