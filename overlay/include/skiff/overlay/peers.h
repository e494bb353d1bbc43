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
//
// Details a reconcile relies on:
// - Per key it is all or nothing: when the programmed entries of a key are
//   not exactly the wanted ones, all of them are removed and all wanted ones
//   added (removing one of two would delete the neighbour entry both need).
// - `programmed` may hold half entries, as Overlay::listPeers() reports them:
//   an FDB entry without a neighbour entry has ip 0.0.0.0, a neighbour entry
//   without an FDB entry has vtep 0.0.0.0. Nobody wants those, so they are
//   removed, and removeRemotePeer() deletes only the half that exists.
// - Removing a peer deletes its FDB entry (vni, MAC -> VTEP); a wanted peer
//   that is unchanged but has the same vni, MAC and VTEP is added again so
//   its entry comes back. With 02:42:<ip> MACs two IPs never share a MAC.
// - Two wanted peers with one key (one IP, two MACs or VTEPs) are a caller
//   bug: both are added and the neighbour entry ends up with the last one.
PeerDiff diffPeers(const std::vector<Peer>& programmed, const std::vector<Peer>& wanted);

}  // namespace skiff::overlay
