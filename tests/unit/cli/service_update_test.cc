// `service update`'s request body from its flags, and docker's progress view
// from the service and task JSON netd serves, as exact text.

#include "skiff/cli/service_update.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

using nlohmann::json;

std::string errorOf(const ServiceUpdateArgs& args) {
  auto body = serviceUpdateBody(args);
  return body ? "" : body.error().message;
}

TEST(ServiceUpdateBody, NamesOnlyTheFlagsGiven) {
  EXPECT_EQ(serviceUpdateBody({}).value(), json::object());
  ServiceUpdateArgs image;
  image.image = "web:v2";
  EXPECT_EQ(serviceUpdateBody(image).value(), (json{{"image", "web:v2"}}));
  ServiceUpdateArgs delayOnly;
  delayOnly.delay = "2s";
  EXPECT_EQ(serviceUpdateBody(delayOnly).value(), (json{{"updateConfig", {{"delay", 2.0}}}}));
}

TEST(ServiceUpdateBody, EveryFlagInItsField) {
  ServiceUpdateArgs a;
  a.image = "s3ich4n/get-started:pt03";
  a.envAdd = {"A=1", "B=x=y", "C"};
  a.envRm = {"OLD", "GONE=whatever"};
  a.replicas = "3";
  a.force = true;
  a.parallelism = "2";
  a.delay = "1m30s";
  a.order = "start-first";
  a.failureAction = "rollback";
  a.monitor = "500ms";
  a.maxFailureRatio = "0.25";
  EXPECT_EQ(serviceUpdateBody(a).value(), json::parse(R"({
    "image": "s3ich4n/get-started:pt03",
    "envAdd": ["A=1", "B=x=y", "C"],
    "envRm": ["OLD", "GONE"],
    "replicas": 3,
    "force": true,
    "updateConfig": {"parallelism": 2, "delay": 90.0, "order": "start-first", "failureAction": "rollback",
                     "monitor": 0.5, "maxFailureRatio": 0.25}
  })"));
  // Unsigned in the body, as netd checks it.
  EXPECT_TRUE(serviceUpdateBody(a).value()["replicas"].is_number_unsigned());
}

TEST(ServiceUpdateBody, ErrorsNameTheFlagAndValue) {
  ServiceUpdateArgs a;
  a.delay = "5";
  EXPECT_EQ(errorOf(a), "invalid argument \"5\" for \"--update-delay\" flag: missing unit in duration \"5\"");
  a = {};
  a.monitor = "-1s";
  EXPECT_EQ(errorOf(a), "invalid argument \"-1s\" for \"--update-monitor\" flag: invalid duration \"-1s\"");
  a = {};
  a.monitor = "3x";
  EXPECT_EQ(errorOf(a), "invalid argument \"3x\" for \"--update-monitor\" flag: unknown unit \"x\" in duration \"3x\"");
  a = {};
  a.replicas = "-1";
  EXPECT_EQ(errorOf(a), "invalid argument \"-1\" for \"--replicas\" flag: must be a non-negative integer");
  a = {};
  a.parallelism = "two";
  EXPECT_EQ(errorOf(a), "invalid argument \"two\" for \"--update-parallelism\" flag: must be a non-negative integer");
  a = {};
  a.order = "random";
  EXPECT_EQ(errorOf(a),
            "invalid argument \"random\" for \"--update-order\" flag: must be one of stop-first, start-first");
  a = {};
  a.failureAction = "retry";
  EXPECT_EQ(errorOf(a),
            "invalid argument \"retry\" for \"--update-failure-action\" flag: must be one of pause, continue, "
            "rollback");
  a = {};
  a.maxFailureRatio = "1.5";
  EXPECT_EQ(errorOf(a), "invalid argument \"1.5\" for \"--update-max-failure-ratio\" flag: must be between 0 and 1");
  a.maxFailureRatio = "half";
  EXPECT_EQ(errorOf(a), "invalid argument \"half\" for \"--update-max-failure-ratio\" flag: must be a number");
  a = {};
  a.envAdd = {"=1"};
  EXPECT_EQ(errorOf(a), "invalid environment variable: =1");
  a = {};
  a.image = "";
  EXPECT_EQ(errorOf(a), "invalid argument \"\" for \"--image\" flag: an image name cannot be empty");
}

