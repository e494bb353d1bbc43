#include "stats_command.h"

#include <algorithm>
#include <iostream>
#include <thread>

#include "interrupt.h"
#include "skiff/cli/http_client.h"
#include "skiff/cli/list.h"
#include "skiff/cli/stats.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

std::string requestPath(const std::vector<std::string>& containers) {
  if (containers.empty()) return "/v1/stats";
  std::string list;
  for (const auto& c : containers) {
    if (!list.empty()) list += ',';
    list += c;
  }
  return "/v1/stats?" + queryParam("containers", list);
}

}  // namespace

int runStats(const Daemon& daemon, const StatsArgs& args, const StatsOptions& options) {
  const ListView& view = statsView();
  ListFlags flags;
  flags.format = args.format;
  auto tmpl = listTemplate(view, flags);
  if (!tmpl) {
    std::cerr << tmpl.error().message << "\n";
    return 1;
  }
  // A name with a comma can be no container's: docker's answer for it.
  for (const auto& c : args.containers) {
    if (c.empty() || c.find(',') != std::string::npos) {
      std::cerr << "Error response from daemon: No such container: " << c << "\n";
      return 1;
    }
  }
  InterruptFlag interrupt;
  auto stopped = [&] { return options.stopped ? options.stopped() : interrupt.count() != 0; };
  auto wait = [&](std::chrono::milliseconds d) {
    if (options.sleep) {
      options.sleep(d);
      return;
    }
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stopped()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
    }
  };
  auto seconds = [&] { return std::chrono::duration<double>(options.now().time_since_epoch()).count(); };

  StatsTracker tracker(args.containers, args.noTrunc);
  const std::string path = requestPath(args.containers);
  auto first = daemon.call("GET", path);
  if (!first) return 1;
  tracker.observe(parseStatsAnswer(*first), seconds());
  uint64_t frames = 0;
  while (true) {
    wait(options.interval);
    if (stopped()) return 0;
    auto answer = daemon.call("GET", path);
    if (!answer) return stopped() ? 0 : 1;
    const auto rows = tracker.observe(parseStatsAnswer(*answer), seconds());
    std::cout << statsFrame(tmpl->render(rows), options.terminal && !args.noStream, frames == 0) << std::flush;
    ++frames;
    if (args.noStream || (options.maxFrames > 0 && frames >= options.maxFrames)) return 0;
  }
}

StatsCommand::StatsCommand(CLI::App& app, Commands& commands, StatsOptions options)
    : commands_(commands), options_(std::move(options)) {
  auto* stats = app.add_subcommand("stats", "Display a live stream of replicas' resource usage statistics");
  stats->add_flag("--no-stream", args_.noStream, "Disable streaming stats and only pull the first result");
  stats->add_flag("--no-trunc", args_.noTrunc, "Do not truncate output");
  stats->add_option("--format", args_.format, "Format output using a custom template");
  stats->add_option("CONTAINER", args_.containers, "Container IDs or names (default: all running replicas)");
  commands_.bind(stats, [this] { return runStats(commands_.daemon(), args_, options_); });
}

}  // namespace skiff::cli
