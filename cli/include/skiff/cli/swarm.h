#pragma once
// The pure parts of `skiff swarm ...` and `skiff node ...`: the request
// bodies they send (netd/API.md, swarm and node rows), the checks made before
// asking the daemon, and the texts they print, in docker's words. The
// commands that wire these to flags and the daemon are in
// cli/src/swarm_commands.h. Pure; single-threaded use.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

// The cluster port: a manager address given without one means this port.
inline constexpr std::string_view kSwarmPort = "2377";
inline constexpr std::string_view kDefaultListenAddr = "0.0.0.0:2377";

// "HOST" -> "HOST:2377", "HOST:PORT" unchanged, "[::1]" and a bare "::1" ->
// "[::1]:2377"; for a listen address an empty host means 0.0.0.0 (":4000" ->
// "0.0.0.0:4000"), as docker's NodeAddrOption. Error for an empty address or
// a port that is not 1-65535, naming the value.
[[nodiscard]] Result<std::string> withSwarmPort(std::string_view addr, bool emptyHostIsAny = false);

// `swarm init`: the text after the daemon's answer
// {"nodeId","workerToken","managerAddr"}, docker's with "skiff" for "docker".
std::string swarmInitText(const nlohmann::json& answer);

// `swarm join-token ROLE`: only "worker" and "manager" (docker: "unknown role X").
[[nodiscard]] Status validateJoinTokenRole(std::string_view role);

// `swarm join-token` output from {"role","token","managerAddr"}: the token
// line alone with -q, else the join command, after the "Successfully rotated"
// line when --rotate (not printed with -q, as docker).
std::string joinTokenText(const nlohmann::json& answer, std::string_view role, bool rotate, bool quiet);

// `swarm join` output from {"nodeId","role"}: "This node joined a swarm as a worker.\n".
std::string joinedText(const nlohmann::json& answer);

// What `node update` was given.
struct NodeUpdateFlags {
  std::string availability;           // empty: unchanged
  std::vector<std::string> labelAdd;  // "k=v" or "k" (empty value)
  std::vector<std::string> labelRm;   // keys
};

// The body of POST /v1/nodes/NODE/update: {"availability"?, "labelAdd":{},
// "labelRm":[]}; availability is lower-cased and checked (active, pause,
// drain), label keys must be non-empty without blanks. Errors in docker's words:
//   invalid availability "x", only active, pause and drain are supported
//   invalid argument "=v" for "--label-add" flag: invalid label '=v': empty name
[[nodiscard]] Result<nlohmann::json> nodeUpdateBody(const NodeUpdateFlags& flags);

// `node inspect --pretty` of one docker-like node object (netd/API.md
// NodeInspect), docker's template for the fields skiff has, plus the role.
std::string nodePrettyText(const nlohmann::json& node);

// Go's time.Time String() ("2024-05-01 12:00:00.5 +0000 UTC") of an RFC 3339
// text, as docker prints "Joined at"; the text unchanged when unreadable.
std::string goTimeText(std::string_view rfc3339);

}  // namespace skiff::cli
