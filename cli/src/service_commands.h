#pragma once
// `skiff service update` and `skiff service rollback`: docker's flags over
// netd's POST /v1/services/<name>/update and /rollback, then docker's
// progress view until the service converges, pauses or rolls back (unless
// --detach). The body and the view are pure (skiff/cli/service_update.h);
// this file parses flags, polls and writes. Part of the executable's command
// layer (it needs CLI11).

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "commands.h"
#include "skiff/cli/service_update.h"

namespace skiff::cli {

// How the progress view polls: every `interval`, at most `limit` in all.
// Tests replace the clock and the sleep (no real waiting) and say whether
// stdout is a terminal.
struct FollowOptions {
  std::chrono::milliseconds interval{500};
  std::chrono::milliseconds limit{std::chrono::minutes(10)};
  bool terminal = false;
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
  std::function<void(std::chrono::milliseconds)> sleep;  // default: std::this_thread::sleep_for
};

// Polls GET /v1/services/<service> and GET /v1/tasks?service=<service> and
// prints the progress (nothing when quiet) until the update ends. Returns
// the exit code: 0 converged, 1 paused, rolled back, timed out or the daemon
// failed (the reason on stderr).
int followUpdate(const Daemon& daemon, const std::string& service, bool rollbackCommand, bool quiet,
                 const FollowOptions& options);

// Registers `update` and `rollback` on the `service` command on
// construction; it holds their flags, so it must outlive app.parse() and the
// action run after it.
class ServiceUpdateCommands {
 public:
  ServiceUpdateCommands(CLI::App& service, Commands& commands, FollowOptions follow = {});
  ServiceUpdateCommands(const ServiceUpdateCommands&) = delete;
  ServiceUpdateCommands& operator=(const ServiceUpdateCommands&) = delete;

 private:
  int update() const;
  int rollback() const;
  // Prints the answer (the name as given, docker's warnings) and follows.
  int finish(const nlohmann::json& answer, bool rollbackCommand) const;
  ServiceUpdateArgs args() const;

  Commands& commands_;
  FollowOptions follow_;

  std::string service_;
  bool detach_ = false;
  bool quiet_ = false;
  std::string image_, replicas_, parallelism_, delay_, order_, failureAction_, monitor_, maxFailureRatio_;
  std::vector<std::string> envAdd_, envRm_;
  bool force_ = false;
  bool rollback_ = false;
  // The options whose presence matters (a flag given as "" is still given).
  CLI::Option* imageOpt_ = nullptr;
  CLI::Option* replicasOpt_ = nullptr;
  CLI::Option* parallelismOpt_ = nullptr;
  CLI::Option* delayOpt_ = nullptr;
  CLI::Option* orderOpt_ = nullptr;
  CLI::Option* failureActionOpt_ = nullptr;
  CLI::Option* monitorOpt_ = nullptr;
  CLI::Option* maxFailureRatioOpt_ = nullptr;
};

}  // namespace skiff::cli
