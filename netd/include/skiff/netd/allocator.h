#pragma once
// Allocator: what the manager hands out for the whole swarm — a VNI and a
// subnet per overlay network, an address per task endpoint, and each node's
// address on ingress (its proxy's source toward replicas) — so that a
// replica keeps a unique address whichever node runs it, and every node
// builds a network's VXLAN device with the same VNI. Pure logic over
// overlay::Ipam; the manager's loop calls it and persists what it hands out
// (networks with their VNI and subnet, endpoints with their tasks), and a
// restart hands the same values back in (the `want` arguments).
//
// Ingress is VNI 4096 on the pool's first /24 (10.0.0.0/24); other networks
// take VNIs from 4097 up and a free /24, or the subnet their spec asks for.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "skiff/common/result.h"
#include "skiff/overlay/ipam.h"

namespace skiff::netd {

class Allocator {
 public:
  static constexpr uint32_t kIngressVni = 4096;
  static constexpr const char* kIngress = "ingress";

  struct Network {
    uint32_t vni = 0;
    overlay::Subnet subnet{};
  };
  // A network's VNI and subnet. `vni` and `subnet` given: those (a restore,
  // or a subnet the spec asks for); otherwise the next VNI and a free /24.
  // A name that has its allocation gets it again. A refused one takes no VNI.
  Result<Network> allocateNetwork(const std::string& name, std::optional<uint32_t> vni,
                                  std::optional<overlay::Subnet> subnet);
  // Its subnet goes back to the pool (with every address in it); its VNI is
  // not reused while this manager runs.
  void releaseNetwork(const std::string& name);

  // An address on a network: `want` to keep a stored one, else the lowest
  // free one (the gateway .1 is never handed out).
  Result<overlay::Ipv4> allocateAddress(const std::string& network, std::optional<overlay::Ipv4> want = std::nullopt);
  void releaseAddress(const std::string& network, overlay::Ipv4 ip);

 private:
  overlay::Ipam ipam_;
  std::map<std::string, Network> networks_;
  uint32_t nextVni_ = kIngressVni + 1;
};

}  // namespace skiff::netd
