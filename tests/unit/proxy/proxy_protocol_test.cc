#include "skiff/proxy/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

namespace skiff::proxy {
namespace {

sockaddr_in v4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

TEST(ProxyProtocol, V1Tcp4) {
  auto s = v4("192.168.1.7", 51000), d = v4("10.0.0.1", 4000);
  EXPECT_EQ(buildProxyHeader(1, reinterpret_cast<sockaddr*>(&s), reinterpret_cast<sockaddr*>(&d)),
            "PROXY TCP4 192.168.1.7 10.0.0.1 51000 4000\r\n");
}

TEST(ProxyProtocol, V1Tcp6) {
  sockaddr_in6 s{}, d{};
  s.sin6_family = d.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::1", &s.sin6_addr);
  inet_pton(AF_INET6, "fd00::2", &d.sin6_addr);
  s.sin6_port = htons(1);
  d.sin6_port = htons(2);
  EXPECT_EQ(buildProxyHeader(1, reinterpret_cast<sockaddr*>(&s), reinterpret_cast<sockaddr*>(&d)),
            "PROXY TCP6 ::1 fd00::2 1 2\r\n");
}

TEST(ProxyProtocol, V2Tcp4Binary) {
  auto s = v4("1.2.3.4", 0x1122), d = v4("5.6.7.8", 0x3344);
  std::string h = buildProxyHeader(2, reinterpret_cast<sockaddr*>(&s), reinterpret_cast<sockaddr*>(&d));
  const unsigned char expected[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11,
                                    0x00, 0x0C, 1,    2,    3,    4,    5,    6,    7,    8,    0x11, 0x22, 0x33, 0x44};
  ASSERT_EQ(h.size(), sizeof expected);
  EXPECT_EQ(0, std::memcmp(h.data(), expected, sizeof expected));
}

TEST(ProxyProtocol, MixedFamiliesAndNone) {
  auto s = v4("1.2.3.4", 1);
  sockaddr_in6 d{};
  d.sin6_family = AF_INET6;
  EXPECT_EQ(buildProxyHeader(1, reinterpret_cast<sockaddr*>(&s), reinterpret_cast<sockaddr*>(&d)), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(buildProxyHeader(2, reinterpret_cast<sockaddr*>(&s), reinterpret_cast<sockaddr*>(&d)).size(), 16u);
  EXPECT_EQ(buildProxyHeader(0, reinterpret_cast<sockaddr*>(&s), reinterpret_cast<sockaddr*>(&d)), "");
}

}  // namespace
}  // namespace skiff::proxy
