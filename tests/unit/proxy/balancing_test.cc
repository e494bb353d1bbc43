// Pure balancing logic: picker, drain and ejection gates, passive health, UDP
// flow table (fake clock), flow bound, which UDP errors blame a backend, the
// connect-duration histogram's buckets.

#include "skiff/proxy/balancing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "skiff/proxy/proxy.h"

namespace skiff::proxy {
namespace {

using std::chrono::milliseconds;

TEST(RoundRobin, TenPicksOverFiveLandTwoByTwo) {
  RoundRobin rr;
  std::vector<int> hits(5);
  for (int i = 0; i < 10; ++i) {
    auto idx = rr.pick(5, [](size_t) { return true; });
    ASSERT_TRUE(idx);
    ++hits[*idx];
  }
  EXPECT_EQ(hits, (std::vector<int>{2, 2, 2, 2, 2}));
}

TEST(RoundRobin, SkipsIneligibleWithoutGivingTheNextOneTwoTurns) {
  RoundRobin rr;
  // Backend 1 is ejected: order must be 0 2 3 0 2 3, never 2 twice in a row.
  std::vector<size_t> order;
  for (int i = 0; i < 6; ++i) order.push_back(*rr.pick(4, [](size_t b) { return b != 1; }));
  EXPECT_EQ(order, (std::vector<size_t>{0, 2, 3, 0, 2, 3}));
}

TEST(RoundRobin, ASharedCounterIsOneRotationWhoeverTakesTheTurn) {
  // The socket load balancer's programs advance the counter by one per
  // connect; the proxy's picks continue from where they left it.
  uint64_t counter = 0;
  RoundRobin rr;
  EXPECT_EQ(*rr.pick(3, [](size_t) { return true; }), 0u);
  rr.share(&counter);
  std::vector<size_t> order;
  order.push_back(*rr.pick(3, [](size_t) { return true; }));  // 0: the shared counter starts at 0
  std::atomic_ref<uint64_t>(counter).fetch_add(1);            // the kernel gives 1 away
  order.push_back(*rr.pick(3, [](size_t) { return true; }));
  order.push_back(*rr.pick(3, [](size_t) { return true; }));
  EXPECT_EQ(order, (std::vector<size_t>{0, 2, 0}));
  EXPECT_EQ(counter, 4u);
  EXPECT_EQ(rr.position(), 4u);
  rr.share(nullptr);  // back to its own, where it left it
  EXPECT_EQ(*rr.pick(3, [](size_t) { return true; }), 1u);
}

TEST(RoundRobin, NoneEligibleOrEmpty) {
  RoundRobin rr;
  EXPECT_FALSE(rr.pick(0, [](size_t) { return true; }));
  EXPECT_FALSE(rr.pick(3, [](size_t) { return false; }));
}

TEST(RoundRobin, StrictAcrossThreads) {
  RoundRobin rr;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<int>> hits(2, std::vector<int>(5));
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) ++hits[t][*rr.pick(5, [](size_t) { return true; })];
    });
  }
  for (auto& t : threads) t.join();
  for (int b = 0; b < 5; ++b) EXPECT_EQ(hits[0][b] + hits[1][b], 2 * kPerThread / 5) << "backend " << b;
}

// Drain and ejection as the picker sees them (BackendGate + pickBackend).
struct Gates {
  std::vector<BackendGate> g;
  explicit Gates(size_t n) : g(n) {}
  std::optional<size_t> pick(RoundRobin& rr, int64_t now, const std::vector<size_t>& tried = {}) {
    return pickBackend(
        rr, g.size(), [&](size_t i) -> const BackendGate& { return g[i]; },
        [&](size_t i) { return std::find(tried.begin(), tried.end(), i) != tried.end(); }, now);
  }
};

TEST(DrainState, ADrainingBackendGetsNoNewConnectionsAndTheOthersKeepTheirTurns) {
  RoundRobin rr;
  Gates gates(3);
  gates.g[0].draining = true;
  std::vector<size_t> order;
  for (int i = 0; i < 6; ++i) order.push_back(*gates.pick(rr, 0));
  EXPECT_EQ(order, (std::vector<size_t>{1, 2, 1, 2, 1, 2}));
}

TEST(DrainState, EveryBackendDrainingMeansNoPick) {
  RoundRobin rr;
  Gates gates(2);
  gates.g[0].draining = true;
  gates.g[1].draining = true;
  EXPECT_FALSE(gates.pick(rr, 0));
}

TEST(DrainState, EjectedUntilItsTimeThenBack) {
  RoundRobin rr;
  Gates gates(2);
  gates.g[1].ejectedUntilNs = 1000;
  EXPECT_EQ(*gates.pick(rr, 500), 0u);
  EXPECT_EQ(*gates.pick(rr, 500), 0u);
  std::vector<size_t> after;
  for (int i = 0; i < 4; ++i) after.push_back(*gates.pick(rr, 1000));
  EXPECT_EQ(std::count(after.begin(), after.end(), 1u), 2) << "re-admitted at its time";
}

TEST(DrainState, AllLiveOnesEjectedStillPicksOneButNeverADrainingOne) {
  RoundRobin rr;
  Gates gates(3);
  gates.g[0].draining = true;
  gates.g[1].ejectedUntilNs = 1000;
  gates.g[2].ejectedUntilNs = 1000;
  std::vector<size_t> order;
  for (int i = 0; i < 4; ++i) order.push_back(*gates.pick(rr, 0));
  EXPECT_EQ(order, (std::vector<size_t>{1, 2, 1, 2}));
}

