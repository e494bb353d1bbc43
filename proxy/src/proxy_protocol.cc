#include "skiff/proxy/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace skiff::proxy {
namespace {

constexpr char kV2Signature[] = "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A";  // 12 bytes

void appendU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

std::string v1(const sockaddr* src, const sockaddr* dst) {
  char s[INET6_ADDRSTRLEN] = {}, d[INET6_ADDRSTRLEN] = {};
  if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(src);
    auto* b = reinterpret_cast<const sockaddr_in*>(dst);
    inet_ntop(AF_INET, &a->sin_addr, s, sizeof s);
    inet_ntop(AF_INET, &b->sin_addr, d, sizeof d);
    return "PROXY TCP4 " + std::string(s) + " " + d + " " + std::to_string(ntohs(a->sin_port)) + " " +
           std::to_string(ntohs(b->sin_port)) + "\r\n";
  }
  if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(src);
    auto* b = reinterpret_cast<const sockaddr_in6*>(dst);
    inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof s);
    inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof d);
    return "PROXY TCP6 " + std::string(s) + " " + d + " " + std::to_string(ntohs(a->sin6_port)) + " " +
           std::to_string(ntohs(b->sin6_port)) + "\r\n";
  }
  return "PROXY UNKNOWN\r\n";
}

std::string v2(const sockaddr* src, const sockaddr* dst) {
  std::string out(kV2Signature, 12);
  if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(src);
    auto* b = reinterpret_cast<const sockaddr_in*>(dst);
    out.push_back('\x21');  // version 2, PROXY
    out.push_back('\x11');  // AF_INET, STREAM
    appendU16(out, 12);
    out.append(reinterpret_cast<const char*>(&a->sin_addr), 4);
    out.append(reinterpret_cast<const char*>(&b->sin_addr), 4);
    appendU16(out, ntohs(a->sin_port));
    appendU16(out, ntohs(b->sin_port));
    return out;
  }
  if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(src);
    auto* b = reinterpret_cast<const sockaddr_in6*>(dst);
    out.push_back('\x21');
    out.push_back('\x21');  // AF_INET6, STREAM
    appendU16(out, 36);
    out.append(reinterpret_cast<const char*>(&a->sin6_addr), 16);
    out.append(reinterpret_cast<const char*>(&b->sin6_addr), 16);
    appendU16(out, ntohs(a->sin6_port));
    appendU16(out, ntohs(b->sin6_port));
    return out;
  }
  out.push_back('\x20');  // version 2, LOCAL: the backend uses the real connection's addresses
  out.push_back('\x00');
  appendU16(out, 0);
  return out;
}

}  // namespace

std::string buildProxyHeader(int version, const sockaddr* src, const sockaddr* dst) {
  if (version == 1) return v1(src, dst);
  if (version == 2) return v2(src, dst);
  return {};
}

}  // namespace skiff::proxy
