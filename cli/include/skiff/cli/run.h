#pragma once
// `skiff run`'s flags -> the body of POST /v1/containers: the container as a
// service spec, made by the compose parser from the document the flags
// describe, so a published port, a bind mount or a memory value means what it
// means in a compose file. An error names the flag and the value, as docker's
// do: invalid argument "4000:x" for "-p, --publish" flag: .... Pure.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

struct RunFlags {
  std::string image;
  std::vector<std::string> command;   // what follows the image: the image's CMD replaced
  std::string name;                   // "" = a name made up (docker's adjective_surname)
  bool autoRemove = false;            // --rm
  std::vector<std::string> publish;   // -p [ip:]host:container[/udp]
  std::vector<std::string> env;       // -e K=V, or K: its value here (absent: dropped)
  std::vector<std::string> volumes;   // -v /host:/ctr[:ro], or name:/ctr
  std::string restart = "no";         // no | always | unless-stopped | on-failure[:N]
  std::string cpus;                   // --cpus 0.5
  std::string memory;                 // -m 64m
  std::vector<std::string> networks;  // --network
  std::string workdir;                // -w
  std::string user;                   // -u
  std::string stopTimeout;            // --stop-timeout seconds
};

// {"name", "service": <the service's spec JSON>, "autoRemove"}. cwd: where a
// relative bind source resolves; env: the CLI's environment (for -e K).
[[nodiscard]] Result<nlohmann::json> runBody(const RunFlags& flags, const std::string& cwd,
                                             const std::map<std::string, std::string>& env);

// docker's name for an unnamed container: "<adjective>_<surname>".
std::string madeUpContainerName();

}  // namespace skiff::cli
