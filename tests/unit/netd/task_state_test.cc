// Task states travel as text (API, CLI, the cluster protocol): each enum
// value has swarm's name, and a peer's unknown text is no state at all.
#include "skiff/netd/task_state.h"

#include <gtest/gtest.h>

namespace skiff::netd {
namespace {

TEST(TaskState, NamesAreSwarms) {
  EXPECT_STREQ(toString(TaskState::kNew), "New");
  EXPECT_STREQ(toString(TaskState::kPending), "Pending");
  EXPECT_STREQ(toString(TaskState::kAssigned), "Assigned");
  EXPECT_STREQ(toString(TaskState::kPreparing), "Preparing");
  EXPECT_STREQ(toString(TaskState::kStarting), "Starting");
  EXPECT_STREQ(toString(TaskState::kRunning), "Running");
  EXPECT_STREQ(toString(TaskState::kComplete), "Complete");
  EXPECT_STREQ(toString(TaskState::kFailed), "Failed");
  EXPECT_STREQ(toString(TaskState::kShutdown), "Shutdown");
  EXPECT_STREQ(toString(TaskState::kRejected), "Rejected");
  EXPECT_STREQ(toString(TaskState::kOrphaned), "Orphaned");
}

TEST(TaskState, ParsesOnlyExactNames) {
  EXPECT_EQ(parseTaskState("Running"), TaskState::kRunning);
  EXPECT_EQ(parseTaskState("Orphaned"), TaskState::kOrphaned);
  EXPECT_EQ(parseTaskState("running"), std::nullopt);
  EXPECT_EQ(parseTaskState(""), std::nullopt);
  EXPECT_EQ(parseTaskState("Running "), std::nullopt);
}

TEST(TaskState, LiveUntilItEnds) {
  for (auto s : {TaskState::kNew, TaskState::kPending, TaskState::kAssigned, TaskState::kPreparing,
                 TaskState::kStarting, TaskState::kRunning})
    EXPECT_TRUE(isLive(s)) << toString(s);
  for (auto s :
       {TaskState::kComplete, TaskState::kFailed, TaskState::kShutdown, TaskState::kRejected, TaskState::kOrphaned})
    EXPECT_FALSE(isLive(s)) << toString(s);
}

}  // namespace
}  // namespace skiff::netd