TEST(ServiceUpdateBody, RollbackTakesNoOtherFlag) {
  ServiceUpdateArgs a;
  a.rollback = true;
  EXPECT_EQ(errorOf(a), "");
  a.force = true;
  EXPECT_EQ(errorOf(a), "other flags may not be combined with --rollback");
  a.force = false;
  a.delay = "1s";
  EXPECT_EQ(errorOf(a), "other flags may not be combined with --rollback");
}

TEST(ServiceUpdateDuration, GoDurations) {
  EXPECT_DOUBLE_EQ(parseDurationFlag("--update-delay", "2s").value(), 2);
  EXPECT_DOUBLE_EQ(parseDurationFlag("--update-delay", "1m30s").value(), 90);
  EXPECT_DOUBLE_EQ(parseDurationFlag("--update-delay", "500ms").value(), 0.5);
  EXPECT_DOUBLE_EQ(parseDurationFlag("--update-delay", "0").value(), 0);
  EXPECT_DOUBLE_EQ(parseDurationFlag("--update-delay", "1h").value(), 3600);
  EXPECT_FALSE(parseDurationFlag("--update-delay", "").ok());
}

TEST(ProgressBar, DockersWidths) {
  EXPECT_EQ(progressBar(9, 9), "[==================================================>]");
  EXPECT_EQ(progressBar(8, 9), "[============================================>      ]");
  EXPECT_EQ(progressBar(6, 9), "[=================================>                 ]");
  EXPECT_EQ(progressBar(0, 9), "[>                                                  ]");
}

// A service as GET /v1/services/<name> shows it.
json service(uint64_t version, uint64_t replicas, const json& updateStatus = nullptr) {
  json s = {{"ID", "svc1"},
            {"Version", {{"Index", version}}},
            {"Spec", {{"Name", "app_web"}, {"Mode", {{"Replicated", {{"Replicas", replicas}}}}}}}};
  if (!updateStatus.is_null()) s["UpdateStatus"] = updateStatus;
  return s;
}

json status(const std::string& state, const std::string& message = "") {
  return {{"State", state}, {"StartedAt", "2026-12-02T10:00:00Z"}, {"Message", message}};
}

// A task as GET /v1/tasks lists it.
json task(uint64_t slot, uint64_t version, const std::string& state, bool ready, const std::string& desired = "Running",
          const std::string& error = "") {
  return {{"id", "t" + std::to_string(slot) + "v" + std::to_string(version)},
          {"service", "app_web"},
          {"slot", slot},
          {"specVersion", version},
          {"currentState", state},
          {"desiredState", desired},
          {"ready", ready},
          {"error", error}};
}

const std::string kFull = "[==================================================>]";
const std::string kStarting = "[============================================>      ]";
const std::string kPreparing = "[=================================>                 ]";

TEST(UpdateProgress, SlotsOnTheNewVersionAndReadyAreDone) {
  UpdateProgress p(false);
  json tasks = json::array({
      task(1, 2, "Running", true),
      task(1, 1, "Shutdown", false, "Shutdown"),
      task(2, 2, "Running", false),  // running, not yet in rotation
      task(3, 2, "Preparing", false),
      task(3, 1, "Running", true, "Shutdown"),  // stop-first: the old one is stopping
      task(4, 1, "Running", true),              // not reached yet
      task(5, 2, "Failed", false, "Shutdown", "task: non-zero exit (1)"),
  });
  ProgressFrame f = p.observe(service(2, 5, status("updating", "update in progress")), tasks);
  EXPECT_EQ(f.bars, (std::vector<std::string>{
                        "overall progress: 1 out of 5 tasks",
                        "1/5: running   " + kFull,
                        "2/5: starting  " + kStarting,
                        "3/5: preparing " + kPreparing,
                        "4/5: waiting (old task running)",
                        "5/5: task: non-zero exit (1)",
                    }));
  EXPECT_TRUE(f.notes.empty());
  EXPECT_EQ(f.end, ProgressFrame::End::kNone);
}

TEST(UpdateProgress, AllDoneButStillMonitoringIsNotConverged) {
  UpdateProgress p(false);
  json tasks = json::array({task(1, 2, "Running", true), task(2, 2, "Running", true)});
  EXPECT_EQ(p.observe(service(2, 2, status("updating")), tasks).end, ProgressFrame::End::kNone);
  ProgressFrame f = p.observe(service(2, 2, status("completed", "update completed")), tasks);
  EXPECT_EQ(f.end, ProgressFrame::End::kConverged);
  EXPECT_EQ(f.finalLine, "verify: Service converged");
  EXPECT_EQ(f.bars[0], "overall progress: 2 out of 2 tasks");
}

