#pragma once
// Containers outside stacks, as docker's CLI has them: `run`, `ps`, `start`,
// `stop`, `restart`, `rm`, `logs [-f]` — top level and under `container`.
// netd runs a lone container as a one-replica service pinned to its node
// (netd/API.md, POST /v1/containers); stop and restart wait until it has
// stopped, as docker's do. Part of the executable's command layer (CLI11);
// the flags -> request body part is pure (skiff/cli/run.h).

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "commands.h"
#include "skiff/cli/run.h"

namespace skiff::cli {

class InterruptFlag;

// How waiting polls: every `interval`; tests replace the sleep.
struct PollOptions {
  std::chrono::milliseconds interval{200};
  std::function<void(std::chrono::milliseconds)> sleep;  // default: std::this_thread::sleep_for
};

class ContainerCommands {
 public:
  // Registers the commands on app (docker's top-level shortcuts) and on container.
  ContainerCommands(CLI::App& app, CLI::App& container, Commands& commands, PollOptions poll = {});
  ContainerCommands(const ContainerCommands&) = delete;
  // How `run` pulls an image this node lacks (the executable's registry
  // commands); unset, it does not.
  void setPull(std::function<bool(const Daemon&, const std::string& image)> pull) { pull_ = std::move(pull); }
  ContainerCommands& operator=(const ContainerCommands&) = delete;

 private:
  void addRun(CLI::App& parent);
  void addLifecycle(CLI::App& parent);
  void addLogs(CLI::App& parent);
  int run() const;
  int stop(bool thenStart) const;
  int logs() const;
  // Prints the container's log until it no longer runs (for as long as it
  // does: docker's -f ends with the container or the user's ^C), then its
  // exit code into *exitCode (when not null). False when the daemon failed.
  // With `interrupt` (an attached run), the first signal stops the container
  // and the log goes on to its end; a second returns at once (code 130).
  bool follow(const std::string& ref, int* exitCode, const InterruptFlag* interrupt = nullptr) const;
  // Waits until ref no longer runs, at most `limit`; false on timeout.
  bool waitStopped(const std::string& ref, std::chrono::milliseconds limit) const;
  // Waits until ref is no more (404), at most `limit`; false on timeout.
  bool waitGone(const std::string& ref, std::chrono::milliseconds limit) const;
  void pause() const;

  Commands& commands_;
  PollOptions poll_;
  std::function<bool(const Daemon&, const std::string&)> pull_;

  RunFlags run_;
  bool detach_ = false;
  std::vector<std::string> refs_;
  std::string timeout_;
  bool force_ = false;
  std::string logRef_;
  bool followLogs_ = false;
};

}  // namespace skiff::cli
