// What the socket-LB reads off the host: where cgroup2 is mounted (its
// default attach point) and the node's addresses (frontends of 0.0.0.0).

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "skiff/socklb/socklb.h"

namespace skiff::socklb {

Result<std::string> cgroup2Root(const std::string& mountIfMissing) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Error::fromErrno("read /proc/self/mountinfo");
  // "36 35 0:30 / /sys/fs/cgroup/unified rw,... - cgroup2 cgroup2 rw"
  std::string line, best;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mountPoint;
    head >> id >> parent >> dev >> root >> mountPoint;
    if (root != "/") continue;  // a bind mount of a sub-tree is not the root
    if (best.empty() || mountPoint.size() < best.size()) best = mountPoint;
  }
  if (best.empty() && !mountIfMissing.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(mountIfMissing, ec);
    if (ec) return Error::msg("create " + mountIfMissing + ": " + ec.message(), ec.value());
    if (::mount("cgroup2", mountIfMissing.c_str(), "cgroup2", 0, nullptr) != 0)
      return Error::fromErrno("mount cgroup2 on " + mountIfMissing);
    return mountIfMissing;
  }
  if (best.empty())
    return Error::msg(
        "no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified, or boot "
        "with cgroup v2)");
  return best;
}

std::vector<std::string> localIpv4Addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char ip[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, ip, sizeof ip);
    if (std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
  }
  freeifaddrs(list);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Endpoint> frontendsOf(const std::string& bindHost, uint16_t port,
                                  const std::function<std::vector<std::string>()>& localAddresses) {
  if (bindHost != "0.0.0.0") return {{bindHost, port}};
  std::vector<Endpoint> out;
  for (const auto& ip : localAddresses()) out.push_back({ip, port});
  return out;
}

}  // namespace skiff::socklb
