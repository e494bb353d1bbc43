#pragma once
// StackSpec: the normalized form of a compose file, as `skiff stack config`
// prints it and as the CLI sends it to netd on deploy. Every value here is
// already interpolated, defaulted and converted to units (bytes, seconds,
// cores), so netd never sees YAML. Pure data; JSON conversion in
// stack_json.cc is the one wire format (toJson/fromJson round-trip exactly).

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::runtime {

// The kinds a spec names with a word. Each has the word compose writes
// (toString) and its inverse (parseKind), and JSON, YAML and the views use
// those words; the code compares kinds, not text.
enum class Protocol { kTcp, kUdp };                         // tcp | udp
enum class PortMode { kIngress, kHost };                    // ingress | host
enum class MountType { kBind, kVolume, kTmpfs };            // bind | volume | tmpfs
enum class RestartCondition { kNone, kOnFailure, kAny };    // none | on-failure | any
enum class FailureAction { kPause, kContinue, kRollback };  // pause | continue | rollback
enum class UpdateOrder { kStopFirst, kStartFirst };         // stop-first | start-first
enum class ServiceMode { kReplicated, kGlobal };            // replicated | global
enum class EndpointMode { kVip, kDnsrr };                   // vip | dnsrr (dnsrr: not supported yet)

template <typename Kind>
struct KindNames;  // kNames: every value with its word, in declaration order
#define SKIFF_KIND_NAMES(Kind, ...)                                         \
  template <>                                                               \
  struct KindNames<Kind> {                                                  \
    static constexpr std::pair<Kind, const char*> kNames[] = {__VA_ARGS__}; \
  };
SKIFF_KIND_NAMES(Protocol, {Protocol::kTcp, "tcp"}, {Protocol::kUdp, "udp"})
SKIFF_KIND_NAMES(PortMode, {PortMode::kIngress, "ingress"}, {PortMode::kHost, "host"})
SKIFF_KIND_NAMES(MountType, {MountType::kBind, "bind"}, {MountType::kVolume, "volume"}, {MountType::kTmpfs, "tmpfs"})
SKIFF_KIND_NAMES(RestartCondition, {RestartCondition::kNone, "none"}, {RestartCondition::kOnFailure, "on-failure"},
                 {RestartCondition::kAny, "any"})
SKIFF_KIND_NAMES(FailureAction, {FailureAction::kPause, "pause"}, {FailureAction::kContinue, "continue"},
                 {FailureAction::kRollback, "rollback"})
SKIFF_KIND_NAMES(UpdateOrder, {UpdateOrder::kStopFirst, "stop-first"}, {UpdateOrder::kStartFirst, "start-first"})
SKIFF_KIND_NAMES(ServiceMode, {ServiceMode::kReplicated, "replicated"}, {ServiceMode::kGlobal, "global"})
SKIFF_KIND_NAMES(EndpointMode, {EndpointMode::kVip, "vip"}, {EndpointMode::kDnsrr, "dnsrr"})
#undef SKIFF_KIND_NAMES

template <typename Kind>
const char* toString(Kind k) {
  for (const auto& [kind, name] : KindNames<Kind>::kNames) {
    if (kind == k) return name;
  }
  return "?";
}
template <typename Kind>
std::optional<Kind> parseKind(std::string_view word) {
  for (const auto& [kind, name] : KindNames<Kind>::kNames) {
    if (word == name) return kind;
  }
  return std::nullopt;
}
// "tcp, udp": the words an error message offers.
template <typename Kind>
std::string kindWords() {
  std::string out;
  for (const auto& [kind, name] : KindNames<Kind>::kNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

struct PortSpec {
  uint16_t target = 0;     // container port
  uint16_t published = 0;  // 0 = not published
  Protocol protocol = Protocol::kTcp;
  PortMode mode = PortMode::kIngress;
  std::string hostIp;  // "" = all addresses
  bool operator==(const PortSpec&) const = default;
};

struct RestartPolicy {
  RestartCondition condition = RestartCondition::kAny;
  double delaySeconds = 5;   // swarm's default
  uint64_t maxAttempts = 0;  // 0 = unlimited
  double windowSeconds = 0;  // 0 = decide immediately
  bool operator==(const RestartPolicy&) const = default;
};

struct UpdateConfig {
  uint64_t parallelism = 1;
  double delaySeconds = 0;
  FailureAction failureAction = FailureAction::kPause;
  double monitorSeconds = 5;
  double maxFailureRatio = 0;
  UpdateOrder order = UpdateOrder::kStopFirst;
  bool operator==(const UpdateConfig&) const = default;
};

struct Resources {
  double cpus = 0;          // cores; 0 = unlimited
  int64_t memoryBytes = 0;  // 0 = unlimited
  int64_t pids = 0;         // 0 = unlimited
  bool operator==(const Resources&) const = default;
};

struct Healthcheck {
  std::vector<std::string> test;  // ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]
  double intervalSeconds = 30;
  double timeoutSeconds = 30;
  double startPeriodSeconds = 0;
  uint64_t retries = 3;
  bool disable = false;
  bool operator==(const Healthcheck&) const = default;
};

struct MountSpec {
  MountType type = MountType::kVolume;
  std::string source;  // host path (bind) or volume name ("" = anonymous)
  std::string target;  // path in the container
  bool readOnly = false;
  bool operator==(const MountSpec&) const = default;
};

struct ConfigRef {
  std::string source;  // name in StackSpec::configs
  std::string target;  // path in the container (default "/<source>")
  uint32_t mode = 0444;
  bool operator==(const ConfigRef&) const = default;
};

struct ServiceNetwork {
  std::string name;  // key in StackSpec::networks
  std::vector<std::string> aliases;
  std::string ipv4Address;
  bool operator==(const ServiceNetwork&) const = default;
};

struct ServiceSpec {
  std::string name;  // as in the file: "web" (netd prefixes the stack)
  std::string image;
  std::optional<std::vector<std::string>> command;     // overrides the image's CMD
  std::optional<std::vector<std::string>> entrypoint;  // overrides the image's ENTRYPOINT
  std::map<std::string, std::string> environment;
  std::string hostname;  // may hold swarm templates, kept verbatim
  std::string workingDir;
  std::string user;
  std::vector<PortSpec> ports;
  std::vector<ServiceNetwork> networks;
  std::vector<MountSpec> volumes;
  std::vector<ConfigRef> configs;
  std::map<std::string, std::string> labels;           // service labels (deploy.labels)
  std::map<std::string, std::string> containerLabels;  // labels
  ServiceMode mode = ServiceMode::kReplicated;
  uint64_t replicas = 1;
  Resources limits;
  Resources reservations;
  RestartPolicy restartPolicy;
  UpdateConfig updateConfig;
  // deploy.rollback_config: how a rollback replaces the slots (docker's
  // defaults are update_config's); failureAction is never kRollback here.
  UpdateConfig rollbackConfig;
  std::vector<std::string> placementConstraints;  // as written; each parses (see below)
  uint64_t maxReplicasPerNode = 0;                // deploy.placement.max_replicas_per_node; 0 = no limit
  std::optional<Healthcheck> healthcheck;
  double stopGracePeriodSeconds = 10;
  std::string stopSignal = "SIGTERM";
  // security_opt seccomp=...: "" = Docker's default profile, "unconfined" = no
  // filter, else the profile file (absolute), whose JSON the CLI read into
  // seccompProfile (as config files are read client-side).
  std::string seccomp;
  std::string seccompProfile;
  bool operator==(const ServiceSpec&) const = default;
};

struct NetworkSpec {
  std::string name;  // as in the file: "webnet"
  std::string driver = "overlay";
  bool attachable = false;
  bool external = false;
  // The existing network an external one stands for: compose's `name:` (or
  // `external: {name: x}`); "" = the key. Not used for a network the stack makes.
  std::string externalName;
  bool internal = false;
  std::string subnet;  // "" = from the cluster pool
  std::string gateway;
  std::map<std::string, std::string> driverOpts;
  std::map<std::string, std::string> labels;
  bool operator==(const NetworkSpec&) const = default;
};

struct VolumeSpec {
  std::string name;
  std::string driver = "local";
  bool external = false;
  std::map<std::string, std::string> driverOpts;
  std::map<std::string, std::string> labels;
  bool operator==(const VolumeSpec&) const = default;
};

struct ConfigSpec {
  std::string name;
  std::string file;     // absolute path, resolved against the compose file's folder
  std::string content;  // the file's bytes, read client-side (so netd needs no access)
  bool external = false;
  bool operator==(const ConfigSpec&) const = default;
};

struct StackSpec {
  std::string version;
  std::map<std::string, ServiceSpec> services;  // ordered by name
  std::map<std::string, NetworkSpec> networks;
  std::map<std::string, VolumeSpec> volumes;
  std::map<std::string, ConfigSpec> configs;
  bool operator==(const StackSpec&) const = default;
};

// One placement constraint ("node.labels.zone == a"), parsed by swarmkit's
// rules (manager/constraint): "==" is looked for before "!=", key and value
// are trimmed, the key is [A-Za-z_][A-Za-z0-9._-]+ and the value holds no
// character that is or may become an operator. The one rule for the compose
// parser (`stack config` refuses a bad constraint with its line), the API and
// the scheduler, which matches the parsed form against nodes.
struct PlacementConstraint {
  std::string key;    // as written: "node.labels.zone" (attribute names match case-insensitively)
  bool equal = true;  // "==" (else "!=")
  std::string value;
  bool operator==(const PlacementConstraint&) const = default;
};

// Errors in docker's words: "constraint expected one operator from ==, !=",
// "key 'node hostname' is invalid", "value '>a' is invalid".
Result<PlacementConstraint> parsePlacementConstraint(const std::string& text);

// The wire/print format. toJson writes every field (docker's `stack config
// --format json` style: memory in bytes, cpus a number, ports as long-syntax
// objects). fromJson throws std::invalid_argument naming the bad field.
nlohmann::json toJson(const StackSpec& stack);
StackSpec stackFromJson(const nlohmann::json& json);

}  // namespace skiff::runtime
