#pragma once
// Join tokens, as docker's: "SWMTKN-1-<cluster key>-<role secret>". The
// cluster key (50 characters of [0-9a-z]) is made once by `swarm init`; each
// role (worker, manager) has its own 25-character secret, replaced by
// `swarm join-token --rotate ROLE`, which makes every earlier token of that
// role useless. Tokens are compared in constant time. Pure, no loop.

#include <string>
#include <string_view>

namespace skiff::netd {

inline constexpr size_t kClusterKeyLength = 50;
inline constexpr size_t kRoleSecretLength = 25;
inline constexpr const char* kInvalidJoinToken = "A valid join token is necessary to join this cluster";

// n characters of [0-9a-z] from the kernel's CSPRNG (getrandom).
std::string randomBase36(size_t n);

std::string makeJoinToken(std::string_view clusterKey, std::string_view roleSecret);

// True when a and b are equal; the time taken depends on their lengths only.
bool tokenEquals(std::string_view a, std::string_view b);

}  // namespace skiff::netd
