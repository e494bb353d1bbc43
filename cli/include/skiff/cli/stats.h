#pragma once
// `skiff stats`, the pure parts: netd's answer to GET /v1/stats (netd/API.md)
// read into samples, and two samples turned into docker's columns plus the
// mesh's: CPU % = Δ CPU time / Δ wall time of the node that read it x 100
// (100% is one core busy, as docker shows it on a multi-core host), memory
// use / limit and its percent, connections open, connections per second and
// bytes per second through the routing mesh. netd gives only cumulative
// counters; every rate is computed here from two answers. The command that
// fetches, waits and prints is src/stats_command.cc. No I/O, no clock: the
// time of each answer is a parameter.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/cli/template.h"
#include "skiff/cli/views.h"

namespace skiff::cli {

// One replica in one answer.
struct StatsSample {
  std::string id;  // container id, 64 hex
  std::string name, service, stack, nodeId, node;
  bool running = false;
  // Cgroup figures, as the replica's node read them at sampledAtNs (that
  // node's clock); absent when `error` says why.
  std::optional<uint64_t> cpuNs;
  uint64_t memoryUsage = 0, memoryLimit = 0, pids = 0;
  int64_t sampledAtNs = 0;
  std::string error;
  // The mesh, summed over every node's proxy: connections accepted
  // (cumulative), open now, bytes client -> replica and back (cumulative).
  uint64_t connections = 0, active = 0, bytesIn = 0, bytesOut = 0;

  bool hasUsage() const { return error.empty() && sampledAtNs > 0; }
};

// The answer's rows (anything that is not an object is skipped).
std::vector<StatsSample> parseStatsAnswer(const nlohmann::json& answer);

// Δcpu / Δwall x 100 between two readings of one replica; nullopt when the
// readings do not allow it (no CPU accounting, the same reading twice, a
// counter that went back: the replica restarted).
std::optional<double> cpuPercent(const StatsSample& before, const StatsSample& after);

// (after - before) / seconds; nullopt when seconds <= 0 or the counter went
// back (a proxy restarted).
std::optional<double> perSecond(uint64_t before, uint64_t after, double seconds);

// docker's cells: "12.34%", "--" when unknown.
std::string percentCell(std::optional<double> percent);
// "12.5MiB / 50MiB" (binary units, as docker's MEM USAGE / LIMIT).
std::string memUsageCell(uint64_t usage, uint64_t limit);
// "1.2kB / 34kB" (decimal units, as docker's NET I/O).
std::string ioCell(uint64_t in, uint64_t out);

// The template fields of `skiff stats --format` and its default table:
// CONTAINER ID  NAME  SERVICE  NODE  CPU %  MEM USAGE / LIMIT  MEM %  PIDS
// CONNS  REQ/S  NET I/O/S.
const ListView& statsView();

// Follows the replicas across answers: each answer's rows, with rates
// against the previous answer (CPU % against the replica's previous reading
// with a different sample time: a worker's figures change only at its
// heartbeats, so the last CPU % is kept meanwhile).
class StatsTracker {
 public:
  // given: the CONTAINER arguments as typed, in the order of the rows netd
  // answers for them ({{.Container}} shows them; without arguments it is the
  // short id, as docker's). noTrunc: full ids.
  explicit StatsTracker(std::vector<std::string> given = {}, bool noTrunc = false)
      : given_(std::move(given)), noTrunc_(noTrunc) {}

  // The rows for an answer received at `seconds` (any monotonic clock).
  std::vector<Row> observe(const std::vector<StatsSample>& samples, double seconds);

 private:
  struct Seen {
    StatsSample sample;
    std::optional<double> cpu;  // the last CPU % computed
  };
  std::vector<std::string> given_;
  bool noTrunc_;
  std::map<std::string, Seen> previous_;
  double previousAt_ = 0;
  bool havePrevious_ = false;
};

// What a frame prints. On a terminal the view is redrawn in place: the
// first frame clears the screen, each one starts at the top-left corner,
// clears what is left of every line it writes and everything below its last.
// Otherwise a frame is the table as it is, one after the other.
std::string statsFrame(const std::string& table, bool terminal, bool first);

}  // namespace skiff::cli
