#include "skiff/cli/service_update.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>

#include "skiff/runtime/compose.h"
#include "skiff/runtime/stack.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

// docker caps the per-slot bars at 20 (maxProgressBars); above, only the
// overall line is shown.
constexpr size_t kMaxProgressBars = 20;
// docker's task states in order, as its progress counts them (stateToProgress).
constexpr uint64_t kRunningProgress = 9;
// The widest state word ("preparing"): states are padded to it.
constexpr size_t kStateWidth = 9;
// docker's truncError: an error on one line of at most 75 characters.
constexpr size_t kErrorWidth = 75;

Error flagError(std::string_view flag, std::string_view value, const std::string& reason) {
  return Error::msg("invalid argument \"" + std::string(value) + "\" for \"" + std::string(flag) +
                    "\" flag: " + reason);
}

Result<uint64_t> parseUnsignedFlag(std::string_view flag, std::string_view value) {
  uint64_t n = 0;
  bool ok = !value.empty() && value.size() <= 19;
  for (char c : value) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok) return flagError(flag, value, "must be a non-negative integer");
  return n;
}

template <typename Kind>
Result<std::string> kindFlag(std::string_view flag, std::string_view value) {
  if (!runtime::parseKind<Kind>(value)) return flagError(flag, value, "must be one of " + runtime::kindWords<Kind>());
  return std::string(value);
}

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

uint64_t number(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0)) return 0;
  return it->get<uint64_t>();
}

