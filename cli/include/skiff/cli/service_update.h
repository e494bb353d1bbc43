#pragma once
// `skiff service update` and `service rollback`, the pure parts: the flags as
// typed turned into netd's request body (netd/API.md: POST
// /v1/services/<name>/update), and docker's progress view computed from two
// JSON documents, the service (GET /v1/services/<name>: Version.Index,
// Spec.Mode, UpdateStatus) and its tasks (GET /v1/tasks?service=<name>:
// slot, specVersion, ready, currentState, ...). The command that polls and
// prints lives in src/service_commands.cc and only moves these around.
// Single-threaded use; no I/O, no clock.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

// The flags of `service update`, as typed: nullopt or empty when not given,
// so the body names only what the user asked to change.
struct ServiceUpdateArgs {
  std::optional<std::string> image;
  std::vector<std::string> envAdd;  // KEY=VALUE
  std::vector<std::string> envRm;   // KEY
  std::optional<std::string> replicas;
  bool force = false;
  std::optional<std::string> parallelism;      // --update-parallelism
  std::optional<std::string> delay;            // --update-delay
  std::optional<std::string> order;            // --update-order
  std::optional<std::string> failureAction;    // --update-failure-action
  std::optional<std::string> monitor;          // --update-monitor
  std::optional<std::string> maxFailureRatio;  // --update-max-failure-ratio
  bool rollback = false;                       // --rollback
};

// A duration flag: Go's time.ParseDuration as docker reads it ("2s", "1m30s",
// "500ms", "0"), not negative; seconds. The error names flag and value as
// docker does: invalid argument "5" for "--update-delay" flag: ...
[[nodiscard]] Result<double> parseDurationFlag(std::string_view flag, std::string_view value);

// The body of POST /v1/services/<name>/update: {"image", "envAdd", "envRm",
// "replicas", "force", "updateConfig": {"parallelism", "delay", "order",
// "failureAction", "monitor", "maxFailureRatio"}}, each only when given
// (durations in seconds). With --rollback no other flag may be given
// (docker's "other flags may not be combined with --rollback"); the body is
// then unused (the command posts to /rollback). Errors name the flag and value.
[[nodiscard]] Result<nlohmann::json> serviceUpdateBody(const ServiceUpdateArgs& args);

// One look at the service and its tasks, as docker's progress view shows it.
struct ProgressFrame {
  // Printed once, above the bars: "rollback: <why>" when an update turns
  // into a rollback.
  std::vector<std::string> notes;
  // Redrawn at each look: "overall progress: 2 out of 5 tasks", then one line
  // per slot ("1/5: running   [====...>]"), or per node in global mode.
  std::vector<std::string> bars;
  enum class End { kNone, kConverged, kFailed } end = End::kNone;
  // kConverged: "verify: Service converged" (stdout, after the bars).
  // kFailed: docker's error ("service update paused: <message>"), for stderr.
  std::string finalLine;
};

// Follows one update (or rollback) across looks: it remembers whether a
// rollback began while following, which turns a rollback's completion into
// the update's failure.
//
// A slot is done when a task of that slot with specVersion == Version.Index
// is Running and ready (in rotation). The update has converged when every
// slot is done and UpdateStatus is absent (nothing rolled), "completed" or
// "rollback_completed"; "updating" or "rollback_started" keep it going (the
// daemon still monitors), "paused" and "rollback_paused" end it with an error.
class UpdateProgress {
 public:
  // rollbackCommand: `service rollback` / `update --rollback`, whose
  // rollback_completed is the success.
  explicit UpdateProgress(bool rollbackCommand) : rollbackCommand_(rollbackCommand) {}

  ProgressFrame observe(const nlohmann::json& service, const nlohmann::json& tasks);

 private:
  bool rollbackCommand_;
  bool rollbackSeen_ = false;
  uint64_t looks_ = 0;
};

// Turns frames into the bytes to write. On a terminal the bars are redrawn
// in place (cursor up, clear to the end of the screen); otherwise only the
// lines that changed since the last frame are written, so a log of the
// update reads as one line per change.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool terminal) : terminal_(terminal) {}

  std::string render(const ProgressFrame& frame);

 private:
  bool terminal_;
  std::vector<std::string> shown_;
};

// docker's progress bar of a task state out of 9 (new .. running), 50 wide:
// "[==================================================>]" for running.
std::string progressBar(uint64_t current, uint64_t total);

}  // namespace skiff::cli
