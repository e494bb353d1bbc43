#pragma once
// Compose parser: a docker-compose v3 file (as `docker stack deploy` reads it)
// -> StackSpec. It runs in the CLI, once, before anything is sent to netd, so
// it may throw: every problem in the file becomes one ComposeError whose
// what() reads "file:line: key.path: reason naming the value", the way a user
// fixes it. The steps are docker's: YAML (anchors, aliases and `<<` merge keys,
// which yaml-cpp 0.7 lacks and we resolve ourselves) -> ${VAR} interpolation
// of values -> key validation (unsupported keys are one warning, unknown keys
// an error) -> defaults and unit conversion. Pure: no kernel, the only I/O is
// reading the file and `configs: file:` / `env_file:` next to it.

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/runtime/stack.h"

namespace skiff::runtime {

struct ComposeWarning {
  std::string message;
};

// A problem in the compose file; what() = "docker-compose.yml:12:
// services.web.deploy.resources.limits.memory: invalid memory value \"50Q\"".
class ComposeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ComposeResult {
  StackSpec stack;
  // Docker's phrases, e.g. "Ignoring unsupported options: build, restart" and
  // "The \"FOO\" variable is not set. Defaulting to a blank string."
  std::vector<std::string> warnings;
};

// env: variables for ${VAR} interpolation (the CLI passes the process
// environment). Relative paths (bind mounts, configs, env_file) resolve
// against the compose file's folder.
ComposeResult parseComposeFile(const std::string& path, const std::map<std::string, std::string>& env);
ComposeResult parseComposeString(const std::string& yaml, const std::string& fileNameForErrors,
                                 const std::string& baseDir, const std::map<std::string, std::string>& env);

// Docker's binary units (units.RAMInBytes): "50M"=52428800, "1.5G", "512m",
// "1024" (bytes), "100k", "1kb", "2MiB". Throws std::invalid_argument.
int64_t parseMemoryBytes(std::string_view text);

// Go's time.ParseDuration: "1m30s", "10s", "500ms", "1h", "2.5s", "0".
// Throws std::invalid_argument.
double parseDurationSeconds(std::string_view text);

// `skiff stack config` without --format: the normalized stack as YAML with
// compose's keys (memory in bytes, durations in seconds).
std::string toYaml(const StackSpec& stack);

}  // namespace skiff::runtime
