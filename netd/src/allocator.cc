#include "skiff/netd/allocator.h"

#include <algorithm>

namespace skiff::netd {

Result<Allocator::Network> Allocator::allocateNetwork(const std::string& name, std::optional<uint32_t> vni,
                                                      std::optional<overlay::Subnet> subnet) {
  if (auto it = networks_.find(name); it != networks_.end()) return it->second;
  Network n;
  if (vni) {
    n.vni = *vni;
  } else if (name == kIngress) {
    n.vni = kIngressVni;
  } else {
    n.vni = nextVni_;
  }
  auto sub = ipam_.allocateSubnet(name, subnet);
  if (!sub.ok()) return sub.error();
  n.subnet = *sub;
  // A restored network's VNI is taken: new ones count on from above it.
  if (n.vni != kIngressVni) nextVni_ = std::max(nextVni_, n.vni + 1);
  networks_[name] = n;
  return n;
}

void Allocator::releaseNetwork(const std::string& name) {
  if (networks_.erase(name) != 0) (void)ipam_.releaseSubnet(name);
}

Result<overlay::Ipv4> Allocator::allocateAddress(const std::string& network, std::optional<overlay::Ipv4> want) {
  return ipam_.allocateAddress(network, want);
}

void Allocator::releaseAddress(const std::string& network, overlay::Ipv4 ip) {
  (void)ipam_.releaseAddress(network, ip);
}

}  // namespace skiff::netd
