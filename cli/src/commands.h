#pragma once
// The shapes the CLI's commands share, so main.cc reads as a table of them:
// the daemon as one call per request (errors printed in docker's words), and
// builders for the `ls`/`ps` and `inspect` commands. Every action runs after
// the whole line is parsed (so -H anywhere counts): a builder only stores it.
// Part of the executable (it needs CLI11); the pure parts are in list.h.

#include <CLI/CLI.hpp>
#include <deque>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/cli/list.h"
#include "skiff/cli/views.h"
#include "skiff/common/result.h"

namespace skiff::cli {

// The daemon, as the commands see it: one call = one request; on any failure
// the error is printed (docker's wording) and nullopt returned.
class Daemon {
 public:
  explicit Daemon(std::string host) : host_(std::move(host)) {}

  // notFound: set to whether the answer was a 404, which is then not printed.
  std::optional<nlohmann::json> call(const std::string& method, const std::string& path,
                                     const std::optional<nlohmann::json>& body = std::nullopt,
                                     bool* notFound = nullptr) const;

  const std::string& host() const { return host_; }

 private:
  std::string host_;
};

// Prints answer[key] to `out`: each line of an array, or the string.
void printMessages(const nlohmann::json& answer, const std::string& key = "messages", std::ostream& out = std::cout);

// Runs `each` on every item; the exit code is 1 if any failed, after all were
// tried (docker's way for rm, scale and inspect of several objects).
template <typename T, typename Fn>
int forEachItem(const std::vector<T>& items, Fn each) {
  int code = 0;
  for (const auto& item : items) {
    if (!each(item)) code = 1;
  }
  return code;
}

// A list's rows from the daemon's answer; an error is printed and exits 1.
using RowsFn = std::function<Result<std::vector<Row>>(const nlohmann::json& answer, const ListFlags& flags)>;
// The request path of a list, which may depend on its flags (-a, the target).
using PathFn = std::function<std::string(const ListFlags& flags)>;
// What an `inspect` argument names in the request path; nullopt when it
// cannot be resolved (the error already printed). `node inspect self` asks
// the daemon who this node is.
using ResolveFn = std::function<std::optional<std::string>(const Daemon& daemon, const std::string& name)>;

// The body of every list: check the template (a typo in --format costs no
// round trip), GET path, turn the answer into rows, print. Returns the exit code.
int runList(const Daemon& daemon, const ListView& view, const ListFlags& flags, const std::string& path,
            const RowsFn& rows);

class Commands {
 public:
  // `action` receives the chosen command's body; `host` is read when it runs.
  Commands(std::function<int()>& action, const std::string& host) : action_(action), host_(host) {}

  Daemon daemon() const { return Daemon(host_); }

  // Makes fn the action when cmd is the command given.
  void bind(CLI::App* cmd, std::function<int()> fn);

  // An `ls`/`ps` body for cmd: template, GET path, rows, print. The caller
  // adds the flags (in docker's order) to the returned ListFlags.
  ListFlags& addList(CLI::App* cmd, const ListView& view, PathFn path, RowsFn rows);

  // `<parent> ls` (alias list; or another name) with --format, then -q unless
  // quietHelp is empty.
  CLI::App* addListCommand(CLI::App* parent, const std::string& help, const std::string& formatHelp,
                           const std::string& quietHelp, const ListView& view, const std::string& path, RowsFn rows,
                           const std::string& name = "ls");

  // `<parent> ps TARGET` of tasks, GET /v1/tasks?<queryKey>=TARGET, with
  // --format, --no-trunc and -q.
  CLI::App* addTaskPsCommand(CLI::App* parent, const std::string& help, const std::string& argName,
                             const std::string& argHelp, const std::string& queryKey, RowsFn rows);

  // `<parent> inspect NAME...`: GET prefix+NAME for each, printed as one JSON
  // array (docker's 4-space indent); with `pretty`, a --pretty flag prints
  // each found object with it instead; with `resolve`, each NAME goes through
  // it first.
  CLI::App* addInspectCommand(CLI::App* parent, const std::string& help, const std::string& argName,
                              const std::string& argHelp, const std::string& prefix,
                              std::function<void(const nlohmann::json&)> pretty = {}, ResolveFn resolve = {});

 private:
  struct InspectArgs {
    std::vector<std::string> names;
    bool pretty = false;
    std::string format;  // -f/--format: docker's {{.State.Pid}}
  };

  std::function<int()>& action_;
  const std::string& host_;
  // Deques: CLI11 keeps pointers into these, so they must not move.
  std::deque<ListFlags> lists_;
  std::deque<InspectArgs> inspects_;
};

}  // namespace skiff::cli
