// main() for integration tests. Before any thread exists, the process enters
// a new network namespace and a new mount namespace (mounts made private), so
// links, addresses, routes and mounts a test creates vanish when the process
// exits, even if it crashes. Without root (no CAP_NET_ADMIN/CAP_SYS_ADMIN),
// the tests run and skip themselves via skiff::testing::requireRoot().

#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "netns_testing.h"

namespace skiff::testing {
namespace {
bool gIsolated = false;
}

bool isolated() { return gIsolated; }

}  // namespace skiff::testing

namespace {
bool bringLoopbackUp() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  if (!ok) std::perror("bring lo up in the test namespace");
  ::close(fd);
  return ok;
}
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) == 0) {
    // Keep our mounts from propagating back to the host.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      std::perror("mount --make-rprivate /");
      return 1;
    }
    // Bring loopback up: tests listen on 127.0.0.1 inside the namespace.
    if (!bringLoopbackUp()) return 1;
    skiff::testing::gIsolated = true;
  } else {
    std::fprintf(stderr,
                 "note: cannot enter a new network namespace (%s); "
                 "root-only tests will be skipped\n",
                 std::strerror(errno));
  }
  return RUN_ALL_TESTS();
}
