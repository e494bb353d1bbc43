#include "service_commands.h"

#include <iostream>
#include <thread>

#include "skiff/cli/http_client.h"
#include "skiff/cli/list.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

// An argument check failed before any request: docker prints the text alone.
int refuse(const Error& error) {
  std::cerr << error.message << "\n";
  return 1;
}

std::string limitText(std::chrono::milliseconds limit) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(limit).count();
  if (seconds >= 60 && seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

}  // namespace

int followUpdate(const Daemon& daemon, const std::string& service, bool rollbackCommand, bool quiet,
                 const FollowOptions& options) {
  UpdateProgress progress(rollbackCommand);
  ProgressPrinter printer(options.terminal);
  const auto deadline = options.now() + options.limit;
  while (true) {
    auto inspected = daemon.call("GET", "/v1/services/" + escapePath(service));
    if (!inspected) return 1;
    // The tasks by the service's own name (the argument may be an ID).
    std::string name = service;
    if (const auto* spec = inspected->is_object() ? &(*inspected)["Spec"] : nullptr;
        spec && spec->is_object() && spec->contains("Name") && (*spec)["Name"].is_string()) {
      name = (*spec)["Name"].get<std::string>();
    }
    auto tasks = daemon.call("GET", "/v1/tasks?" + queryParam("service", name));
    if (!tasks) return 1;
    const ProgressFrame frame = progress.observe(*inspected, *tasks);
    if (!quiet) std::cout << printer.render(frame) << std::flush;
    if (frame.end == ProgressFrame::End::kConverged) return 0;
    if (frame.end == ProgressFrame::End::kFailed) {
      std::cerr << frame.finalLine << "\n";
      return 1;
    }
    if (options.now() >= deadline) {
      std::cerr << "gave up waiting after " << limitText(options.limit) << ": service " << service
                << " has not converged; the update goes on (follow it with `skiff service ps " << service << "`)\n";
      return 1;
    }
    if (options.sleep) {
      options.sleep(options.interval);
    } else {
      std::this_thread::sleep_for(options.interval);
    }
  }
}

ServiceUpdateCommands::ServiceUpdateCommands(CLI::App& service, Commands& commands, FollowOptions follow)
    : commands_(commands), follow_(std::move(follow)) {
  auto* update = service.add_subcommand("update", "Update a service");
  update->add_flag("-d,--detach", detach_, "Exit immediately instead of waiting for the service to converge");
  update->add_flag("-q,--quiet", quiet_, "Suppress progress output");
  imageOpt_ = update->add_option("--image", image_, "Service image tag");
  update->add_option("--env-add", envAdd_, "Add or update an environment variable")
      ->allow_extra_args(false)
      ->expected(1)
      ->take_all();
  update->add_option("--env-rm", envRm_, "Remove an environment variable")
      ->allow_extra_args(false)
      ->expected(1)
      ->take_all();
  replicasOpt_ = update->add_option("--replicas", replicas_, "Number of tasks")->type_name("uint");
  update->add_flag("--force", force_, "Force update even if no changes require it");
  parallelismOpt_ =
      update->add_option("--update-parallelism", parallelism_, "Maximum number of tasks updated simultaneously")
          ->type_name("uint");
  delayOpt_ =
      update->add_option("--update-delay", delay_, "Delay between updates (ns|us|ms|s|m|h)")->type_name("duration");
  orderOpt_ = update->add_option("--update-order", order_, "Update order (\"start-first\", \"stop-first\")");
  failureActionOpt_ = update->add_option("--update-failure-action", failureAction_,
                                         "Action on update failure (\"pause\", \"continue\", \"rollback\")");
  monitorOpt_ = update
                    ->add_option("--update-monitor", monitor_,
                                 "Duration after each task update to monitor for failure (ns|us|ms|s|m|h)")
                    ->type_name("duration");
  maxFailureRatioOpt_ =
      update->add_option("--update-max-failure-ratio", maxFailureRatio_, "Failure rate to tolerate during an update")
          ->type_name("float");
  update->add_flag("--rollback", rollback_, "Rollback to previous specification");
  update->add_option("SERVICE", service_, "Service name or ID")->required();
  commands_.bind(update, [this] { return this->update(); });

  auto* rollback = service.add_subcommand("rollback", "Revert changes to a service's configuration");
  rollback->add_flag("-d,--detach", detach_, "Exit immediately instead of waiting for the service to converge");
  rollback->add_flag("-q,--quiet", quiet_, "Suppress progress output");
  rollback->add_option("SERVICE", service_, "Service name or ID")->required();
  commands_.bind(rollback, [this] { return this->rollback(); });
}

ServiceUpdateArgs ServiceUpdateCommands::args() const {
  auto given = [](const CLI::Option* opt, const std::string& value) {
    return opt->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
  };
  ServiceUpdateArgs a;
  a.image = given(imageOpt_, image_);
  a.envAdd = envAdd_;
  a.envRm = envRm_;
  a.replicas = given(replicasOpt_, replicas_);
  a.force = force_;
  a.parallelism = given(parallelismOpt_, parallelism_);
  a.delay = given(delayOpt_, delay_);
  a.order = given(orderOpt_, order_);
  a.failureAction = given(failureActionOpt_, failureAction_);
  a.monitor = given(monitorOpt_, monitor_);
  a.maxFailureRatio = given(maxFailureRatioOpt_, maxFailureRatio_);
  a.rollback = rollback_;
  return a;
}

int ServiceUpdateCommands::update() const {
  auto body = serviceUpdateBody(args());
  if (!body) return refuse(body.error());
  if (rollback_) return rollback();
  auto answer = commands_.daemon().call("POST", "/v1/services/" + escapePath(service_) + "/update", body.value());
  if (!answer) return 1;
  return finish(*answer, false);
}

int ServiceUpdateCommands::rollback() const {
  auto answer = commands_.daemon().call("POST", "/v1/services/" + escapePath(service_) + "/rollback");
  if (!answer) return 1;
  return finish(*answer, true);
}

int ServiceUpdateCommands::finish(const json& answer, bool rollbackCommand) const {
  if (answer.is_object() && answer.contains("Warnings") && answer["Warnings"].is_array()) {
    for (const auto& w : answer["Warnings"]) std::cerr << (w.is_string() ? w.get<std::string>() : w.dump()) << "\n";
  }
  std::cout << service_ << "\n" << std::flush;  // docker prints the name as given
  if (detach_) return 0;
  return followUpdate(commands_.daemon(), service_, rollbackCommand, quiet_, follow_);
}

}  // namespace skiff::cli
