// `skiff run / ps / start / stop / restart / rm / logs`: docker's words over
// netd's /v1/containers.

#include "container_commands.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "interrupt.h"
#include "skiff/cli/http_client.h"
#include "skiff/cli/views.h"

extern char** environ;

namespace skiff::cli {
namespace {

using json = nlohmann::json;

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

bool isRunning(const json& inspect) {
  auto state = inspect.find("State");
  return state != inspect.end() && state->is_object() && state->value("Running", false);
}

}  // namespace

ContainerCommands::ContainerCommands(CLI::App& app, CLI::App& container, Commands& commands, PollOptions poll)
    : commands_(commands), poll_(std::move(poll)) {
  for (CLI::App* parent : {&app, &container}) {
    addRun(*parent);
    addLifecycle(*parent);
  }
  addLogs(container);
  addLogs(app);
}

void ContainerCommands::addRun(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("run", "Create and run a new container from an image");
  cmd->add_flag("-d,--detach", detach_, "Run container in background and print container ID");
  cmd->add_option("--name", run_.name, "Assign a name to the container");
  cmd->add_option("-p,--publish", run_.publish, "Publish a container's port(s) to the host ([ip:]host:container[/udp])")
      ->allow_extra_args(false);
  cmd->add_option("-e,--env", run_.env, "Set environment variables")->allow_extra_args(false);
  cmd->add_option("-v,--volume", run_.volumes, "Bind mount a volume")->allow_extra_args(false);
  cmd->add_flag("--rm", run_.autoRemove, "Automatically remove the container when it exits");
  cmd->add_option("--restart", run_.restart, "Restart policy to apply when a container exits (default \"no\")");
  cmd->add_option("--cpus", run_.cpus, "Number of CPUs");
  cmd->add_option("-m,--memory", run_.memory, "Memory limit");
  cmd->add_option("--network", run_.networks, "Connect a container to a network")->allow_extra_args(false);
  cmd->add_option("-w,--workdir", run_.workdir, "Working directory inside the container");
  cmd->add_option("-u,--user", run_.user, "Username or UID (format: <name|uid>[:<group|gid>])");
  cmd->add_option("--stop-timeout", run_.stopTimeout, "Timeout (in seconds) to stop a container");
  cmd->add_option("IMAGE", run_.image, "The image")->required();
  // Everything after the image is the command, options included.
  cmd->prefix_command();
  commands_.bind(cmd, [this, cmd] {
    run_.command = cmd->remaining();
    return run();
  });
}

void ContainerCommands::addLifecycle(CLI::App& parent) {
  auto* start = parent.add_subcommand("start", "Start one or more stopped containers");
  start->add_option("CONTAINER", refs_, "Containers")->required();
  commands_.bind(start, [this] {
    return forEachItem(refs_, [&](const std::string& ref) {
      if (!commands_.daemon().call("POST", "/v1/containers/" + escapePath(ref) + "/start")) return false;
      std::cout << ref << "\n";
      return true;
    });
  });
  for (bool restart : {false, true}) {
    auto* cmd = parent.add_subcommand(restart ? "restart" : "stop", restart ? "Restart one or more containers"
                                                                            : "Stop one or more running containers");
    cmd->add_option("-t,--time", timeout_, "Seconds to wait before killing the container");
    cmd->add_option("CONTAINER", refs_, "Containers")->required();
    commands_.bind(cmd, [this, restart] { return stop(restart); });
  }
  auto* rm = parent.add_subcommand("rm", "Remove one or more containers");
  rm->alias("remove");
  rm->add_flag("-f,--force", force_, "Force the removal of a running container (uses SIGKILL)");
  rm->add_option("CONTAINER", refs_, "Containers")->required();
  commands_.bind(rm, [this] {
    return forEachItem(refs_, [&](const std::string& ref) {
      std::string path = "/v1/containers/" + escapePath(ref) + (force_ ? "?force=1" : "");
      if (!commands_.daemon().call("DELETE", path)) return false;
      // As docker's: back once it is gone (its port and name free again).
      if (!waitGone(ref, std::chrono::seconds(30))) {
        std::cerr << "Error response from daemon: container " << ref << " was not removed within 30 s\n";
        return false;
      }
      std::cout << ref << "\n";
      return true;
    });
  });
}

void ContainerCommands::addLogs(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("logs", "Fetch the logs of a container");
  cmd->add_flag("-f,--follow", followLogs_, "Follow log output");
  cmd->add_option("CONTAINER", logRef_, "Container ID or name")->required();
  commands_.bind(cmd, [this] { return logs(); });
}

void ContainerCommands::pause() const {
  if (poll_.sleep) {
    poll_.sleep(poll_.interval);
  } else {
    std::this_thread::sleep_for(poll_.interval);
  }
}

int ContainerCommands::run() const {
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  // Attached with --rm, the CLI removes it once it has read its exit code
  // (netd would remove it before); detached, netd does when it ends.
  RunFlags flags = run_;
  if (!detach_) flags.autoRemove = false;
  auto body = runBody(flags, cwd, processEnvironment());
  if (!body.ok()) {
    std::cerr << "skiff: " << body.error().message << "\n";
    return 125;  // docker's code for a run refused before the container exists
  }
  // An image from a registry this node lacks is pulled first, as docker run does.
  if (pull_ && !pull_(commands_.daemon(), run_.image)) return 125;
  auto answer = commands_.daemon().call("POST", "/v1/containers", *body);
  if (!answer) return 125;
  const std::string id = cell(*answer, "id");
  const std::string name = cell(*answer, "name");
  if (detach_) {
    std::cout << id << "\n";
    return 0;
  }
  // Attached: its output until it ends, then its exit code (docker run's).
  // Ctrl-C or SIGTERM stops it, as docker's proxied signal ends a process
  // that ends on it.
  int exitCode = 0;
  {
    InterruptFlag interrupt({SIGINT, SIGTERM});  // until the container has ended: then the signals' own way
    if (!follow(name, &exitCode, &interrupt)) return 125;
  }
  if (run_.autoRemove) {
    if (!commands_.daemon().call("DELETE", "/v1/containers/" + escapePath(id.empty() ? name : id) + "?force=1") ||
        !waitGone(id.empty() ? name : id, std::chrono::seconds(30)))
      return 125;
  }
  return exitCode;
}

int ContainerCommands::stop(bool thenStart) const {
  std::string query;
  double grace = 600;  // no -t: its own stop timeout, which may be long (--stop-timeout)
  if (!timeout_.empty()) {
    char* end = nullptr;
    grace = std::strtod(timeout_.c_str(), &end);
    if (end == timeout_.c_str() || *end != '\0' || !std::isfinite(grace) || grace < 0 || grace > 86400) {
      std::cerr << "invalid argument \"" << timeout_ << "\" for \"-t, --time\" flag: not a number of seconds\n";
      return 1;
    }
    query = "?t=" + timeout_;
  }
  return forEachItem(refs_, [&](const std::string& ref) {
    // A restart's stop: --rm does not remove the container.
    const std::string restart = thenStart ? std::string(query.empty() ? "?" : "&") + "restart=1" : "";
    if (!commands_.daemon().call("POST", "/v1/containers/" + escapePath(ref) + "/stop" + query + restart)) return false;
    // As docker's: back once it has stopped (the signal, the grace, SIGKILL).
    auto limit = std::chrono::milliseconds(static_cast<int64_t>(grace * 1000)) + std::chrono::seconds(15);
    if (!waitStopped(ref, limit)) {
      std::cerr << "Error response from daemon: container " << ref << " did not stop within " << limit.count() / 1000
                << " s\n";
      return false;
    }
    if (thenStart && !commands_.daemon().call("POST", "/v1/containers/" + escapePath(ref) + "/start")) return false;
    std::cout << ref << "\n";
    return true;
  });
}

bool ContainerCommands::waitGone(const std::string& ref, std::chrono::milliseconds limit) const {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    bool missing = false;
    if (!commands_.daemon().call("GET", "/v1/containers/" + escapePath(ref), std::nullopt, &missing)) return missing;
    if (std::chrono::steady_clock::now() > end) return false;
    pause();
  }
}