TEST(UpdateProgress, CompletedButASlotNotReadyWaits) {
  // A stale "completed" (e.g. only --replicas changed): the tasks decide.
  UpdateProgress p(false);
  json tasks = json::array({task(1, 2, "Running", true), task(2, 2, "Starting", false)});
  EXPECT_EQ(p.observe(service(2, 2, status("completed")), tasks).end, ProgressFrame::End::kNone);
}

TEST(UpdateProgress, NoUpdateStatusConvergesWhenAllSlotsAreDone) {
  UpdateProgress p(false);
  EXPECT_EQ(p.observe(service(1, 2), json::array({task(1, 1, "Running", true)})).end, ProgressFrame::End::kNone);
  ProgressFrame f = p.observe(service(1, 2), json::array({task(1, 1, "Running", true), task(2, 1, "Running", true)}));
  EXPECT_EQ(f.end, ProgressFrame::End::kConverged);
  // Nothing to run converges at once.
  UpdateProgress zero(false);
  EXPECT_EQ(zero.observe(service(3, 0), json::array()).end, ProgressFrame::End::kConverged);
}

TEST(UpdateProgress, PausedEndsWithDockersError) {
  UpdateProgress p(false);
  ProgressFrame f = p.observe(service(2, 1, status("paused", "update paused due to failure of task t1v2")),
                              json::array({task(1, 2, "Failed", false, "Shutdown", "task: non-zero exit (1)")}));
  EXPECT_EQ(f.end, ProgressFrame::End::kFailed);
  EXPECT_EQ(f.finalLine, "service update paused: update paused due to failure of task t1v2");
  UpdateProgress r(true);
  EXPECT_EQ(r.observe(service(3, 1, status("rollback_paused", "why")), json::array()).finalLine,
            "service rollback paused: why");
}

TEST(UpdateProgress, AnUpdateThatRollsBackSaysWhyAndFails) {
  UpdateProgress p(false);
  EXPECT_EQ(p.observe(service(2, 1, status("updating")), json::array({task(1, 2, "Starting", false)})).end,
            ProgressFrame::End::kNone);
  ProgressFrame f = p.observe(service(3, 1, status("rollback_started", "update rolled back due to failure")),
                              json::array({task(1, 2, "Failed", false, "Shutdown", "task: non-zero exit (1)")}));
  EXPECT_EQ(f.notes, (std::vector<std::string>{"rollback: update rolled back due to failure"}));
  EXPECT_EQ(f.bars[0], "overall progress: rolling back update: 0 out of 1 tasks");
  EXPECT_EQ(f.end, ProgressFrame::End::kNone);
  // Said once.
  EXPECT_TRUE(p.observe(service(3, 1, status("rollback_started", "update rolled back due to failure")), json::array())
                  .notes.empty());
  ProgressFrame done = p.observe(service(3, 1, status("rollback_completed", "update rolled back due to failure")),
                                 json::array({task(1, 3, "Running", true)}));
  EXPECT_EQ(done.end, ProgressFrame::End::kFailed);
  EXPECT_EQ(done.finalLine, "service rolled back: update rolled back due to failure");
}

TEST(UpdateProgress, ARequestedRollbackThatCompletesConverges) {
  UpdateProgress p(true);
  ProgressFrame f = p.observe(service(4, 1, status("rollback_started", "manually requested rollback")), json::array());
  EXPECT_TRUE(f.notes.empty());
  EXPECT_EQ(f.bars,
            (std::vector<std::string>{"overall progress: rolling back update: 0 out of 1 tasks", "1/1: waiting"}));
  f = p.observe(service(4, 1, status("rollback_completed", "manually requested rollback")),
                json::array({task(1, 4, "Running", true)}));
  EXPECT_EQ(f.end, ProgressFrame::End::kConverged);
}

TEST(UpdateProgress, AnEarlierUpdatesRollbackSeenFirstIsNotThisUpdatesFailure) {
  // `service update --replicas 2` after an update that rolled back: the
  // status is the old one, the tasks converge.
  UpdateProgress p(false);
  ProgressFrame f =
      p.observe(service(3, 1, status("rollback_completed", "old news")), json::array({task(1, 3, "Running", true)}));
  EXPECT_TRUE(f.notes.empty());
  EXPECT_EQ(f.end, ProgressFrame::End::kConverged);
}

