#include "skiff/netd/reconcile.h"

#include <gtest/gtest.h>

namespace skiff::netd {
namespace {

TEST(PlanService, StartsEverySlotOfANewService) {
  Plan p = planService(5, 1, {}, {});
  EXPECT_EQ(p.startSlots, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(p.stopTaskIds.empty());
}

TEST(PlanService, ScaleUpLeavesRunningTasksAlone) {
  std::vector<LiveTask> live = {{"a", 1, 1, false}, {"b", 2, 1, false}};
  Plan p = planService(4, 1, live, {});
  EXPECT_EQ(p.startSlots, (std::vector<uint64_t>{3, 4}));
  EXPECT_TRUE(p.stopTaskIds.empty());
}

TEST(PlanService, ScaleDownStopsHighestSlotsFirst) {
  std::vector<LiveTask> live = {{"a", 1, 1, false}, {"b", 2, 1, false}, {"c", 3, 1, false}, {"d", 4, 1, false}};
  Plan p = planService(2, 1, live, {});
  EXPECT_TRUE(p.startSlots.empty());
  EXPECT_EQ(p.stopTaskIds, (std::vector<std::string>{"d", "c"}));
}

TEST(PlanService, OutdatedSpecReplacesTasks) {
  std::vector<LiveTask> live = {{"a", 1, 1, false}, {"b", 2, 2, false}};
  Plan p = planService(2, 2, live, {});
  EXPECT_EQ(p.startSlots, (std::vector<uint64_t>{1}));
  EXPECT_EQ(p.stopTaskIds, (std::vector<std::string>{"a"}));
}

TEST(PlanService, PendingRestartAndStoppingTasks) {
  // Slot 2 waits on its restart delay; slot 3's task is already stopping.
  std::vector<LiveTask> live = {{"a", 1, 1, false}, {"c", 3, 1, true}};
  Plan p = planService(3, 1, live, {2});
  EXPECT_EQ(p.startSlots, (std::vector<uint64_t>{3}));
  EXPECT_TRUE(p.stopTaskIds.empty());
}

TEST(PlanService, DuplicateSlotKeepsOne) {
  std::vector<LiveTask> live = {{"a", 1, 1, false}, {"b", 1, 1, false}};
  Plan p = planService(1, 1, live, {});
  EXPECT_TRUE(p.startSlots.empty());
  EXPECT_EQ(p.stopTaskIds, (std::vector<std::string>{"b"}));
}

TEST(PlanService, ZeroReplicasStopsAll) {
  std::vector<LiveTask> live = {{"a", 1, 1, false}, {"b", 2, 1, false}};
  Plan p = planService(0, 1, live, {});
  EXPECT_TRUE(p.startSlots.empty());
  EXPECT_EQ(p.stopTaskIds.size(), 2u);
}

TEST(PlanService, DuringARollingUpdateOutdatedTasksKeepTheirSlots) {
  // Slot 1 already runs version 2; slots 2 and 3 are the updater's to replace.
  std::vector<LiveTask> live = {{"a", 1, 2, false}, {"b", 2, 1, false}, {"c", 3, 1, false}, {"d", 4, 1, false}};
  Plan p = planService(3, 2, live, {}, true);
  EXPECT_TRUE(p.startSlots.empty()) << "no slot is doubled behind the updater's back";
  EXPECT_EQ(p.stopTaskIds, (std::vector<std::string>{"d"})) << "scale-down still applies";
  Plan empty = planService(3, 2, {{"a", 1, 2, false}, {"b", 2, 1, false}}, {}, true);
  EXPECT_EQ(empty.startSlots, (std::vector<uint64_t>{3})) << "an empty slot starts on the new spec at once";
}

}  // namespace
}  // namespace skiff::netd
