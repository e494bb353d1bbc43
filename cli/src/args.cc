#include "skiff/cli/args.h"

#include <cctype>
#include <limits>

#include "skiff/runtime/names.h"

namespace skiff::cli {

Result<std::vector<ScaleRequest>> parseScaleArgs(const std::vector<std::string>& args) {
  if (args.empty()) return Error::msg("\"skiff service scale\" requires at least 1 argument.");
  std::vector<ScaleRequest> out;
  for (const auto& arg : args) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
      return Error::msg("Invalid scale specifier '" + arg + "'.");
    }
    ScaleRequest request;
    request.service = arg.substr(0, eq);
    const std::string value = arg.substr(eq + 1);
    uint64_t replicas = 0;
    bool ok = value.size() <= 19;
    for (char c : value) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      replicas = replicas * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok) {
      return Error::msg(request.service + ": invalid replicas value " + value + ": must be a non-negative integer");
    }
    request.replicas = replicas;
    out.push_back(std::move(request));
  }
  return out;
}

Result<std::string> normalizeImageTag(std::string_view ref) {
  if (ref.empty()) return Error::msg("invalid reference format: empty image name");
  // The tag is after the last ':' that follows the last '/', so a registry
  // port ("host:5000/name") is not mistaken for a tag.
  const size_t slash = ref.rfind('/');
  const size_t colon = ref.rfind(':');
  std::string repository(ref);
  std::string tag = "latest";
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    repository = std::string(ref.substr(0, colon));
    tag = std::string(ref.substr(colon + 1));
  }
  if (repository.empty() || tag.empty() || repository.back() == '/') {
    return Error::msg("invalid reference format: \"" + std::string(ref) + "\"");
  }
  for (char c : repository) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      return Error::msg("invalid reference format: repository name must be lowercase");
    }
  }
  return repository + ":" + tag;
}

Status validateStackName(std::string_view name) { return runtime::checkName(runtime::NameKind::kStack, name); }

}  // namespace skiff::cli