TEST(UpdateProgress, ManySlotsShowOnlyTheOverallLine) {
  UpdateProgress p(false);
  json tasks = json::array();
  for (uint64_t s = 1; s <= 21; ++s) tasks.push_back(task(s, 1, "Running", s <= 7));
  ProgressFrame f = p.observe(service(1, 21), tasks);
  EXPECT_EQ(f.bars, (std::vector<std::string>{"overall progress: 7 out of 21 tasks"}));
}

TEST(UpdateProgress, GlobalModeHasALinePerNode) {
  UpdateProgress p(false);
  json svc = {{"Version", {{"Index", 2}}}, {"Spec", {{"Name", "app_agent"}, {"Mode", {{"Global", json::object()}}}}}};
  json a = task(0, 2, "Running", true);
  a["node"] = "node2";
  json b = task(0, 1, "Running", true);
  b["node"] = "node1";
  ProgressFrame f = p.observe(svc, json::array({a, b}));
  EXPECT_EQ(f.bars, (std::vector<std::string>{"overall progress: 1 out of 2 tasks", "node1: waiting (old task running)",
                                              "node2: running   " + kFull}));
}

TEST(UpdateProgress, LongErrorsAreCutToOneLine) {
  UpdateProgress p(false);
  const std::string error = "starting container failed: " + std::string(100, 'x') + "\nsecond line";
  ProgressFrame f = p.observe(service(2, 1), json::array({task(1, 2, "Rejected", false, "Shutdown", error)}));
  const std::string line = f.bars[1];
  EXPECT_EQ(line.substr(0, 5 + 27), "1/1: starting container failed: ");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.size(), 5 + 74 + 3u);  // 74 bytes and "…"
}

ProgressFrame frame(std::vector<std::string> bars, std::vector<std::string> notes = {},
                    ProgressFrame::End end = ProgressFrame::End::kNone, std::string finalLine = "") {
  ProgressFrame f;
  f.bars = std::move(bars);
  f.notes = std::move(notes);
  f.end = end;
  f.finalLine = std::move(finalLine);
  return f;
}

TEST(ProgressPrinter, LogsGetOnlyTheLinesThatChanged) {
  ProgressPrinter p(false);
  EXPECT_EQ(p.render(frame({"overall progress: 0 out of 2 tasks", "1/2: preparing", "2/2: waiting"})),
            "overall progress: 0 out of 2 tasks\n1/2: preparing\n2/2: waiting\n");
  EXPECT_EQ(p.render(frame({"overall progress: 0 out of 2 tasks", "1/2: preparing", "2/2: waiting"})), "");
  EXPECT_EQ(p.render(frame({"overall progress: 1 out of 2 tasks", "1/2: running", "2/2: waiting"})),
            "overall progress: 1 out of 2 tasks\n1/2: running\n");
  EXPECT_EQ(p.render(frame({"overall progress: rolling back update: 1 out of 2 tasks", "1/2: running", "2/2: waiting"},
                           {"rollback: it failed"})),
            "rollback: it failed\noverall progress: rolling back update: 1 out of 2 tasks\n");
  EXPECT_EQ(p.render(frame({"overall progress: 1 out of 1 tasks", "1/1: running"}, {}, ProgressFrame::End::kConverged,
                           "verify: Service converged")),
            "overall progress: 1 out of 1 tasks\n1/1: running\nverify: Service converged\n");
}

TEST(ProgressPrinter, TerminalsRedrawInPlace) {
  ProgressPrinter p(true);
  EXPECT_EQ(p.render(frame({"overall progress: 0 out of 1 tasks", "1/1: preparing"})),
            "overall progress: 0 out of 1 tasks\n1/1: preparing\n");
  EXPECT_EQ(p.render(frame({"overall progress: 0 out of 1 tasks", "1/1: preparing"})), "");
  EXPECT_EQ(p.render(frame({"overall progress: 0 out of 1 tasks", "1/1: starting"})),
            "\x1b[2A\x1b[Joverall progress: 0 out of 1 tasks\n1/1: starting\n");
  EXPECT_EQ(p.render(frame({"overall progress: 1 out of 1 tasks", "1/1: running"}, {}, ProgressFrame::End::kConverged,
                           "verify: Service converged")),
            "\x1b[2A\x1b[Joverall progress: 1 out of 1 tasks\n1/1: running\nverify: Service converged\n");
}

}  // namespace
}  // namespace skiff::cli
