#pragma once
// skiff's socket load balancer ("socket-LB", as Cilium calls it): cgroup BPF
// programs that connect a client on this node straight to a backend when it
// dials a published port, so the connection costs what a direct one costs.
// The libuv proxy keeps listening on the same addresses and serves every
// client the programs leave alone: other nodes, other namespaces, a service
// whose backend list is being replaced, a kernel without BPF.
//
// Safety: the programs serve only the network namespace SocketLb::open()
// ran in (its netns cookie) and only the frontends set here; everything else
// passes untouched. They attach through bpf_link objects this process owns,
// never pinned, so they detach when it exits, a crash included.
// Only netd's (or skiff-proxy's) loop thread calls in, but for picks().

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::socklb {

enum class Protocol : uint8_t { kTcp = 6, kUdp = 17 };

struct Endpoint {
  std::string ip;  // dotted IPv4
  uint16_t port = 0;
  // A backend on this node: its main process. The programs look for its
  // socket in that process's network namespace before they pick it, so a
  // replica that died is passed over at once (a connect rewritten by the
  // kernel cannot be retried). 0: not checked (a replica on another node).
  pid_t pid = 0;
  auto operator<=>(const Endpoint&) const = default;
  std::string str() const { return ip + ":" + std::to_string(port); }
};

struct Service {
  Protocol protocol = Protocol::kTcp;
  // The addresses clients dial: the bound address, or for 0.0.0.0 each of
  // the node's addresses (127.0.0.1 included).
  std::vector<Endpoint> frontends;
  // The backends in rotation, in round-robin order. An ejected or draining
  // backend is left out; an empty list hands every client to the proxy.
  std::vector<Endpoint> backends;
};

struct Options {
  // The cgroup v2 directory whose processes (and those below) are served:
  // absolute, or relative to the cgroup2 root. Empty: the root itself.
  std::string cgroup;
  // Where to mount cgroup2 when no hierarchy is visible (a host with only
  // v1 mounted, or `ip netns exec`, which hides /sys/fs/cgroup); "" fails
  // instead.
  std::string mountIfMissing = "/run/skiff/cgroup/unified";
};

// Where cgroup2 is mounted ("/sys/fs/cgroup", or "/sys/fs/cgroup/unified"
// on a hybrid host), from /proc/self/mountinfo. When none is and
// mountIfMissing is set, mounts it there; an error names what is missing.
Result<std::string> cgroup2Root(const std::string& mountIfMissing = "");

// This network namespace's IPv4 addresses (127.0.0.1 included), sorted:
// the frontends of a port bound to 0.0.0.0.
std::vector<std::string> localIpv4Addresses();

// The frontends of a port bound to bindHost: bindHost itself, or for
// 0.0.0.0 each address localAddresses() gives (localIpv4Addresses here;
// tests pass their own).
std::vector<Endpoint> frontendsOf(const std::string& bindHost, uint16_t port,
                                  const std::function<std::vector<std::string>()>& localAddresses);

// Whether this build has the kernel path at all (libbpf and clang found).
bool builtWithBpf();

class SocketLb {
 public:
  // Loads and attaches the programs. Fails with a sentence a user can act
  // on: no BPF in this build, not root (CAP_BPF + CAP_NET_ADMIN), no cgroup2,
  // a kernel without cgroup sock_addr programs or netns cookies.
  static Result<std::unique_ptr<SocketLb>> open(const Options& options = {});
  virtual ~SocketLb() = default;  // detaches every program

  // Adds or replaces a service (by name). Its frontends must not belong to
  // another service. Backends beyond the first 65535 are refused.
  virtual Status setService(const std::string& name, const Service& service) = 0;
  virtual Status removeService(const std::string& name) = 0;

  // Connections (TCP, connected UDP) and UDP flows the kernel path gave
  // each backend, by service, since the service was set. The one call that
  // may come from another thread (a metrics scrape).
  virtual std::map<std::string, std::map<Endpoint, uint64_t>> picks() const = 0;

  // The service's round-robin counter, which the programs increment: the
  // proxy takes its turns from it too (std::atomic_ref<uint64_t>), so the
  // rotation stays strict across both paths. nullptr for an unknown service.
  // Valid until the service goes.
  virtual uint64_t* turns(const std::string& name) = 0;

  // The network namespace served (its cookie) and the cgroup attached to.
  virtual uint64_t netnsCookie() const = 0;
  virtual const std::string& cgroup() const = 0;
};

}  // namespace skiff::socklb
