#pragma once
// Remote peers of overlay networks, as intent. A peer is one endpoint on
// another node: its overlay IP, its MAC (02:42:<ip>, docker's scheme, or the
// node bridge's address on ingress) and the underlay address of the node
// that hosts it (the VTEP). On every node, each peer of each network it
// carries becomes two static kernel entries (Overlay::addRemotePeer): an FDB
// entry on the VXLAN device (MAC -> VTEP) and a permanent neighbour entry
// (IP -> MAC) that the VXLAN device's ARP proxy answers from.
//
// Pure: diffPeers() tells what to write and what to delete to go from what
// is programmed to what is wanted, so the agent's reconcile (at start, after
// every assignment, after a node went down) is unit-tested without a kernel.

#include <cstdint>
#include <string>
#include <vector>

#include "skiff/overlay/ipam.h"

namespace skiff::overlay {

struct Peer {
  uint32_t vni = 0;
  Ipv4 ip;
  std::string mac;  // "02:42:0a:00:00:05", lower case
  Ipv4 vtep;
  friend auto operator<=>(const Peer&, const Peer&) = default;
};

struct PeerDiff {
  std::vector<Peer> remove;  // delete these first (a moved peer is removed, then added)
  std::vector<Peer> add;     // then write these (NLM_F_REPLACE: harmless if present)
};

// Peers are keyed by (vni, ip): a wanted peer whose MAC or VTEP differs from
// the programmed one is removed and added again. Both outputs are sorted and
// free of duplicates; entries in both inputs and equal are left alone.
PeerDiff diffPeers(const std::vector<Peer>& programmed, const std::vector<Peer>& wanted);

}  // namespace skiff::overlay