TEST(DrainState, ARetryNeverPicksABackendTheConnectionAlreadyTried) {
  RoundRobin rr;
  Gates gates(3);
  EXPECT_EQ(*gates.pick(rr, 0, {0}), 1u);
  EXPECT_EQ(*gates.pick(rr, 0, {2, 0}), 1u);
  EXPECT_FALSE(gates.pick(rr, 0, {0, 1, 2}));
}

TEST(HealthState, EjectsOnFailureAndBacksOffExponentially) {
  HealthState h(HealthPolicy{1, milliseconds(1000), milliseconds(4000)});
  Clock::time_point t0{};
  t0 += std::chrono::hours(1);
  EXPECT_FALSE(h.ejected(t0));
  h.onFailure(t0);
  EXPECT_TRUE(h.ejected(t0 + milliseconds(999)));
  EXPECT_FALSE(h.ejected(t0 + milliseconds(1000)));  // re-admitted after the back-off
  h.onFailure(t0 + milliseconds(1000));              // failed again: 2s
  EXPECT_TRUE(h.ejected(t0 + milliseconds(2999)));
  EXPECT_FALSE(h.ejected(t0 + milliseconds(3000)));
  h.onFailure(t0 + milliseconds(3000));  // 4s (cap)
  h.onFailure(t0 + milliseconds(3000));  // still 4s: capped
  EXPECT_EQ(h.ejectedUntil(), t0 + milliseconds(7000));
  EXPECT_EQ(h.ejections(), 4u);
  h.onSuccess();
  EXPECT_FALSE(h.ejected(t0 + milliseconds(3001)));
  EXPECT_EQ(h.consecutiveFailures(), 0);
  h.onFailure(t0 + milliseconds(10000));  // back to the base back-off after a success
  EXPECT_EQ(h.ejectedUntil(), t0 + milliseconds(11000));
}

TEST(HealthState, ThresholdDelaysEjection) {
  HealthState h(HealthPolicy{3, milliseconds(500), milliseconds(5000)});
  Clock::time_point t0{};
  h.onFailure(t0);
  h.onFailure(t0);
  EXPECT_FALSE(h.ejected(t0));
  h.onFailure(t0);
  EXPECT_TRUE(h.ejected(t0 + milliseconds(499)));
}

TEST(FlowTable, AffinityUntilIdleThenExpiry) {
  FlowTable<std::string, int> table(milliseconds(100));
  Clock::time_point t{};
  table.insert("a", 1, t);
  table.insert("b", 2, t + milliseconds(50));
  ASSERT_NE(table.find("a", t + milliseconds(90)), nullptr);  // touched at 90
  EXPECT_EQ(*table.find("a", t + milliseconds(90)), 1);
  auto expired = table.expire(t + milliseconds(150));  // b idle 100ms, a idle 60ms
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, "b");
  EXPECT_EQ(expired[0].second, 2);
  EXPECT_EQ(table.find("b", t + milliseconds(150)), nullptr);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_TRUE(table.expire(t + milliseconds(189)).empty());
  EXPECT_EQ(table.expire(t + milliseconds(190)).size(), 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST(FlowTable, EraseAndClearAndForEach) {
  FlowTable<std::string, int> table(milliseconds(10));
  Clock::time_point t{};
  table.insert("x", 1, t);
  table.insert("y", 2, t);
  table.insert("x", 3, t);  // replaces
  std::map<std::string, int> seen;
  table.forEach([&](const std::string& k, int v) { seen[k] = v; });
  EXPECT_EQ(seen, (std::map<std::string, int>{{"x", 3}, {"y", 2}}));
  EXPECT_TRUE(table.erase("y"));
  EXPECT_FALSE(table.erase("y"));
  auto all = table.clear();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].second, 3);
  EXPECT_TRUE(table.expire(t + milliseconds(1000)).empty());
}

TEST(FlowLimit, AdmitsExactlyTheBoundAcrossThreadsAndAgainAfterReleases) {
  FlowLimit limit(1000);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 600; ++i) {
        if (limit.tryAcquire()) admitted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 1000);
  EXPECT_EQ(limit.open(), 1000u);
  EXPECT_FALSE(limit.tryAcquire());
  limit.release();
  EXPECT_TRUE(limit.tryAcquire());
  EXPECT_FALSE(limit.tryAcquire());
}

TEST(BlamesBackend, OnlyUnreachableAndRefusedSayTheBackendIsBad) {
  for (int err : {ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN}) EXPECT_TRUE(blamesBackend(err)) << err;
  for (int err : {EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL, EAGAIN, EADDRINUSE, EPERM}) {
    EXPECT_FALSE(blamesBackend(err)) << err;
  }
}

// The connect-duration histogram: a bound is inclusive, 100 us and below is
// the first bucket, over 2 s the last (unbounded) one.
TEST(ConnectHistogram, EachDurationLandsInTheFirstBucketItDoesNotExceed) {
  const auto& bounds = Proxy::kConnectBucketBoundsNs;
  EXPECT_EQ(bounds.front(), 100'000);
  EXPECT_EQ(bounds.back(), 2'000'000'000);
  EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
  EXPECT_EQ(bucketOf(bounds, 0), 0u);
  EXPECT_EQ(bucketOf(bounds, 100'000), 0u);
  EXPECT_EQ(bucketOf(bounds, 100'001), 1u);
  EXPECT_EQ(bucketOf(bounds, 1'000'000), 3u);  // 1 ms
  EXPECT_EQ(bucketOf(bounds, 2'000'000'000), bounds.size() - 1);
  EXPECT_EQ(bucketOf(bounds, 2'000'000'001), bounds.size());
  EXPECT_EQ(bucketOf(bounds, INT64_MAX), bounds.size());
}

}  // namespace
}  // namespace skiff::proxy
