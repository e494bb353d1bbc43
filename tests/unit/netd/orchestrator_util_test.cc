// The orchestrator's small helpers (orchestrator_impl.h): swarm templates,
// stack names and the timer wrapper, with hostile inputs.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "orchestrator_impl.h"

namespace skiff::netd {
namespace {

// The values launchTask passes for slot 2 of service "s_web".
const std::map<std::string, std::string> kValues = {
    {".Service.Name", "s_web"},        {".Service.ID", "svc123"},   {".Task.Slot", "2"},    {".Task.ID", "task456"},
    {".Task.Name", "s_web.2.task456"}, {".Node.Hostname", "node1"}, {".Node.ID", "node789"}};

TEST(ExpandTemplate, DocumentedPlaceholdersAreReplaced) {
  EXPECT_EQ(expandTemplate("{{.Service.Name}}", kValues), "s_web");
  EXPECT_EQ(expandTemplate("{{.Task.Slot}}", kValues), "2");
  EXPECT_EQ(expandTemplate("{{.Task.Name}}", kValues), "s_web.2.task456");
  EXPECT_EQ(expandTemplate("{{.Task.ID}}", kValues), "task456");
  EXPECT_EQ(expandTemplate("{{.Node.Hostname}}", kValues), "node1");
  EXPECT_EQ(expandTemplate("{{.Node.ID}}", kValues), "node789");
  EXPECT_EQ(expandTemplate("{{ .Node.Hostname }}-{{.Task.Slot}}.local", kValues), "node1-2.local");
  EXPECT_EQ(expandTemplate("{{\t.Service.Name\n}}", kValues), "s_web");
  EXPECT_EQ(expandTemplate("no placeholders", kValues), "no placeholders");
  EXPECT_EQ(expandTemplate("", kValues), "");
}

TEST(ExpandTemplate, UnknownPlaceholdersStayAsWritten) {
  EXPECT_EQ(expandTemplate("{{.Service.Labels}}", kValues), "{{.Service.Labels}}");
  EXPECT_EQ(expandTemplate("a{{ .Nope }}b{{.Task.Slot}}", kValues), "a{{ .Nope }}b2");
  EXPECT_EQ(expandTemplate("{{.}}", kValues), "{{.}}");
  EXPECT_EQ(expandTemplate("{{Task.Slot}}", kValues), "{{Task.Slot}}");
  EXPECT_EQ(expandTemplate("{{.Task.Slot}", kValues), "{{.Task.Slot}");
  EXPECT_EQ(expandTemplate("{{.Task.Slot", kValues), "{{.Task.Slot");
  EXPECT_EQ(expandTemplate("{{.Task.Slot1}}", kValues), "{{.Task.Slot1}}");
}

TEST(ExpandTemplate, NestedAndStrayBraces) {
  EXPECT_EQ(expandTemplate("{{{.Task.Slot}}}", kValues), "{2}");
  EXPECT_EQ(expandTemplate("{{{{.Task.Slot}}}}", kValues), "{{2}}");
  EXPECT_EQ(expandTemplate("{{ {{.Task.Slot}} }}", kValues), "{{ 2 }}");
  EXPECT_EQ(expandTemplate("{{.Task{{.Task.Slot}}}}", kValues), "{{.Task2}}");
  EXPECT_EQ(expandTemplate("}}{{", kValues), "}}{{");
  EXPECT_EQ(expandTemplate("{", kValues), "{");
  EXPECT_EQ(expandTemplate("{{", kValues), "{{");
}

// "{{ ." and 30k field characters overflowed the stack inside std::regex
// (one recursion per character) and ended netd.
TEST(ExpandTemplate, HostileTemplatesComeBackUnchanged) {
  std::string hostile = "{{ ." + std::string(30000, 'A');
  EXPECT_EQ(expandTemplate(hostile, kValues), hostile);
  std::string dots = "{{ ." + std::string(30000, '.');
  EXPECT_EQ(expandTemplate(dots, kValues), dots);
  std::string openings;
  for (int i = 0; i < 30000; i++) openings += "{{ .";
  EXPECT_EQ(expandTemplate(openings, kValues), openings);
  std::string spaces = "{{" + std::string(200000, ' ') + ".Task.Slot" + std::string(200000, ' ') + "}}";
  EXPECT_EQ(expandTemplate(spaces, kValues), "2");
  std::string names = "{{." + std::string(200000, 'a');
  EXPECT_EQ(expandTemplate(names, kValues), names);
}

TEST(ValidStackName, LongNamesAreCheckedWithoutRecursion) {
  EXPECT_TRUE(validStackName("web"));
  EXPECT_TRUE(validStackName("a1_b.c-d"));
  EXPECT_FALSE(validStackName(""));
  EXPECT_FALSE(validStackName("_web"));
  EXPECT_FALSE(validStackName("-web"));
  EXPECT_FALSE(validStackName("../../etc"));
  EXPECT_FALSE(validStackName("a b"));
  EXPECT_TRUE(validStackName(std::string(300000, 'a')));
  EXPECT_FALSE(validStackName(std::string(300000, 'a') + "/"));
}

// Nothing may leave a libuv callback: a timer whose work throws fails that
// work alone, and the loop runs the next timer.
TEST(StartTimer, AThrowingCallbackDoesNotStopTheLoop) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  bool afterRan = false;
  TimerHandle* thrower = startTimer(&loop, std::chrono::milliseconds(0),
                                    [] { throw std::runtime_error("filesystem error: cannot check existence"); });
  TimerHandle* after = startTimer(&loop, std::chrono::milliseconds(1), [&] { afterRan = true; });
  TimerHandle* unknown = startTimer(&loop, std::chrono::milliseconds(0), [] { throw 42; });
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(afterRan);
  cancelTimer(thrower);
  cancelTimer(after);
  cancelTimer(unknown);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

// A timer counts from when it is started, not from the loop's last idea of
// the time: work that kept the loop busy (a long callback, a slow start
// under a sanitizer) must not make a health check's interval or a grace
// period shorter. The loop's clock is left 300 ms stale before the start.
TEST(StartTimer, ItCountsFromWhenItIsStarted) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  uv_update_time(&loop);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point fired{};
  TimerHandle* h = startTimer(&loop, std::chrono::milliseconds(200), [&] { fired = std::chrono::steady_clock::now(); });
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_NE(fired, std::chrono::steady_clock::time_point{});
  EXPECT_GE(fired - started, std::chrono::milliseconds(190));
  cancelTimer(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

// Timers that re-arm themselves from callbacks slower than their period
// (three nodes' heartbeats every 10 ms, each taking 15 under a sanitizer)
// run once each per turn of the loop: the turn ends and the loop reaches its
// I/O. Before, each start moved the loop's clock, so the other timer was due
// again, and one turn ran them by turns for ever (ClusterTest hung in ASan).
TEST(StartTimer, SlowSelfRearmingTimersLetTheTurnEnd) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  struct Beat {
    int fired = 0;
    TimerHandle* h = nullptr;
    std::function<void()> fire;
  };
  Beat beats[2];
  for (auto& b : beats) {
    b.fire = [&loop, &b] {
      cancelTimer(b.h);
      b.fired++;
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
      if (b.fired < 20) b.h = startTimer(&loop, std::chrono::milliseconds(10), b.fire);  // bounded when broken too
    };
    b.h = startTimer(&loop, std::chrono::milliseconds(10), b.fire);
  }
  while (beats[0].fired + beats[1].fired == 0) uv_run(&loop, UV_RUN_ONCE);
  EXPECT_LE(beats[0].fired, 1) << "one turn of the loop ran a timer " << beats[0].fired << " times";
  EXPECT_LE(beats[1].fired, 1) << "one turn of the loop ran a timer " << beats[1].fired << " times";
  for (auto& b : beats) cancelTimer(b.h);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace skiff::netd
