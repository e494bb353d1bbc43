#pragma once
// Internal to the container concern: the spec as it crosses from netd to the
// in-container shim (JSON on fd 3).

#include <nlohmann/json.hpp>

#include "skiff/runtime/container.h"

namespace skiff::runtime::detail {

nlohmann::json specToJson(const ContainerSpec& spec);
ContainerSpec specFromJson(const nlohmann::json& json);  // throws nlohmann::json::exception, std::invalid_argument

// Names of the files the launcher prepares in stateDir.
inline std::string hostnameFile(const ContainerSpec& s) { return s.stateDir + "/hostname"; }
inline std::string hostsFile(const ContainerSpec& s) { return s.stateDir + "/hosts"; }
inline std::string resolvFile(const ContainerSpec& s) { return s.stateDir + "/resolv.conf"; }
inline std::string rootfsDir(const ContainerSpec& s) { return s.stateDir + "/rootfs"; }
inline std::string upperDir(const ContainerSpec& s) { return s.stateDir + "/upper"; }
inline std::string workDir(const ContainerSpec& s) { return s.stateDir + "/work"; }
inline std::string emptyLowerDir(const ContainerSpec& s) { return s.stateDir + "/empty"; }
inline std::string effectiveHostname(const ContainerSpec& s) {
  return s.hostname.empty() ? s.id.substr(0, 12) : s.hostname;
}

}  // namespace skiff::runtime::detail
