#include "port_owner.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace skiff::proxy {
namespace {

std::vector<std::string> socketInodes(uint16_t port, bool udp) {
  std::vector<std::string> inodes;
  const char* files[2] = {udp ? "/proc/net/udp" : "/proc/net/tcp", udp ? "/proc/net/udp6" : "/proc/net/tcp6"};
  for (const char* file : files) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      if (!(fields >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      unsigned long p = std::strtoul(local.c_str() + colon + 1, nullptr, 16);
      // TCP: only listeners (0A) own a port; UDP: any bound socket (07 = unconnected).
      if (p != port || (!udp && state != "0A") || inode == "0") continue;
      inodes.push_back(inode);
    }
  }
  return inodes;
}

}  // namespace

std::string describePortOwner(uint16_t port, bool udp) {
  auto inodes = socketInodes(port, udp);
  if (inodes.empty()) return "";
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return "";
  std::string found;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string fdDir = std::string("/proc/") + e->d_name + "/fd";
    DIR* fds = ::opendir(fdDir.c_str());
    if (fds == nullptr) continue;
    while (dirent* f = ::readdir(fds)) {
      char target[64];
      std::string link = fdDir + "/" + f->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      for (const auto& inode : inodes) {
        if (std::string(target) == "socket:[" + inode + "]") {
          std::ifstream comm(std::string("/proc/") + e->d_name + "/comm");
          std::string name;
          std::getline(comm, name);
          found = std::string(" by pid ") + e->d_name + " (" + name + ")";
          break;
        }
      }
      if (!found.empty()) break;
    }
    ::closedir(fds);
    if (!found.empty()) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace skiff::proxy
