#pragma once
// `skiff stats [OPTIONS] [CONTAINER...]`: docker's live view of replicas
// over netd's GET /v1/stats. Every frame needs two answers (rates and CPU %
// are differences), so the first frame comes after one interval; then one
// per interval until Ctrl-C (SIGINT ends the view with exit 0), or once with
// --no-stream. The rows and cells are pure (skiff/cli/stats.h); this file
// parses flags, fetches, waits and writes. Part of the executable's command
// layer (it needs CLI11).

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "commands.h"

namespace skiff::cli {

// How the view runs. Tests replace the clock and the sleep (no real
// waiting), say whether stdout is a terminal, and bound the frames.
struct StatsOptions {
  std::chrono::milliseconds interval{1000};
  bool terminal = false;
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
  // Waits `d` or until stopped() turns true. Default: sleeps in slices of at
  // most 100 ms, checking stopped() between them.
  std::function<void(std::chrono::milliseconds d)> sleep;
  // True once the user asked to stop (default: a SIGINT arrived since the
  // command began).
  std::function<bool()> stopped;
  // Frames to print before ending as if stopped; 0: no bound (the user's Ctrl-C).
  uint64_t maxFrames = 0;
};

struct StatsArgs {
  std::vector<std::string> containers;
  bool noStream = false;
  bool noTrunc = false;
  std::string format;
};

// Runs the view. Returns the exit code: 0 when done or stopped, 1 when the
// template is wrong or the daemon failed (a named container unknown to it:
// docker's "Error response from daemon: No such container: X").
int runStats(const Daemon& daemon, const StatsArgs& args, const StatsOptions& options);

// Registers `stats` on `app`; it holds the flags, so it must outlive
// app.parse() and the action run after it.
class StatsCommand {
 public:
  StatsCommand(CLI::App& app, Commands& commands, StatsOptions options = {});
  StatsCommand(const StatsCommand&) = delete;
  StatsCommand& operator=(const StatsCommand&) = delete;

 private:
  Commands& commands_;
  StatsOptions options_;
  StatsArgs args_;
};

}  // namespace skiff::cli
