// The rolling updater as a pure function, driven by a simulated service:
// slots hold an old and/or a new task; the test plays the orchestrator
// (start, stop, ready) and the clock.
#include "skiff/netd/update.h"

#include <gtest/gtest.h>

#include <map>

namespace skiff::netd {
namespace {

using namespace std::chrono_literals;
using runtime::FailureAction;
using runtime::UpdateOrder;

struct Sim {
  struct Slot {
    std::string oldTask;  // "" once gone
    bool oldStopping = false;
    std::string newTask;
    bool newReady = false;
    UpdateClock::time_point readySince{};
  };
  std::map<uint64_t, Slot> slots;
  UpdateClock::time_point now{};
  UpdateRun run;
  std::vector<std::string> log;  // "start 3", "stop old-2", in order
  int nextNew = 0;

  Sim(uint64_t n, runtime::UpdateConfig c) {
    for (uint64_t i = 1; i <= n; i++) slots[i].oldTask = "old-" + std::to_string(i);
    run = beginUpdate(c, n, now);
  }
  std::vector<UpdateSlot> view() const {
    std::vector<UpdateSlot> out;
    for (const auto& [n, s] : slots) {
      UpdateSlot u;
      u.slot = n;
      if (!s.oldTask.empty() && !s.oldStopping) u.oldTasks.push_back(s.oldTask);
      u.oldStopping = !s.oldTask.empty() && s.oldStopping;
      u.newTask = s.newTask;
      u.newReady = s.newReady;
      u.newReadySince = s.readySince;
      out.push_back(u);
    }
    return out;
  }
  UpdateStep step() {
    UpdateStep st = stepUpdate(run, view(), now);  // logged stops first, as carried out
    for (const auto& id : st.stopTasks) {
      log.push_back("stop " + id);
      for (auto& [n, s] : slots) {
        if (s.oldTask == id) s.oldStopping = true;
      }
    }
    for (auto slot : st.startSlots) {
      log.push_back("start " + std::to_string(slot));
      slots[slot].newTask = "new-" + std::to_string(slot) + "-" + std::to_string(nextNew++);
    }
    return st;
  }
  // The orchestrator's events.
  void ready(uint64_t slot) {
    slots[slot].newReady = true;
    slots[slot].readySince = now;
  }
  void oldExited(uint64_t slot) {
    slots[slot].oldTask.clear();
    slots[slot].oldStopping = false;
  }
  // Everything asked so far happens at once: stopped old tasks exit, started
  // new ones become ready.
  void settle() {
    for (auto& [n, s] : slots) {
      if (s.oldStopping) oldExited(n);
      if (!s.newTask.empty() && !s.newReady) ready(n);
    }
  }
  size_t running() const {
    size_t r = 0;
    for (const auto& [n, s] : slots) r += (!s.oldTask.empty() && !s.oldStopping) + s.newReady;
    return r;
  }
};

runtime::UpdateConfig config(uint64_t parallelism, double delay, UpdateOrder order, double monitor = 0) {
  runtime::UpdateConfig c;
  c.parallelism = parallelism;
  c.delaySeconds = delay;
  c.order = order;
  c.monitorSeconds = monitor;
  return c;
}

TEST(RollingUpdate, StopFirstParallelismOneMovesOneSlotAtATime) {
  Sim sim(3, config(1, 0, UpdateOrder::kStopFirst));
  sim.step();
  EXPECT_EQ(sim.log, (std::vector<std::string>{"stop old-1"}));
  sim.step();  // old-1 still drains: nothing new, nothing started
  EXPECT_EQ(sim.log.size(), 1u);
  sim.oldExited(1);
  sim.step();
  EXPECT_EQ(sim.log.back(), "start 1");
  EXPECT_EQ(sim.running(), 2u);  // stop-first: one short while slot 1 starts
  sim.step();
  EXPECT_EQ(sim.log.size(), 2u) << "slot 2 waits until slot 1's new task is ready";
  sim.ready(1);
  sim.step();
  EXPECT_EQ(sim.log.back(), "stop old-2");
  for (int i = 0; i < 10 && sim.run.outcome == UpdateOutcome::kUpdating; i++) {
    sim.settle();
    sim.step();
  }
  EXPECT_EQ(sim.run.outcome, UpdateOutcome::kCompleted);
  EXPECT_EQ(sim.log,
            (std::vector<std::string>{"stop old-1", "start 1", "stop old-2", "start 2", "stop old-3", "start 3"}));
}

TEST(RollingUpdate, StartFirstNeverShrinksTheService) {
  Sim sim(4, config(2, 0, UpdateOrder::kStartFirst));
  sim.step();
  EXPECT_EQ(sim.log, (std::vector<std::string>{"start 1", "start 2"}));
  EXPECT_EQ(sim.running(), 4u);
  sim.step();
  EXPECT_EQ(sim.log.size(), 2u) << "old tasks stay until their replacements are ready";
  sim.ready(1);
  sim.step();
  EXPECT_EQ(sim.log.back(), "stop old-1");
  EXPECT_EQ(sim.running(), 4u);
  sim.step();
  EXPECT_EQ(sim.log.size(), 3u) << "the batch of 2 ends only when slot 2 is done too";
  sim.ready(2);
  sim.step();
  EXPECT_EQ(sim.log,
            (std::vector<std::string>{"start 1", "start 2", "stop old-1", "stop old-2", "start 3", "start 4"}));
  for (int i = 0; i < 10 && sim.run.outcome == UpdateOutcome::kUpdating; i++) {
    EXPECT_GE(sim.running(), 4u);
    sim.settle();
    sim.step();
  }
  EXPECT_EQ(sim.run.outcome, UpdateOutcome::kCompleted);
}

TEST(RollingUpdate, DelayHoldsTheNextBatchAndSaysWhenToWake) {
  Sim sim(2, config(1, 2.0, UpdateOrder::kStartFirst));
  sim.step();
  sim.ready(1);
  auto st = sim.step();
  EXPECT_EQ(sim.log, (std::vector<std::string>{"start 1", "stop old-1"}));
  ASSERT_TRUE(st.wakeAt);
  EXPECT_EQ(*st.wakeAt, sim.now + 2s);
  sim.now += 1s;
  sim.step();
  EXPECT_EQ(sim.log.size(), 2u) << "1 s into a 2 s delay";
  sim.now += 1s;
  sim.step();
  EXPECT_EQ(sim.log.back(), "start 2");
}

TEST(RollingUpdate, ParallelismZeroUpdatesEverySlotAtOnce) {
  Sim sim(5, config(0, 0, UpdateOrder::kStartFirst));
  sim.step();
  EXPECT_EQ(sim.log.size(), 5u);
}

TEST(RollingUpdate, CompletesOnlyAfterTheLastSlotWasMonitored) {
  Sim sim(1, config(1, 0, UpdateOrder::kStartFirst, 5.0));
  sim.step();
  sim.now += 1s;
  sim.ready(1);
  auto st = sim.step();
  EXPECT_EQ(st.outcome, UpdateOutcome::kUpdating);
  ASSERT_TRUE(st.wakeAt);
  EXPECT_EQ(*st.wakeAt, sim.now + 5s);
  sim.settle();
  sim.now += 4s;
  EXPECT_EQ(sim.step().outcome, UpdateOutcome::kUpdating);
  sim.now += 1s;
  EXPECT_EQ(sim.step().outcome, UpdateOutcome::kCompleted);
}

TEST(RollingUpdate, AFailureWithPauseStopsTheUpdateAndSaysWhichTask) {
  auto c = config(1, 0, UpdateOrder::kStartFirst);
  c.failureAction = FailureAction::kPause;
  Sim sim(3, c);
  sim.step();
  std::string failed = sim.slots[1].newTask;
  noteFailure(sim.run, failed);
  auto st = sim.step();
  EXPECT_EQ(st.outcome, UpdateOutcome::kPaused);
  EXPECT_EQ(st.message, "update paused due to failure or early termination of task " + failed);
  EXPECT_TRUE(st.startSlots.empty());
  EXPECT_TRUE(st.stopTasks.empty());
  EXPECT_EQ(sim.slots[1].oldTask, "old-1") << "start-first: the old replica still serves";
  EXPECT_EQ(sim.step().outcome, UpdateOutcome::kPaused) << "stays paused";
}

TEST(RollingUpdate, AFailureWithRollbackAsksForTheRollback) {
  auto c = config(1, 0, UpdateOrder::kStopFirst);
  c.failureAction = FailureAction::kRollback;
  Sim sim(2, c);
  sim.step();
  sim.settle();
  sim.step();
  noteFailure(sim.run, sim.slots[1].newTask);
  auto st = sim.step();
  EXPECT_EQ(st.outcome, UpdateOutcome::kRollback);
  EXPECT_NE(st.message.find("update rolled back due to failure or early termination of task new-1"), std::string::npos);
}

TEST(RollingUpdate, FailuresBelowTheRatioAndContinueGoOn) {
  auto c = config(1, 0, UpdateOrder::kStartFirst);
  c.maxFailureRatio = 0.5;
  Sim sim(4, c);
  sim.step();
  noteFailure(sim.run, "x");
  noteFailure(sim.run, "x");                                // counted once
  EXPECT_EQ(sim.step().outcome, UpdateOutcome::kUpdating);  // 1/4 <= 0.5
  noteFailure(sim.run, "y");
  EXPECT_EQ(sim.step().outcome, UpdateOutcome::kUpdating);  // 2/4 <= 0.5
  noteFailure(sim.run, "z");
  EXPECT_EQ(sim.step().outcome, UpdateOutcome::kPaused);  // 3/4 > 0.5: pause is the default

  auto cont = config(1, 0, UpdateOrder::kStartFirst);
  cont.failureAction = FailureAction::kContinue;
  Sim goOn(2, cont);
  goOn.step();
  noteFailure(goOn.run, "a");
  noteFailure(goOn.run, "b");
  EXPECT_EQ(goOn.step().outcome, UpdateOutcome::kUpdating);
}

TEST(RollingUpdate, ARestartPendingSlotIsNotStartedTwice) {
  Sim sim(1, config(1, 0, UpdateOrder::kStopFirst));
  sim.step();
  sim.oldExited(1);
  auto v = sim.view();
  v[0].restartPending = true;
  auto st = stepUpdate(sim.run, v, sim.now);
  EXPECT_TRUE(st.startSlots.empty());
  st = sim.step();
  EXPECT_EQ(st.startSlots, (std::vector<uint64_t>{1}));
  sim.slots[1].newTask.clear();  // a start the caller did not carry out...
  EXPECT_TRUE(sim.step().startSlots.empty()) << "...is not asked for again: the restart policy owns the slot";
}

TEST(RollingUpdate, SlotsAlreadyOnTheNewSpecAreDoneWithoutATurn) {
  Sim sim(3, config(1, 0, UpdateOrder::kStopFirst));
  // Slot 2 crashed before the update reached it and came back on the new spec.
  sim.slots[2].oldTask.clear();
  sim.slots[2].newTask = "new-2";
  sim.ready(2);
  for (int i = 0; i < 10 && sim.run.outcome == UpdateOutcome::kUpdating; i++) {
    sim.step();
    sim.settle();
  }
  EXPECT_EQ(sim.run.outcome, UpdateOutcome::kCompleted);
  EXPECT_EQ(sim.log, (std::vector<std::string>{"stop old-1", "start 1", "stop old-3", "start 3"}));
}

TEST(RollingUpdate, ScaledAwaySlotsAreNotWaitedFor) {
  Sim sim(2, config(1, 0, UpdateOrder::kStopFirst));
  sim.step();
  EXPECT_EQ(sim.log, (std::vector<std::string>{"stop old-1"}));
  sim.slots.erase(1);  // scaled down to 1 while slot 1 drained
  sim.step();
  EXPECT_EQ(sim.log.back(), "stop old-2");
}

TEST(RollingUpdate, StateWordsAreDockers) {
  EXPECT_EQ(updateStateWord(UpdateOutcome::kUpdating, false), "updating");
  EXPECT_EQ(updateStateWord(UpdateOutcome::kCompleted, false), "completed");
  EXPECT_EQ(updateStateWord(UpdateOutcome::kPaused, false), "paused");
  EXPECT_EQ(updateStateWord(UpdateOutcome::kUpdating, true), "rollback_started");
  EXPECT_EQ(updateStateWord(UpdateOutcome::kCompleted, true), "rollback_completed");
  EXPECT_EQ(updateStateWord(UpdateOutcome::kPaused, true), "rollback_paused");
}

}  // namespace
}  // namespace skiff::netd