bool ContainerCommands::waitStopped(const std::string& ref, std::chrono::milliseconds limit) const {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    bool missing = false;
    auto inspect = commands_.daemon().call("GET", "/v1/containers/" + escapePath(ref), std::nullopt, &missing);
    if (!inspect) return missing;  // removed (--rm): stopped
    if (!isRunning(*inspect)) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    pause();
  }
}

int ContainerCommands::logs() const {
  if (!followLogs_) {
    auto answer = commands_.daemon().call("GET", "/v1/containers/" + escapePath(logRef_) + "/logs");
    if (!answer) return 1;
    std::cout << cell(*answer, "text") << std::flush;
    return 0;
  }
  return follow(logRef_, nullptr) ? 0 : 1;
}

bool ContainerCommands::follow(const std::string& ref, int* exitCode, const InterruptFlag* interrupt) const {
  std::string id;  // the container the first answer named: a restart is another one
  uint64_t offset = 0;
  int notYet = exitCode != nullptr ? 50 : 0;  // an attached run's first asks, 200 ms apart
  int signals = 0;                            // of `interrupt`, acted on
  for (;;) {
    bool missing = false;
    std::string target = id.empty() ? ref : id;
    if (interrupt != nullptr && interrupt->count() > signals) {
      if (signals > 0) {
        if (exitCode != nullptr) *exitCode = 130;  // a second signal: back now, the stop goes on
        return true;
      }
      signals = 1;  // the next one, however soon, is the second
      if (!commands_.daemon().call("POST", "/v1/containers/" + escapePath(target) + "/stop")) return false;
    }
    auto answer =
        commands_.daemon().call("GET", "/v1/containers/" + escapePath(target) + "/logs?since=" + std::to_string(offset),
                                std::nullopt, &missing);
    if (!answer) {
      if (missing && !id.empty()) return true;  // removed (--rm) after it ended
      // Just run: its node's agent may not have it yet.
      if (missing && notYet-- > 0) {
        pause();
        continue;
      }
      if (missing) std::cerr << "Error response from daemon: No such container: " << ref << "\n";
      return false;
    }
    if (id.empty()) id = cell(*answer, "id");
    const std::string text = cell(*answer, "text");
    std::cout << text << std::flush;
    const json& next = (*answer)["offset"];
    if (next.is_number_unsigned()) offset = next.get<uint64_t>();
    // Ended and all of it read: done. More to read: at once.
    const bool running = answer->value("running", false);
    if (exitCode != nullptr && answer->contains("exitCode") && (*answer)["exitCode"].is_number_integer())
      *exitCode = (*answer)["exitCode"].get<int>();
    if (!running && text.empty()) return true;
    if (text.empty()) pause();
  }
}

}  // namespace skiff::cli
