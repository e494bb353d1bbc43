#pragma once
// Finds which process holds a local port, for the "already in use" error a
// user sees. Reads /proc/net/{tcp,tcp6,udp,udp6} of the caller's network
// namespace and maps the socket inode to a pid via /proc/<pid>/fd.

#include <cstdint>
#include <string>

namespace skiff::proxy {

// " by pid 1234 (nginx)" or "" when /proc does not tell.
std::string describePortOwner(uint16_t port, bool udp);

}  // namespace skiff::proxy
