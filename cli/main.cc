// skiff: the command line of a small swarm. docker's commands and output,
// spoken to netd over HTTP/JSON on its Unix socket (netd/API.md). The compose
// file is parsed here, client-side, so `stack config` needs no daemon and
// netd only ever receives the normalized StackSpec. Every command returns the
// process exit code; errors go to stderr in docker's words.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/cli/args.h"
#include "skiff/cli/format.h"
#include "skiff/cli/http_client.h"
#include "skiff/cli/list.h"
#include "skiff/cli/network.h"
#include "skiff/cli/template.h"
#include "skiff/cli/views.h"
#include "skiff/common/log.h"
#include "skiff/runtime/compose.h"
#include "skiff/runtime/stack.h"
#include "src/commands.h"
#include "src/container_commands.h"
#include "src/exec.h"
#include "src/image_stream.h"
#include "src/registry_commands.h"
#include "src/service_commands.h"
#include "src/stats_command.h"
#include "src/swarm_commands.h"

extern char** environ;

namespace skiff::cli {
namespace {

using nlohmann::json;

constexpr const char* kVersion = "0.1.0";

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::map<std::string, std::string> processEnv() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

std::optional<runtime::StackSpec> loadCompose(const std::string& file) {
  try {
    auto result = runtime::parseComposeFile(file, processEnv());
    for (const auto& warning : result.warnings) std::cerr << "WARNING: " << warning << "\n";
    return std::move(result.stack);
  } catch (const runtime::ComposeError& e) {
    std::cerr << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << file << ": " << e.what() << "\n";
  }
  return std::nullopt;
}

// Text of a nested JSON value ("a.b.c"), "" when missing.
const json* at(const json& root, std::initializer_list<const char*> path) {
  const json* node = &root;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
  }
  return node;
}

std::string str(const json& root, std::initializer_list<const char*> path) {
  const json* node = at(root, path);
  if (!node || node->is_null()) return "";
  return node->is_string() ? node->get<std::string>() : node->dump();
}

// docker's `service inspect --pretty`, for the fields netd's ServiceInspect has.
void printPretty(const json& s) {
  std::cout << "\nID:\t\t" << str(s, {"ID"}) << "\n";
  std::cout << "Name:\t\t" << str(s, {"Spec", "Name"}) << "\n";
  if (const json* labels = at(s, {"Spec", "Labels"}); labels && labels->is_object() && !labels->empty()) {
    std::cout << "Labels:\n";
    for (const auto& [k, v] : labels->items())
      std::cout << " " << k << "=" << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  }
  if (at(s, {"Spec", "Mode", "Replicated"})) {
    std::cout << "Service Mode:\tReplicated\n";
    std::cout << " Replicas:\t" << str(s, {"Spec", "Mode", "Replicated", "Replicas"}) << "\n";
  } else if (at(s, {"Spec", "Mode", "Global"})) {
    std::cout << "Service Mode:\tGlobal\n";
  }
  std::cout << "ContainerSpec:\n";
  std::cout << " Image:\t\t" << str(s, {"Spec", "TaskTemplate", "ContainerSpec", "Image"}) << "\n";
  if (const json* args = at(s, {"Spec", "TaskTemplate", "ContainerSpec", "Args"}); args && args->is_array()) {
    std::cout << " Args:\t\t";
    for (const auto& a : *args) std::cout << (a.is_string() ? a.get<std::string>() : a.dump()) << " ";
    std::cout << "\n";
  }
  const json* limits = at(s, {"Spec", "TaskTemplate", "Resources", "Limits"});
  if (limits && limits->is_object() && !limits->empty()) {
    std::cout << "Resources:\n Limits:\n";
    if (limits->contains("NanoCPUs") && (*limits)["NanoCPUs"].is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%g", (*limits)["NanoCPUs"].get<double>() / 1e9);
      std::cout << "  CPU:\t\t" << buf << "\n";
    }
    if (limits->contains("MemoryBytes") && (*limits)["MemoryBytes"].is_number()) {
      std::cout << "  Memory:\t" << binarySize((*limits)["MemoryBytes"].get<double>()) << "\n";
    }
  }
  if (const json* nets = at(s, {"Spec", "TaskTemplate", "Networks"}); nets && nets->is_array() && !nets->empty()) {
    std::cout << "Networks:";
    for (const auto& n : *nets) std::cout << " " << (n.is_object() ? str(n, {"Target"}) : n.dump());
    std::cout << "\n";
  }
  if (const json* ports = at(s, {"Spec", "EndpointSpec", "Ports"}); ports && ports->is_array() && !ports->empty()) {
    std::cout << "Ports:\n";
    for (const auto& p : *ports) {
      std::cout << " PublishedPort = " << str(p, {"PublishedPort"}) << "\n";
      std::cout << "  Protocol = " << str(p, {"Protocol"}) << "\n";
      std::cout << "  TargetPort = " << str(p, {"TargetPort"}) << "\n";
      std::cout << "  PublishMode = " << str(p, {"PublishMode"}) << "\n";
    }
  }
  std::cout << "\n";
}

int run(int argc, char** argv) {
  CLI::App app{"skiff: a small swarm. Run compose stacks as replicas, joined by overlay networks.", "skiff"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");

  const char* envHost = std::getenv(std::string(kHostEnv).c_str());
  std::string host = envHost && *envHost ? envHost : std::string(kDefaultHost);
  std::string logLevel = "info";
  app.add_option("-H,--host", host, "Daemon socket to connect to (default $SKIFF_HOST or unix:///run/skiff/netd.sock)");
  app.add_option("-l,--log-level", logLevel, "Set the logging level (debug|info|warn|error)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  std::function<int()> action;
  // All commands run after parsing, so -H anywhere on the line is honoured.
  Commands commands(action, host);
  auto bind = [&](CLI::App* cmd, std::function<int()> fn) { commands.bind(cmd, std::move(fn)); };
  auto daemon = [&] { return commands.daemon(); };

  // --- swarm, node ---
  SwarmCommands swarmCommands(app, commands);

  // --- stack ---
  auto* stack = app.add_subcommand("stack", "Manage stacks")->require_subcommand(1);
  std::string composeFile, stackName, configFormat = "yaml";
  auto* stackDeploy = stack->add_subcommand("deploy", "Deploy a new stack or update an existing stack")->alias("up");
  stackDeploy->add_option("-c,--compose-file", composeFile, "Path to a Compose file")->required();
  stackDeploy->add_option("STACK", stackName, "Stack name")->required();
  bind(stackDeploy, [&] {
    if (auto valid = validateStackName(stackName); !valid) {
      std::cerr << valid.error().message << "\n";
      return 1;
    }
    auto spec = loadCompose(composeFile);
    if (!spec) return 1;
    std::vector<std::string> images;
    for (const auto& [name, svc] : spec->services) images.push_back(svc.image);
    if (!pullMissingImages(daemon(), images)) return 1;  // nothing deployed: the stack as it was
    auto answer = daemon().call("POST", "/v1/stacks/" + escapePath(stackName), json{{"stack", runtime::toJson(*spec)}});
    if (!answer) return 1;
    printMessages(*answer);
    return 0;
  });
  auto* stackConfig =
      stack->add_subcommand("config", "Outputs the final config file, after doing merges and interpolations");
  stackConfig->add_option("-c,--compose-file", composeFile, "Path to a Compose file")->required();
  stackConfig->add_option("--format", configFormat, "Output format (yaml|json)")
      ->check(CLI::IsMember({"yaml", "json"}));
  bind(stackConfig, [&] {
    auto spec = loadCompose(composeFile);
    if (!spec) return 1;
    if (configFormat == "json") {
      std::cout << runtime::toJson(*spec).dump(2) << "\n";
    } else {
      std::cout << runtime::toYaml(*spec);
    }
    return 0;
  });
  commands.addListCommand(
      stack, "List stacks", "Format output using a custom template", "", stackView(), "/v1/stacks",
      [](const json& answer, const ListFlags&) -> Result<std::vector<Row>> { return stackRows(answer); });
  commands.addTaskPsCommand(stack, "List the tasks in the stack", "STACK", "Stack name", "stack",
                            [](const json& answer, const ListFlags& flags) -> Result<std::vector<Row>> {
                              if (answer.is_array() && answer.empty()) {
                                return Error::msg("nothing found in stack: " + flags.target);
                              }
                              return taskRows(answer, nowSeconds(), flags.noTrunc || flags.quiet);
                            });
  std::vector<std::string> stackNames;
  auto* stackRm = stack->add_subcommand("rm", "Remove one or more stacks")->alias("remove")->alias("down");
  stackRm->add_option("STACK", stackNames, "Stack names")->required();
  bind(stackRm, [&] {
    return forEachItem(stackNames, [&](const std::string& name) {
      auto answer = daemon().call("DELETE", "/v1/stacks/" + escapePath(name));
      if (answer) printMessages(*answer);
      return answer.has_value();
    });
  });

  // --- service ---
  auto* service = app.add_subcommand("service", "Manage services")->require_subcommand(1);
  commands.addListCommand(
      service, "List services", "Pretty-print services using a Go template", "Only display IDs", serviceView(),
      "/v1/services",
      [](const json& answer, const ListFlags&) -> Result<std::vector<Row>> { return serviceRows(answer); });
  commands.addTaskPsCommand(service, "List the tasks of a service", "SERVICE", "Service name", "service",
                            [](const json& answer, const ListFlags& flags) -> Result<std::vector<Row>> {
                              return taskRows(answer, nowSeconds(), flags.noTrunc || flags.quiet);
                            });
  std::string serviceName;
  std::vector<std::string> scaleArgs;
  auto* serviceScale = service->add_subcommand("scale", "Scale one or multiple replicated services");
  serviceScale->add_option("SERVICE=REPLICAS", scaleArgs, "Services and their replica counts")->required();
  bind(serviceScale, [&] {
    auto requests = parseScaleArgs(scaleArgs);
    if (!requests) {
      std::cerr << requests.error().message << "\n";
      return 1;
    }
    return forEachItem(requests.value(), [&](const ScaleRequest& request) {
      auto answer = daemon().call("POST", "/v1/services/" + escapePath(request.service) + "/scale",
                                  json{{"replicas", request.replicas}});
      if (!answer) return false;
      if (answer->contains("message")) {
        printMessages(*answer, "message");
      } else {
        std::cout << request.service << " scaled to " << request.replicas << "\n";
      }
      return true;
    });
  });
  commands.addInspectCommand(service, "Display detailed information on one or more services", "SERVICE",
                             "Service names", "/v1/services/", printPretty);
  FollowOptions follow;
  follow.terminal = ::isatty(STDOUT_FILENO) == 1;
  ServiceUpdateCommands serviceUpdate(*service, commands, follow);
  auto* serviceLogs = service->add_subcommand("logs", "Fetch the logs of a service");
  serviceLogs->add_option("SERVICE", serviceName, "Service name")->required();
  bind(serviceLogs, [&] {
    auto answer = daemon().call("GET", "/v1/services/" + escapePath(serviceName) + "/logs");
    if (!answer) return 1;
    const json* lines = at(*answer, {"lines"});
    if (!lines || !lines->is_array()) return 0;
    for (const auto& line : *lines) {
      // docker: "getstartedlab_web.1.abc@node    | text", one prefix per line.
      const std::string prefix = cell(line, "task") + "@" + cell(line, "node") + "    | ";
      std::string text = cell(line, "text");
      while (!text.empty() && text.back() == '\n') text.pop_back();
      size_t start = 0;
      while (true) {
        const size_t nl = text.find('\n', start);
        std::cout << prefix << text.substr(start, nl == std::string::npos ? std::string::npos : nl - start) << "\n";
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
    }
    return 0;
  });

  // --- container ---
  auto* container = app.add_subcommand("container", "Manage containers")->require_subcommand(1);
  // `container ls` (ps, list) and docker's top-level `ps`.
  for (bool top : {false, true}) {
    auto* ls = top ? app.add_subcommand("ps", "List containers")
                   : container->add_subcommand("ls", "List containers")->alias("ps")->alias("list");
    ListFlags& lsFlags = commands.addList(
        ls, containerView(),
        [](const ListFlags& flags) { return flags.all ? "/v1/containers?all=1" : "/v1/containers"; },
        [](const json& answer, const ListFlags& flags) -> Result<std::vector<Row>> {
          return containerRows(answer, nowSeconds(), flags.noTrunc);
        });
    ls->add_flag("-a,--all", lsFlags.all, "Show all containers (default shows just running)");
    ls->add_flag("-q,--quiet", lsFlags.quiet, "Only display container IDs");
    ls->add_flag("--no-trunc", lsFlags.noTrunc, "Don't truncate output");
    ls->add_option("--format", lsFlags.format, "Pretty-print containers using a Go template");
  }
  commands.addInspectCommand(container, "Display detailed information on one or more containers", "CONTAINER",
                             "Container IDs or names", "/v1/containers/");
  // run, start, stop, restart, rm, logs: under `container` and at the top.
  ContainerCommands containerCommands(app, *container, commands);
  containerCommands.setPull(
      [](const Daemon& to, const std::string& image) { return pullMissingImages(to, {image}, &std::cerr); });
  std::string containerId;
  bool execInteractive = false, execTty = false;
  std::string execUser;
  auto* containerExec = container->add_subcommand("exec", "Execute a command in a running container");
  containerExec->add_flag("-i,--interactive", execInteractive, "Keep STDIN open even if not attached");
  containerExec->add_flag("-t,--tty", execTty, "Allocate a pseudo-TTY");
  containerExec->add_option("-u,--user", execUser,
                            "Username or UID (format: \"<name|uid>[:<group|gid>]\"); default: the service's user");
  containerExec->add_option("CONTAINER", containerId, "Container ID or name")->required();
  // Everything after the container is the command, options included.
  containerExec->prefix_command();
  bind(containerExec, [&] {
    const std::vector<std::string> command = containerExec->remaining();
    if (command.empty()) {
      std::cerr << "\"skiff container exec\" requires at least 2 arguments.\n";
      return 1;
    }
    auto answer = daemon().call("GET", "/v1/containers/" + escapePath(containerId));
    if (!answer) return 1;
    const json* running = at(*answer, {"State", "Running"});
    const json* pid = at(*answer, {"State", "Pid"});
    const std::string id = str(*answer, {"Id"}).empty() ? containerId : str(*answer, {"Id"});
    if (!running || !running->is_boolean() || !running->get<bool>() || !pid || !pid->is_number_integer() ||
        pid->get<int64_t>() <= 0) {
      std::cerr << "Error response from daemon: container " << id << " is not running\n";
      return 1;
    }
    ExecOptions options;
    options.argv = command;
    options.interactive = execInteractive;
    options.tty = execTty;
    // As docker: the container's user unless -u says otherwise.
    options.user = containerExec->count("--user") ? execUser : str(*answer, {"Config", "User"});
    // The replica's seccomp filter, as inspect shows it (none listed: the default).
    std::vector<std::string> securityOpt;
    if (const json* opts = at(*answer, {"HostConfig", "SecurityOpt"}); opts && opts->is_array()) {
      for (const auto& o : *opts) {
        if (o.is_string()) securityOpt.push_back(o.get<std::string>());
      }
    }
    auto [seccompMode, seccompProfile] = runtime::seccompFromSecurityOpt(securityOpt);
    options.seccomp = seccompMode;
    options.seccompProfile = std::move(seccompProfile);
    auto code = execInContainer(static_cast<pid_t>(pid->get<int64_t>()), options);
    if (!code) {
      std::cerr << "Error: exec in container " << id << ": " << code.error().message << "\n";
      return 126;
    }
    // This process now lives in the container's mount and pid namespaces,
    // where /proc does not show it: exit-time machinery that reads
    // /proc/self (LeakSanitizer's thread census spins forever) must not run.
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(code.value());
  });

  // --- image ---
  auto* image = app.add_subcommand("image", "Manage images")->require_subcommand(1);
  std::string buildTag, buildDir;
  std::string tagSource, tagTarget;
  std::vector<std::string> imageRefs;
  bool imageForce = false;
  std::string archiveFile;
  std::vector<std::string> saveRefs;
  // Each under `image`, and at the top as docker's shortcuts: build, tag,
  // save, load, images (image ls), rmi (image rm).
  for (CLI::App* parent : {image, &app}) {
    const bool top = parent == &app;
    auto* imageBuild = parent->add_subcommand("build", "Build an image from a Dockerfile");
    imageBuild->add_option("-t,--tag", buildTag, "Name and optionally a tag in the 'name:tag' format");
    imageBuild->add_option("PATH", buildDir, "Build context directory")->required();
    bind(imageBuild, [&] {
      std::string tag;
      if (!buildTag.empty()) {
        auto normalized = normalizeImageTag(buildTag);
        if (!normalized) {
          std::cerr << "invalid argument \"" << buildTag << "\" for \"-t, --tag\" flag: " << normalized.error().message
                    << "\n";
          return 1;
        }
        tag = normalized.value();
      }
      std::error_code ec;
      const auto dir = std::filesystem::absolute(buildDir, ec);
      if (ec || !std::filesystem::is_directory(dir, ec)) {
        std::cerr << "unable to prepare context: path \"" << buildDir << "\" not found\n";
        return 1;
      }
      json body = {{"context", std::filesystem::weakly_canonical(dir, ec).string()}};
      if (!tag.empty()) body["tag"] = tag;
      auto answer = daemon().call("POST", "/v1/images/build", body);
      if (!answer) return 1;
      // The daemon's build log ends with docker's "Successfully built/tagged" lines.
      printMessages(*answer, "log");
      return 0;
    });
    commands.addListCommand(
        parent, "List images", "Pretty-print images using a Go template", "Only show image IDs", imageView(),
        "/v1/images",
        [](const json& answer, const ListFlags&) -> Result<std::vector<Row>> {
          return imageRows(answer, nowSeconds());
        },
        top ? "images" : "ls");
    auto* imageTag = parent->add_subcommand("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE");
    imageTag->add_option("SOURCE_IMAGE", tagSource, "Source image[:tag] or ID")->required();
    imageTag->add_option("TARGET_IMAGE", tagTarget, "Target image[:tag]")->required();
    bind(imageTag, [&] {
      auto target = normalizeImageTag(tagTarget);
      if (!target) {
        std::cerr << "Error parsing reference: \"" << tagTarget
                  << "\" is not a valid repository/tag: " << target.error().message << "\n";
        return 1;
      }
      return daemon().call("POST", "/v1/images/tag", json{{"source", tagSource}, {"target", target.value()}}) ? 0 : 1;
    });
    // save / load: netd writes and reads the file (its path made absolute
    // here); docker's stdout/stdin forms are not offered.
    auto* imageSave = parent->add_subcommand("save", "Save one or more images to a tar archive");
    imageSave->add_option("-o,--output", archiveFile, "Write to a file, instead of STDOUT");
    imageSave->add_option("IMAGE", saveRefs, "Images to save")->required();
    bind(imageSave, [&] {
      if (archiveFile.empty()) return saveToStdout(daemon(), saveRefs);
      std::error_code ec;
      const auto file = std::filesystem::absolute(archiveFile, ec);
      return daemon().call("POST", "/v1/images/save", json{{"names", saveRefs}, {"output", file.string()}}) ? 0 : 1;
    });
    auto* imageLoad = parent->add_subcommand("load", "Load an image from a tar archive");
    imageLoad->add_option("-i,--input", archiveFile,
                          "Read from a tar archive file (docker save's, gzipped or not), instead of STDIN");
    bind(imageLoad, [&] {
      if (archiveFile.empty()) return loadFromStdin(daemon());
      std::error_code ec;
      const auto file = std::filesystem::absolute(archiveFile, ec);
      if (!std::filesystem::is_regular_file(file, ec)) {
        std::cerr << "open " << archiveFile << ": no such file or directory\n";
        return 1;
      }
      auto answer = daemon().call("POST", "/v1/images/load", json{{"input", file.string()}});
      if (!answer) return 1;
      printMessages(*answer, "log");
      return 0;
    });
    auto* imageRm = parent->add_subcommand(top ? "rmi" : "rm", "Remove one or more images");
    if (!top) imageRm->alias("remove");
    imageRm->add_option("IMAGE", imageRefs, "Image references or IDs")->required();
    imageRm->add_flag("-f,--force", imageForce, "Force removal of the image");
    bind(imageRm, [&] {
      return forEachItem(imageRefs, [&](const std::string& ref) {
        auto answer = daemon().call("DELETE", "/v1/images/" + escapePath(ref) + (imageForce ? "?force=1" : ""));
        if (!answer) return false;
        for (const char* key : {"untagged", "deleted"}) {
          const json* items = at(*answer, {key});
          if (!items || !items->is_array()) continue;
          for (const auto& item : *items) {
            std::cout << (key[0] == 'u' ? "Untagged: " : "Deleted: ")
                      << (item.is_string() ? item.get<std::string>() : item.dump()) << "\n";
          }
        }
        return true;
      });
    });
  }

  // login, logout, push, pull (push and pull under `image` too)
  RegistryCommands registryCommands(app, commands);

  // --- network ---
  auto* network = app.add_subcommand("network", "Manage networks")->require_subcommand(1);
  commands.addListCommand(
      network, "List networks", "Pretty-print networks using a Go template", "Only display network IDs", networkView(),
      "/v1/networks",
      [](const json& answer, const ListFlags&) -> Result<std::vector<Row>> { return networkRows(answer); });
  commands.addInspectCommand(network, "Display detailed information on one or more networks", "NETWORK",
                             "Network names or IDs", "/v1/networks/");
  NetworkFlags networkFlags;
  std::string networkName;
  auto* networkCreate = network->add_subcommand("create", "Create a network");
  networkCreate->add_option("-d,--driver", networkFlags.driver, "Driver to manage the Network")->default_str("overlay");
  networkCreate->add_flag("--attachable", networkFlags.attachable, "Enable manual container attachment");
  networkCreate->add_flag("--internal", networkFlags.internal, "Restrict external access to the network");
  networkCreate->add_option("--subnet", networkFlags.subnet, "Subnet in CIDR format");
  networkCreate->add_option("--gateway", networkFlags.gateway, "IPv4 Gateway for the master subnet");
  networkCreate->add_option("-o,--opt", networkFlags.opts, "Set driver specific options");
  networkCreate->add_option("--label", networkFlags.labels, "Set metadata on a network");
  networkCreate->add_option("NETWORK", networkName, "Network name")->required();
  bind(networkCreate, [&] {
    auto body = networkCreateBody(networkFlags);
    if (!body.ok()) {
      std::cerr << body.error().message << "\n";
      return 1;
    }
    auto answer = daemon().call("POST", "/v1/networks/" + escapePath(networkName), *body);
    if (!answer) return 1;
    std::cout << cell(*answer, "id") << "\n";
    return 0;
  });
  std::vector<std::string> networkNames;
  auto* networkRm = network->add_subcommand("rm", "Remove one or more networks")->alias("remove");
  networkRm->add_option("NETWORK", networkNames, "Network names or IDs")->required();
  bind(networkRm, [&] {
    return forEachItem(networkNames, [&](const std::string& name) {
      if (!daemon().call("DELETE", "/v1/networks/" + escapePath(name))) return false;
      std::cout << name << "\n";
      return true;
    });
  });

  // --- stats ---
  StatsOptions statsOptions;
  statsOptions.terminal = ::isatty(STDOUT_FILENO) == 1;
  StatsCommand stats(app, commands, statsOptions);

  // --- version ---
  auto* version = app.add_subcommand("version", "Show the skiff version information");
  bind(version, [&] {
    std::cout << "Client:\n Version:\t" << kVersion << "\n API version:\tv1\n";
    auto answer = daemon().call("GET", "/v1/info");
    if (!answer) return 1;
    std::cout << "\nServer:\n Version:\t" << cell(*answer, "version") << "\n";
    std::cout << " Data root:\t" << cell(*answer, "dataRoot") << "\n";
    std::cout << " Cgroup:\t" << cell(*answer, "cgroup") << "\n";
    std::cout << " Swarm:\t\t" << str(*answer, {"swarm", "state"}) << "\n";
    return 0;
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  log::Level level;
  if (log::parseLevel(logLevel, &level)) log::setLevel(level);
  if (!action) return 0;
  return action();
}

}  // namespace
}  // namespace skiff::cli

int main(int argc, char** argv) { return skiff::cli::run(argc, argv); }
