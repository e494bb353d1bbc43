#pragma once
// PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt) headers
// sent to a backend before the client's first byte, so a replica sees the
// client's address. Pure functions: the caller passes the two addresses.

#include <sys/socket.h>

#include <string>

namespace skiff::proxy {

// version 1 (text) or 2 (binary). src = client, dst = the published address the
// client connected to. Families must match; otherwise v1 says "PROXY UNKNOWN"
// and v2 uses the LOCAL command, as the spec allows.
std::string buildProxyHeader(int version, const sockaddr* src, const sockaddr* dst);

}  // namespace skiff::proxy
