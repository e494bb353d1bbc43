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
// gets an address on the bridge (nodeAddress) so the proxy reaches replicas;
// the bridge then carries the MAC 02:42:<nodeAddress> (macFor()), so other
// nodes program a node's ingress address as a peer like any endpoint. A
// bridge's MAC otherwise follows its lowest port MAC and would change as
// replicas come and go. nodeAddress must therefore be unique cluster-wide.
//
// Multi-host: there is no multicast and no flood-and-learn. The control plane
// (netd's cluster code) tells each node about every remote endpoint, and
// addRemotePeer() writes two static entries, as flannel and docker do: an FDB
// entry on the VXLAN device (endpoint MAC -> remote VTEP IP) and a permanent
// neighbor entry (endpoint IP -> MAC) that the VXLAN ARP proxy answers from.
// Both writes use NLM_F_REPLACE so re-announcing a peer is harmless.
// removeRemotePeer() treats "already gone" as done, and listPeers() reads the
// entries back, so a reconcile (diffPeers, peers.h) can run at any time; at
// start-up listNetworks() finds the devices a previous life left behind.
//
// What the kernel does with these entries (the multi-host test relies on it):
// the VXLAN device sends a frame only to the VTEP of an FDB entry for its
// destination MAC; there is no all-zeros default entry, so broadcasts and
// unknown MACs go nowhere (no flooding between nodes). ARP for a remote IP is
// answered by the VXLAN device itself (IFLA_VXLAN_PROXY) from a neighbour
// entry in state NUD_PERMANENT (any NUD_CONNECTED state would do); without
// one the ARP request is dropped. The local bridge still learns remote MACs
// on its VXLAN port from received frames (a "master" entry without VTEP that
// ages out after 300 s); listPeers() ignores those.
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
#include <vector>

#include "skiff/common/result.h"
#include "skiff/overlay/ipam.h"
#include "skiff/overlay/netlink.h"
#include "skiff/overlay/peers.h"

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
  // The MAC of an endpoint or of a node's bridge with that address:
  // "02:42:" + the four bytes of ip, lower case ("02:42:0a:00:00:03").
  static std::string macFor(Ipv4 ip);

  // With config.nodeAddress, the bridge also gets the address and the MAC
  // macFor(nodeAddress) (set again when an existing bridge has another one).
  [[nodiscard]] Status ensureNetwork(const NetworkConfig& config);
  [[nodiscard]] Status removeNetwork(const NetworkConfig& config);
  // The VNIs of skiff's networks in this netns: every device named
  // skbr-<vni> or skvx-<vni> (canonical decimal, 1..kMaxVni), whatever its
  // kind, sorted and unique. For the start-up reconcile: removeNetwork() with
  // that VNI deletes both names.
  [[nodiscard]] Result<std::vector<uint32_t>> listNetworks();

  struct Endpoint {
    std::string hostIfName;
    std::string containerIfName;
    Ipv4 address;
    int prefix = 0;
    std::string mac;
  };
  // Re-attaching the same endpoint id replaces its old veth.
  [[nodiscard]] Result<Endpoint> attach(const NetworkConfig& config, int containerNetnsFd,
                                        const std::string& endpointId, const std::string& containerIfName,
                                        Ipv4 address);
  [[nodiscard]] Status detach(const std::string& hostIfName);  // ENODEV = already gone

  [[nodiscard]] Status addRemotePeer(const NetworkConfig& config, Ipv4 vtep, const std::string& mac, Ipv4 ip);
  // Deletes the FDB entry (mac -> vtep) and the neighbour entry of ip. An
  // entry already gone (ENOENT), or the whole device gone, is success. vtep
  // 0.0.0.0 skips the FDB entry and ip 0.0.0.0 the neighbour entry: that is
  // how listPeers() reports half entries, so each half is deleted alone.
  [[nodiscard]] Status removeRemotePeer(const NetworkConfig& config, Ipv4 vtep, const std::string& mac, Ipv4 ip);
  // The remote peers programmed on the network's VXLAN device, read back from
  // the kernel: its FDB entries that have a VTEP (NDA_DST, IPv4), joined by
  // MAC with its NUD_PERMANENT IPv4 neighbour entries, one Peer{config.vni,
  // ip, mac, vtep} per pair. Half entries are reported too: an FDB entry
  // whose MAC no neighbour entry uses as Peer{vni, 0.0.0.0, mac, vtep}, a
  // neighbour entry whose MAC has no FDB entry as Peer{vni, ip, mac,
  // 0.0.0.0}; removeRemotePeer() deletes exactly those halves. Sorted and
  // unique; empty when the VXLAN device does not exist.
  [[nodiscard]] Result<std::vector<Peer>> listPeers(const NetworkConfig& config);

  // One device of a network with the kernel's counters for it.
  struct DeviceStats {
    std::string device;  // vxlanName(vni) or bridgeName(vni)
    std::string kind;    // the device's kind as the kernel reports it: "vxlan", "bridge"
    LinkStats stats;
  };
  // The counters of the network's VXLAN device, then of its bridge, read with
  // one RTM_GETLINK each (IFLA_STATS64); a device that does not exist on this
  // node is left out (none at all when the network is not set up here). Only
  // config.name and config.vni are used. What they count: the VXLAN device,
  // the Ethernet frames this node sends to (tx) and receives from (rx) other
  // nodes, before encapsulation, and as tx_dropped the frames it had no FDB
  // entry for; the bridge, only what the node itself sends and receives on
  // the network through its own address (ingress: the proxy's traffic) and
  // the broadcasts it sees, not the frames it forwards between its ports.
  [[nodiscard]] Result<std::vector<DeviceStats>> networkStats(const NetworkConfig& config);
  // MTU of the default route's device; 1500 when there is no default route.
  [[nodiscard]] Result<int> underlayMtu();

 private:
  Result<int> effectiveMtu(const NetworkConfig& config);

  NetlinkTransport& host_;
  NetnsOpener openInNetns_;
};

// Looks a link up by name; nullopt when it does not exist (ENODEV).
[[nodiscard]] Result<std::optional<LinkInfo>> findLink(NetlinkTransport& nl, const std::string& name);

}  // namespace skiff::overlay
