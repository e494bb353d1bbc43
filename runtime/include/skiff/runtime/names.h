#pragma once
// Object names: the one rule for stack, service, network, volume, config and
// secret names, used by the compose parser, the StackSpec JSON reader (and so
// netd's API), the CLI and netd itself. netd joins these names into host paths
// under its data root (volumes/<stack>_<volume>/_data, configs/<stack>/<config>)
// and writes there as root, so a name must never be able to leave its folder:
// no '/', no leading '.', nothing but ASCII letters, digits, '_', '.' and '-'.
//
// The rule is docker's: RestrictedNameChars `[a-zA-Z0-9][a-zA-Z0-9_.-]`
// (moby daemon/names), with swarmkit's length bound: names of services,
// networks and other objects "must be 63 characters or fewer", a DNS label
// (swarmkit manager/controlapi/common.go validateAnnotations). Swarmkit allows
// 64 for configs and secrets; one bound for every kind keeps one rule, and a
// 64th character is the only thing this refuses that docker takes.
//
// Pure and linear (no std::regex, whose recursion a long name can overflow);
// callable from any thread.

#include <cstddef>
#include <string_view>

#include "skiff/common/result.h"

namespace skiff::runtime {

enum class NameKind { kStack, kService, kNetwork, kVolume, kConfig, kSecret };

inline constexpr size_t kMaxNameLength = 63;

// "stack", "service", "network", "volume", "config", "secret".
std::string_view nameKindText(NameKind kind);

// True when name matches [a-zA-Z0-9][a-zA-Z0-9_.-]* and has at most
// kMaxNameLength characters (bytes: anything outside ASCII is refused).
bool isValidName(std::string_view name);

// okStatus() for a valid name; otherwise an error that names the kind and the
// value, e.g. `invalid config name "../x": a name must start with a letter or
// digit and contain only letters, digits, '_', '.' and '-'`. A value too long
// to read is shown by its length and its first characters.
[[nodiscard]] Status checkName(NameKind kind, std::string_view name);

// A container's hostname as sethostname(2) and the container's /etc/hosts
// take it: at most kMaxHostnameLength (HOST_NAME_MAX) bytes, and no control
// character (a newline or a tab would start a new /etc/hosts entry or
// field). Docker leaves this to the kernel, and a replica then fails at every
// start; skiff says it at deploy. A templated value ("web-{{.Task.Slot}}")
// has its characters checked at deploy and its length once expanded, at
// launch.
inline constexpr size_t kMaxHostnameLength = 64;
[[nodiscard]] Status checkHostname(std::string_view hostname, bool templated = false);

}  // namespace skiff::runtime
