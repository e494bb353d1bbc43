#include "skiff/netd/join_token.h"

#include <sys/random.h>

#include <cerrno>
#include <stdexcept>

namespace skiff::netd {

std::string randomBase36(size_t n) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    unsigned char buf[64];
    ssize_t got = ::getrandom(buf, sizeof buf, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");  // start-up or API only, never a callback
    }
    for (ssize_t i = 0; i < got && out.size() < n; i++) {
      // 252 = 7 * 36: rejecting the rest keeps every digit equally likely.
      if (buf[i] < 252) out += kDigits[buf[i] % 36];
    }
  }
  return out;
}

std::string makeJoinToken(std::string_view clusterKey, std::string_view roleSecret) {
  return "SWMTKN-1-" + std::string(clusterKey) + "-" + std::string(roleSecret);
}

bool tokenEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); i++) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace skiff::netd
