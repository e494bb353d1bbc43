#pragma once
// Argument checks the CLI does before it talks to netd, with docker's error
// texts, so a typo costs no round trip and reads like docker's. Pure.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

struct ScaleRequest {
  std::string service;
  uint64_t replicas = 0;
};

// `service scale web=3 db=1`. Errors, as docker words them:
//   Invalid scale specifier 'web'.
//   web: invalid replicas value x: must be a non-negative integer
[[nodiscard]] Result<std::vector<ScaleRequest>> parseScaleArgs(const std::vector<std::string>& args);

// "name" -> "name:latest"; "host:5000/name" -> "host:5000/name:latest";
// "name:tag" unchanged. Error for an empty name or tag, or upper case in the
// repository (docker: "invalid reference format: repository name must be lowercase").
[[nodiscard]] Result<std::string> normalizeImageTag(std::string_view ref);

// The stack name rule every part of skiff shares (skiff/runtime/names.h:
// docker's [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 63 characters); the error
// names the value.
[[nodiscard]] Status validateStackName(std::string_view name);

}  // namespace skiff::cli
