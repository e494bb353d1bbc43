#pragma once
// KernelMesh: the routing mesh with the socket load balancer (socklb) in
// front of the proxy. Every published port stays a proxy listener, which
// serves clients from other nodes and namespaces; the same port is also a
// socklb service, so a client on this node is connected straight to a
// backend by the kernel. Both take turns from one round-robin counter.
//
// The kernel's backend list is the proxy's without the backends that must
// get no new connection: draining ones (at once, when the orchestrator
// drains) and ejected ones (seen in the proxy's stats at each refresh()).
// A replica that exits leaves both lists in the same setBackends call.
// A port the kernel cannot serve (a map full, an address it cannot take)
// is left to the proxy and said once.
//
// Thread: the daemon's loop thread, but stats(), which a scrape calls.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "skiff/netd/mesh.h"
#include "skiff/socklb/socklb.h"

namespace skiff::netd {

class KernelMesh : public Mesh {
 public:
  KernelMesh(Mesh& inner, std::unique_ptr<socklb::SocketLb> lb,
             std::function<std::vector<std::string>()> localAddresses = socklb::localIpv4Addresses);
  ~KernelMesh() override;

  Status addListener(const proxy::ListenerConfig& config) override;
  Status removeListener(const std::string& name) override;
  void setBackends(const std::string& listener, std::vector<proxy::Backend> backends) override;
  void drainBackend(const std::string& listener, const std::string& backendId,
                    std::chrono::milliseconds grace) override;
  // The proxy's, with each backend's connections counting the kernel's too.
  std::vector<proxy::Proxy::ListenerStats> stats() const override;
  std::string pathOf(const std::string& listener) const override;

  // Takes in what changed outside: the node's addresses (ports on 0.0.0.0)
  // and the proxy's ejections. netd calls it every second.
  void refresh();

 private:
  struct Port {
    proxy::ListenerConfig config;
    std::vector<proxy::Backend> backends;
    std::set<std::string> draining;  // backend ids
    std::optional<socklb::Service> programmed;
    std::string error;  // why the kernel does not serve it ("" when it does)
  };
  socklb::Service wanted(const Port& p, const std::set<std::string>& ejected) const;
  void program(const std::string& name, Port& p, const std::set<std::string>& ejected);

  Mesh& inner_;
  std::unique_ptr<socklb::SocketLb> lb_;
  std::function<std::vector<std::string>()> localAddresses_;
  std::map<std::string, Port> ports_;
  // For stats() from another thread: per listener, backend "ip:port" -> id.
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, std::string>> idsByEndpoint_;
  std::set<std::string> served_;  // listeners the kernel serves
};

}  // namespace skiff::netd