bool flag(const json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const json* path(const json& root, std::initializer_list<const char*> keys) {
  const json* node = &root;
  for (const char* key : keys) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// docker's numberedStates; 0 for the states after running (complete,
// failed, shutdown, rejected, orphaned: the task no longer moves).
uint64_t stateProgress(const std::string& state) {
  static const std::map<std::string, uint64_t> kProgress = {{"new", 1},      {"allocated", 2}, {"pending", 3},
                                                            {"assigned", 4}, {"accepted", 5},  {"preparing", 6},
                                                            {"ready", 7},    {"starting", 8},  {"running", 9}};
  auto it = kProgress.find(state);
  return it == kProgress.end() ? 0 : it->second;
}

std::string padded(std::string word) {
  if (word.size() < kStateWidth) word.append(kStateWidth - word.size(), ' ');
  return word;
}

std::string oneLineError(std::string error) {
  std::replace(error.begin(), error.end(), '\n', ' ');
  if (error.size() > kErrorWidth) {
    error.resize(kErrorWidth - 1);
    error += "\xE2\x80\xA6";  // …
  }
  return error;
}

struct TaskView {
  std::string state;  // lower case: "running"
  bool desiredRunning = false;
  bool ready = false;
  uint64_t specVersion = 0;
  std::string error;
  bool done() const { return state == "running" && ready; }
  bool moving() const { return desiredRunning && stateProgress(state) > 0; }
};

TaskView viewOf(const json& t) {
  TaskView v;
  v.state = lower(text(t, "currentState"));
  v.desiredRunning = lower(text(t, "desiredState")) == "running";
  v.ready = flag(t, "ready");
  v.specVersion = number(t, "specVersion");
  v.error = text(t, "error");
  return v;
}

// The line of one slot (or node) from its tasks, newest first as netd lists
// them: the up-to-date task that is done, else one still moving towards
// running, else the newest up-to-date one; without any, what the old one does.
std::string unitLine(const std::vector<TaskView>& tasks, uint64_t version, bool* done) {
  const TaskView* pick = nullptr;
  int best = 0;
  for (const auto& t : tasks) {
    if (t.specVersion != version) continue;
    int rank = t.done() ? 3 : t.moving() ? 2 : 1;
    if (rank > best) {
      best = rank;
      pick = &t;
    }
  }
  *done = pick != nullptr && pick->done();
  if (pick == nullptr) {
    for (const auto& t : tasks) {
      if (t.state == "running" || t.state == "starting") {
        return t.desiredRunning ? "waiting (old task running)" : "waiting (old task stopping)";
      }
    }
    return "waiting";
  }
  if (pick->done()) return padded("running") + " " + progressBar(kRunningProgress, kRunningProgress);
  if (pick->moving()) {
    // Running but not yet in rotation (health check or port not answering):
    // still starting, as far as a user's requests are concerned.
    std::string word = pick->state == "running" ? "starting" : pick->state;
    return padded(word) + " " + progressBar(stateProgress(word), kRunningProgress);
  }
  return pick->error.empty() ? pick->state : oneLineError(pick->error);
}

}  // namespace

Result<double> parseDurationFlag(std::string_view flag, std::string_view value) {
  try {
    return runtime::parseDurationSeconds(value);
  } catch (const std::invalid_argument& e) {
    return flagError(flag, value, e.what());
  }
}

Result<json> serviceUpdateBody(const ServiceUpdateArgs& args) {
  const bool others = args.image || !args.envAdd.empty() || !args.envRm.empty() || args.replicas || args.force ||
                      args.parallelism || args.delay || args.order || args.failureAction || args.monitor ||
                      args.maxFailureRatio;
  if (args.rollback) {
    if (others) return Error::msg("other flags may not be combined with --rollback");
    return json::object();
  }
  json body = json::object();
  if (args.image) {
    if (args.image->empty()) return flagError("--image", *args.image, "an image name cannot be empty");
    body["image"] = *args.image;
  }
  if (!args.envAdd.empty()) {
    json add = json::array();
    for (const auto& e : args.envAdd) {
      // docker's ValidateEnv: a variable needs a name.
      if (e.empty() || e[0] == '=') return Error::msg("invalid environment variable: " + e);
      add.push_back(e);
    }
    body["envAdd"] = add;
  }
  if (!args.envRm.empty()) {
    json rm = json::array();
    for (const auto& e : args.envRm) {
      // docker's envKey: "KEY=..." removes KEY.
      std::string key = e.substr(0, e.find('='));
      if (key.empty()) return Error::msg("invalid environment variable: " + e);
      rm.push_back(key);
    }
    body["envRm"] = rm;
  }
  if (args.replicas) {
    auto n = parseUnsignedFlag("--replicas", *args.replicas);
    if (!n) return n.error();
    body["replicas"] = n.value();
  }
  if (args.force) body["force"] = true;
  json config = json::object();
  if (args.parallelism) {
    auto n = parseUnsignedFlag("--update-parallelism", *args.parallelism);
    if (!n) return n.error();
    config["parallelism"] = n.value();
  }
  if (args.delay) {
    auto d = parseDurationFlag("--update-delay", *args.delay);
    if (!d) return d.error();
    config["delay"] = d.value();
  }
  if (args.order) {
    auto o = kindFlag<runtime::UpdateOrder>("--update-order", *args.order);
    if (!o) return o.error();
    config["order"] = o.value();
  }
  if (args.failureAction) {
    auto a = kindFlag<runtime::FailureAction>("--update-failure-action", *args.failureAction);
    if (!a) return a.error();
    config["failureAction"] = a.value();
  }
  if (args.monitor) {
    auto d = parseDurationFlag("--update-monitor", *args.monitor);
    if (!d) return d.error();
    config["monitor"] = d.value();
  }
  if (args.maxFailureRatio) {
    const std::string& v = *args.maxFailureRatio;
    char* end = nullptr;
    const double ratio = v.empty() ? NAN : std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(ratio)) {
      return flagError("--update-max-failure-ratio", v, "must be a number");
    }
    if (ratio < 0 || ratio > 1) return flagError("--update-max-failure-ratio", v, "must be between 0 and 1");
    config["maxFailureRatio"] = ratio;
  }
  if (!config.empty()) body["updateConfig"] = config;
  return body;
}

std::string progressBar(uint64_t current, uint64_t total) {
  // jsonmessage's JSONProgress: percent halved, at most 50 '='.
  uint64_t filled = total == 0 ? 0 : static_cast<uint64_t>(static_cast<double>(current) / total * 100) / 2;
  filled = std::min<uint64_t>(filled, 50);
  return "[" + std::string(filled, '=') + ">" + std::string(50 - filled, ' ') + "]";
}

