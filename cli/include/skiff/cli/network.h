#pragma once
// `skiff network create`'s flags -> the body of POST /v1/networks/NAME: the
// network's JSON as a stack file's network is written (driver, attachable,
// internal, ipam.config, driver_opts, labels), so netd reads and checks it
// the same way. Errors name the flag and the value, as docker's do. Pure.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

struct NetworkFlags {
  std::string driver = "overlay";   // -d
  bool attachable = false;          // --attachable
  bool internal = false;            // --internal
  std::string subnet;               // --subnet 10.9.0.0/24
  std::string gateway;              // --gateway 10.9.0.1
  std::vector<std::string> opts;    // -o com.docker.network.driver.mtu=1400
  std::vector<std::string> labels;  // --label k=v
};

[[nodiscard]] Result<nlohmann::json> networkCreateBody(const NetworkFlags& flags);

}  // namespace skiff::cli
