// Swarm's restart_policy arithmetic, as a table of cases on a fake clock.

#include "skiff/runtime/restart_policy.h"

#include <gtest/gtest.h>

namespace skiff::runtime {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
const RestartClock::time_point kT0{};  // the fake clock's epoch

// The condition as compose writes it; a word that is not one is refused
// where a spec is read (compose, stack JSON), so no policy carries it.
RestartPolicy policy(const char* condition, double delay = 5, uint64_t maxAttempts = 0, double window = 0) {
  return RestartPolicy{parseKind<RestartCondition>(condition).value(), delay, maxAttempts, window};
}

struct Case {
  const char* name;
  RestartPolicy policy;
  int exitCode;
  bool stoppedByUser;
  std::vector<int> restartsAtSeconds;  // earlier restarts, relative to kT0
  int exitedAtSeconds;
  bool restart;
  int afterMillis;     // the delay decided
  int64_t atMillis;    // when the replacement starts, relative to kT0 (exit + delay)
  const char* reason;  // exactly as logs and `service ps` show it
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class RestartPolicyTable : public ::testing::TestWithParam<Case> {};

TEST_P(RestartPolicyTable, Decides) {
  const Case& c = GetParam();
  std::vector<RestartClock::time_point> history;
  for (int s : c.restartsAtSeconds) history.push_back(kT0 + seconds(s));
  TaskExit exit{c.exitCode, c.stoppedByUser, kT0 + seconds(c.exitedAtSeconds)};
  auto d = decideRestart(c.policy, exit, history);
  EXPECT_EQ(d.restart, c.restart) << d.reason;
  EXPECT_EQ(d.reason, c.reason);
  if (c.restart) {
    EXPECT_EQ(d.after.count(), c.afterMillis);
    EXPECT_EQ(std::chrono::duration_cast<milliseconds>(d.at - kT0).count(), c.atMillis);
  }
}

// The table's expected times are written out: exit at 100 s plus the 5 s
// default delay is 105000 ms.
INSTANTIATE_TEST_SUITE_P(
    Swarm, RestartPolicyTable,
    ::testing::Values(
        Case{"none_failure", policy("none"), 1, false, {}, 100, false, 0, 0, "restart condition is none"},
        Case{"none_success", policy("none"), 0, false, {}, 100, false, 0, 0, "restart condition is none"},
        Case{"onfailure_success",
             policy("on-failure"),
             0,
             false,
             {},
             100,
             false,
             0,
             0,
             "exited with code 0 and restart condition is on-failure"},
        Case{"onfailure_exit1", policy("on-failure"), 1, false, {}, 100, true, 5000, 105000, "restart after 5000ms"},
        Case{
            "onfailure_sigkill", policy("on-failure"), 137, false, {}, 100, true, 5000, 105000, "restart after 5000ms"},
        Case{"any_success", policy("any"), 0, false, {}, 100, true, 5000, 105000, "restart after 5000ms"},
        Case{"any_stopped_by_user", policy("any"), 143, true, {}, 100, false, 0, 0, "stopped on request"},
        Case{"onfailure_stopped_by_user", policy("on-failure"), 137, true, {}, 100, false, 0, 0, "stopped on request"},
        Case{"delay_fraction", policy("any", 1.5), 0, false, {}, 100, true, 1500, 101500, "restart after 1500ms"},
        Case{"delay_zero", policy("any", 0), 0, false, {}, 100, true, 0, 100000, "restart after 0ms"},
        Case{"unlimited_attempts",
             policy("any", 5, 0),
             1,
             false,
             {1, 2, 3, 4, 5, 6, 7, 8, 9},
             100,
             true,
             5000,
             105000,
             "restart after 5000ms"},
        Case{"max3_used2",
             policy("on-failure", 5, 3),
             1,
             false,
             {10, 20},
             100,
             true,
             5000,
             105000,
             "restart after 5000ms"},
        Case{"max3_used3_no_window",
             policy("on-failure", 5, 3),
             1,
             false,
             {10, 20, 30},
             1000,
             false,
             0,
             0,
             "reached max_attempts (3)"},
        Case{"max3_window60_old_ones_forgotten",
             policy("on-failure", 5, 3, 60),
             1,
             false,
             {10, 20, 30},
             100,
             true,
             5000,
             105000,
             "restart after 5000ms"},
        Case{"max3_window60_all_recent",
             policy("on-failure", 5, 3, 60),
             1,
             false,
             {50, 60, 70},
             100,
             false,
             0,
             0,
             "reached max_attempts (3)"},
        Case{"max3_window60_edge_inclusive",
             policy("on-failure", 5, 3, 60),
             1,
             false,
             {40, 60, 70},
             100,
             false,
             0,
             0,
             "reached max_attempts (3)"},
        Case{"max3_window60_edge_just_outside",
             policy("on-failure", 5, 3, 60),
             1,
             false,
             {39, 60, 70},
             100,
             true,
             5000,
             105000,
             "restart after 5000ms"},
        Case{"max1_first_restart", policy("any", 5, 1), 0, false, {}, 5, true, 5000, 10000, "restart after 5000ms"}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace skiff::runtime