ProgressFrame UpdateProgress::observe(const json& service, const json& tasks) {
  ProgressFrame frame;
  const bool firstLook = looks_++ == 0;
  const uint64_t version = path(service, {"Version", "Index"}) ? number(service["Version"], "Index") : 0;
  const json* status = path(service, {"UpdateStatus"});
  const bool hasStatus = status != nullptr && status->is_object();
  const std::string state = hasStatus ? text(*status, "State") : "";
  const std::string message = hasStatus ? text(*status, "Message") : "";

  // An update the daemon turned into a rollback: say why once. A finished
  // rollback seen at the first look belongs to an earlier update.
  if (!rollbackCommand_ && (state == "rollback_started" || (state.starts_with("rollback_") && !firstLook))) {
    if (!rollbackSeen_ && !message.empty()) frame.notes.push_back("rollback: " + message);
    rollbackSeen_ = true;
  }

  // The units: slots 1..replicas, or in global mode the nodes with a task.
  std::map<std::string, std::vector<TaskView>> byUnit;
  std::vector<std::string> units;
  const json* replicated = path(service, {"Spec", "Mode", "Replicated"});
  const bool global = replicated == nullptr && path(service, {"Spec", "Mode", "Global"}) != nullptr;
  if (!global) {
    const uint64_t replicas = replicated ? number(*replicated, "Replicas") : 0;
    for (uint64_t s = 1; s <= replicas; ++s) units.push_back(std::to_string(s));
  }
  std::set<std::string> nodes;
  if (tasks.is_array()) {
    for (const auto& t : tasks) {
      if (!t.is_object()) continue;
      std::string unit = global ? text(t, "node") : std::to_string(number(t, "slot"));
      TaskView v = viewOf(t);
      if (global && (v.desiredRunning || v.specVersion == version) && nodes.insert(unit).second) units.push_back(unit);
      byUnit[unit].push_back(std::move(v));
    }
  }
  if (global) std::sort(units.begin(), units.end());

  uint64_t done = 0;
  std::vector<std::string> lines;
  for (const auto& unit : units) {
    bool unitDone = false;
    std::string line = unitLine(byUnit[unit], version, &unitDone);
    if (unitDone) ++done;
    const std::string label = global ? unit : unit + "/" + std::to_string(units.size());
    lines.push_back(label + ": " + line);
  }
  const bool rollingBack = state.starts_with("rollback_") && (rollbackSeen_ || rollbackCommand_);
  frame.bars.push_back("overall progress: " + std::string(rollingBack ? "rolling back update: " : "") +
                       std::to_string(done) + " out of " + std::to_string(units.size()) + " tasks");
  if (units.size() <= kMaxProgressBars) frame.bars.insert(frame.bars.end(), lines.begin(), lines.end());

  // docker's errors (cli/command/service/progress).
  if (state == "paused") {
    frame.end = ProgressFrame::End::kFailed;
    frame.finalLine = "service update paused: " + message;
  } else if (state == "rollback_paused") {
    frame.end = ProgressFrame::End::kFailed;
    frame.finalLine = "service rollback paused: " + message;
  } else if (done == units.size() && (!hasStatus || state == "completed" || state == "rollback_completed")) {
    if (state == "rollback_completed" && rollbackSeen_) {
      frame.end = ProgressFrame::End::kFailed;
      frame.finalLine = "service rolled back: " + message;
    } else {
      frame.end = ProgressFrame::End::kConverged;
      frame.finalLine = "verify: Service converged";
    }
  }
  return frame;
}

std::string ProgressPrinter::render(const ProgressFrame& frame) {
  const bool converged = frame.end == ProgressFrame::End::kConverged;
  std::string out;
  if (terminal_) {
    if (frame.notes.empty() && !converged && frame.bars == shown_) return out;
    // Back to the first bar, clear below, write notes and bars again.
    if (!shown_.empty()) out += "\x1b[" + std::to_string(shown_.size()) + "A\x1b[J";
    for (const auto& n : frame.notes) out += n + "\n";
    for (const auto& b : frame.bars) out += b + "\n";
  } else {
    for (const auto& n : frame.notes) out += n + "\n";
    for (size_t i = 0; i < frame.bars.size(); ++i) {
      if (frame.bars.size() != shown_.size() || frame.bars[i] != shown_[i]) out += frame.bars[i] + "\n";
    }
  }
  shown_ = frame.bars;
  if (converged) out += frame.finalLine + "\n";
  return out;
}

}  // namespace skiff::cli
