// The socket-LB in a build without libbpf or clang: every open() says so,
// and the proxy serves every client.

#include "skiff/socklb/socklb.h"

namespace skiff::socklb {

bool builtWithBpf() { return false; }

Result<std::unique_ptr<SocketLb>> SocketLb::open(const Options&) {
  return Error::msg(
      "socket load balancer: this skiff was built without BPF support (install libbpf-dev, clang and "
      "bpftool, then build again)");
}

}  // namespace skiff::socklb
