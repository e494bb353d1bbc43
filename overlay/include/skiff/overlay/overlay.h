#pragma once
// Overlay networks on one node.
//
// Design note. An overlay network is, on every node, a Linux bridge
// "skbr-<vni>" plus a VXLAN device "skvx-<vni>" (VNI = the network's, UDP
// dstport 4789, learning off, ARP proxy on) enslaved to it, both up with
// MTU = underlay MTU - 50 (the VXLAN header). A replica joins by a veth pair:
// the host side "skv<8 hex of endpoint id><n>" is a bridge port, the peer is
// created directly inside the replica's netns (IFLA_NET_NS_FD) as eth<n> with
// its IPAM address and MAC 02:42:<ip> (docker's scheme, so any node can
// compute a remote endpoint's MAC from its IP). For "ingress" the node itself
// gets an address on the bridge (nodeAddress) so the proxy reaches replicas.
//
// Multi-host: there is no multicast and no flood-and-learn. The control plane
// (netd's cluster code) tells each node about every remote endpoint, and
// addRemotePeer() writes two static entries, as flannel and docker do: an FDB
// entry on the VXLAN device (endpoint MAC -> remote VTEP IP) and a permanent
// neighbor entry (endpoint IP -> MAC) that the VXLAN ARP proxy answers from.
// Both writes use NLM_F_REPLACE so re-announcing a peer is harmless.
//
// All operations are idempotent (ensure…/remove…) and run on netd's loop
// thread; netlink calls are blocking but short. Every error names the object
// and carries the kernel's extended-ack text.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "skiff/common/result.h"
#include "skiff/overlay/ipam.h"
#include "skiff/overlay/netlink.h"

namespace skiff::overlay {

inline constexpr uint16_t kVxlanPort = 4789;
inline constexpr int kVxlanOverhead = 50;
inline constexpr uint32_t kMaxVni = 0xffffff;

struct NetworkConfig {
  std::string name;
  uint32_t vni = 0;
  Subnet subnet;
  int mtu = 0;  // <= 0: underlay MTU - 50
  // Address on the bridge in the node's own netns ("ingress": the proxy side).
  std::optional<std::pair<Ipv4, int>> nodeAddress;
  std::string local;  // VTEP source IP; "" = let the kernel pick by route
};

class Overlay {
 public:
  using NetnsOpener = std::function<Result<std::unique_ptr<NetlinkTransport>>(int netnsFd)>;

  // `host` must outlive the Overlay. `openInNetns` opens a transport inside a
  // replica's netns (replaced by a fake in unit tests).
  explicit Overlay(NetlinkTransport& host, NetnsOpener openInNetns = openNetlinkInNetns);

  static std::string bridgeName(uint32_t vni);
  static std::string vxlanName(uint32_t vni);
  // "skv" + 8 hex of the endpoint id (hashed when it is not hex) + trailing
  // digits of containerIfName: at most 15 characters.
  static std::string hostIfName(const std::string& endpointId, const std::string& containerIfName);

  [[nodiscard]] Status ensureNetwork(const NetworkConfig& config);
  [[nodiscard]] Status removeNetwork(const NetworkConfig& config);

  struct Endpoint {
    std::string hostIfName;
    std::string containerIfName;
    Ipv4 address;
    int prefix = 0;
    std::string mac;
  };
  // Re-attaching the same endpoint id replaces its old veth.
  [[nodiscard]] Result<Endpoint> attach(const NetworkConfig& config, int containerNetnsFd,
                                        const std::string& endpointId,
                                        const std::string& containerIfName, Ipv4 address);
  [[nodiscard]] Status detach(const std::string& hostIfName);  // ENODEV = already gone

  [[nodiscard]] Status addRemotePeer(const NetworkConfig& config, Ipv4 vtep,
                                     const std::string& mac, Ipv4 ip);
  [[nodiscard]] Status removeRemotePeer(const NetworkConfig& config, Ipv4 vtep,
                                        const std::string& mac, Ipv4 ip);

  struct LinkStats {
    uint64_t rxPackets = 0, txPackets = 0, rxBytes = 0, txBytes = 0;
  };
  [[nodiscard]] Result<LinkStats> vxlanStats(const NetworkConfig& config);
  // MTU of the default route's device; 1500 when there is no default route.
  [[nodiscard]] Result<int> underlayMtu();

 private:
  Result<int> effectiveMtu(const NetworkConfig& config);

  NetlinkTransport& host_;
  NetnsOpener openInNetns_;
};

// Looks a link up by name; nullopt when it does not exist (ENODEV).
[[nodiscard]] Result<std::optional<LinkInfo>> findLink(NetlinkTransport& nl,
                                                       const std::string& name);

}  // namespace skiff::overlay
