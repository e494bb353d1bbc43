#pragma once
// Internal to the container concern: the spec as it crosses from netd to the
// in-container shim (JSON on fd 3), and the exec helper's protocol.

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

// The environment of an exec'd command (pure): the container's, then the
// command's own (a key given again replaces the earlier value in place),
// then PATH, HOSTNAME and HOME where neither set them, as the shim does.
std::vector<std::string> execEnvironment(const std::vector<std::string>& containerEnv,
                                         const std::vector<std::string>& execEnv, const std::string& hostname,
                                         const std::string& home);

// The exec helper (`<selfExe> __skiff-exec <requestFd> <statusFd>`, see
// container.h): reads {"pid", "container" (specToJson), "argv", "env",
// "timeoutMs", "cgroupProcs"} on requestFd to EOF, runs the command with
// stdout and stderr on its own fds 1 and 2, and writes one of
// "exit <code>", "timeout", "error <text>" on statusFd before it exits.
[[noreturn]] void runExecHelper(int requestFd, int statusFd);

}  // namespace skiff::runtime::detail
