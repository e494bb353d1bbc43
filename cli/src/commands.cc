#include "commands.h"

#include <iostream>

#include "skiff/cli/http_client.h"
#include "skiff/cli/template.h"

namespace skiff::cli {

using nlohmann::json;

std::optional<json> Daemon::call(const std::string& method, const std::string& path, const std::optional<json>& body,
                                 bool* notFound) const {
  auto socket = parseHost(host_);
  if (!socket) {
    std::cerr << "error: " << socket.error().message << "\n";
    return std::nullopt;
  }
  HttpClient client(socket.value());
  auto response = client.request(method, path, body ? body->dump() : std::string());
  if (!response) {
    if (HttpClient::isConnectError(response.error())) {
      std::cerr << "Cannot connect to the skiff daemon at " << host_ << ". Is the netd daemon running?\n";
    } else {
      std::cerr << "error during connect: " << response.error().message << "\n";
    }
    return std::nullopt;
  }
  json parsed = json::object();
  const std::string& text = response->body;
  if (!text.empty()) {
    parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      if (response->status >= 400) {
        std::cerr << "Error response from daemon: " << text << "\n";
      } else {
        std::cerr << "error: malformed JSON from daemon (" << method << " " << path << ")\n";
      }
      return std::nullopt;
    }
  }
  if (notFound != nullptr) *notFound = response->status == 404;
  if (response->status == 404 && notFound != nullptr) return std::nullopt;  // the caller says it
  if (response->status >= 400) {
    std::string message = parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()
                              ? parsed["message"].get<std::string>()
                              : std::to_string(response->status) + " " + response->reason;
    std::cerr << "Error response from daemon: " << message << "\n";
    return std::nullopt;
  }
  return parsed;
}

void printMessages(const json& answer, const std::string& key, std::ostream& out) {
  if (!answer.is_object() || !answer.contains(key)) return;
  const json& messages = answer[key];
  if (messages.is_array()) {
    for (const auto& m : messages) out << (m.is_string() ? m.get<std::string>() : m.dump()) << "\n";
  } else if (messages.is_string()) {
    out << messages.get<std::string>() << "\n";
  }
}

int runList(const Daemon& daemon, const ListView& view, const ListFlags& flags, const std::string& path,
            const RowsFn& rows) {
  auto tmpl = listTemplate(view, flags);
  if (!tmpl) {
    std::cerr << tmpl.error().message << "\n";
    return 1;
  }
  auto answer = daemon.call("GET", path);
  if (!answer) return 1;
  auto listed = rows(*answer, flags);
  if (!listed) {
    std::cerr << listed.error().message << "\n";
    return 1;
  }
  std::cout << tmpl->render(listed.value());
  return 0;
}

void Commands::bind(CLI::App* cmd, std::function<int()> fn) {
  cmd->callback([this, fn = std::move(fn)] { action_ = fn; });
}

ListFlags& Commands::addList(CLI::App* cmd, const ListView& view, PathFn path, RowsFn rows) {
  ListFlags& flags = lists_.emplace_back();
  bind(cmd, [this, &view, &flags, path = std::move(path), rows = std::move(rows)] {
    return runList(daemon(), view, flags, path(flags), rows);
  });
  return flags;
}

CLI::App* Commands::addListCommand(CLI::App* parent, const std::string& help, const std::string& formatHelp,
                                   const std::string& quietHelp, const ListView& view, const std::string& path,
                                   RowsFn rows, const std::string& name) {
  auto* cmd = parent->add_subcommand(name, help);
  if (name == "ls") cmd->alias("list");
  ListFlags& flags = addList(
      cmd, view, [path](const ListFlags&) { return path; }, std::move(rows));
  cmd->add_option("--format", flags.format, formatHelp);
  if (!quietHelp.empty()) cmd->add_flag("-q,--quiet", flags.quiet, quietHelp);
  return cmd;
}

CLI::App* Commands::addTaskPsCommand(CLI::App* parent, const std::string& help, const std::string& argName,
                                     const std::string& argHelp, const std::string& queryKey, RowsFn rows) {
  auto* cmd = parent->add_subcommand("ps", help);
  ListFlags& flags = addList(
      cmd, taskView(), [queryKey](const ListFlags& f) { return "/v1/tasks?" + queryParam(queryKey, f.target); },
      std::move(rows));
  cmd->add_option(argName, flags.target, argHelp)->required();
  cmd->add_option("--format", flags.format, "Pretty-print tasks using a Go template");
  cmd->add_flag("--no-trunc", flags.noTrunc, "Do not truncate output");
  cmd->add_flag("-q,--quiet", flags.quiet, "Only display task IDs");
  return cmd;
}

CLI::App* Commands::addInspectCommand(CLI::App* parent, const std::string& help, const std::string& argName,
                                      const std::string& argHelp, const std::string& prefix,
                                      std::function<void(const json&)> pretty, ResolveFn resolve) {
  auto* cmd = parent->add_subcommand("inspect", help);
  InspectArgs& args = inspects_.emplace_back();
  cmd->add_option(argName, args.names, argHelp)->required();
  if (pretty) cmd->add_flag("--pretty", args.pretty, "Print the information in a human friendly format");
  cmd->add_option("-f,--format", args.format, "Format output using a custom template ('{{.State.Pid}}')");
  // docker prints the array of the objects found and an error line for each
  // missing one, and exits 1 if any was missing.
  bind(cmd, [this, &args, prefix, pretty = std::move(pretty), resolve = std::move(resolve)] {
    const Daemon d = daemon();
    json found = json::array();
    const int code = forEachItem(args.names, [&](const std::string& name) {
      const std::optional<std::string> target = resolve ? resolve(d, name) : name;
      if (!target) return false;
      auto answer = d.call("GET", prefix + escapePath(*target));
      if (answer) found.push_back(std::move(*answer));
      return answer.has_value();
    });
    if (!args.format.empty()) {
      for (const auto& item : found) {
        auto text = renderInspectFormat(args.format, item);
        if (!text.ok()) {
          std::cerr << text.error().message << "\n";
          return 1;
        }
        std::cout << *text << "\n";
      }
    } else if (args.pretty) {
      for (const auto& item : found) pretty(item);
    } else {
      std::cout << found.dump(4) << "\n";
    }
    return code;
  });
  return cmd;
}

}  // namespace skiff::cli
