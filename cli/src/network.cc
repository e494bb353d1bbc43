#include "skiff/cli/network.h"

namespace skiff::cli {

namespace {

// "k=v" items of a flag into an object; "k" alone is k="" (docker's -o and
// --label take both).
Result<nlohmann::json> keyValues(const std::vector<std::string>& items, const char* flag) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& item : items) {
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    if (key.empty())
      return Error::msg("invalid argument \"" + item + "\" for \"" + flag + "\" flag: a key is required");
    out[key] = eq == std::string::npos ? "" : item.substr(eq + 1);
  }
  return out;
}

}  // namespace

Result<nlohmann::json> networkCreateBody(const NetworkFlags& f) {
  if (f.gateway.size() > 0 && f.subnet.empty())
    return Error::msg("invalid argument \"" + f.gateway + "\" for \"--gateway\" flag: it needs --subnet");
  auto opts = keyValues(f.opts, "-o, --opt");
  if (!opts.ok()) return opts.error();
  auto labels = keyValues(f.labels, "--label");
  if (!labels.ok()) return labels.error();
  nlohmann::json config = nlohmann::json::array();
  if (!f.subnet.empty()) config.push_back({{"subnet", f.subnet}, {"gateway", f.gateway}});
  return nlohmann::json{{"driver", f.driver},           {"attachable", f.attachable}, {"internal", f.internal},
                        {"ipam", {{"config", config}}}, {"driver_opts", *opts},       {"labels", *labels}};
}

}  // namespace skiff::cli
