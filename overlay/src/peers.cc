#include "skiff/overlay/peers.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace skiff::overlay {
namespace {

using Key = std::pair<uint32_t, Ipv4>;  // (vni, ip): one neighbour entry

std::map<Key, std::set<Peer>> byKey(const std::vector<Peer>& peers) {
  std::map<Key, std::set<Peer>> out;
  for (const Peer& p : peers) out[{p.vni, p.ip}].insert(p);
  return out;
}

// The FDB entry a peer stands for; a peer without a VTEP (a neighbour entry
// whose FDB entry is missing) stands for none.
bool sharesFdbEntry(const Peer& a, const Peer& b) {
  return a.vtep.host_order != 0 && b.vtep.host_order != 0 && a.vni == b.vni && a.mac == b.mac && a.vtep == b.vtep;
}

}  // namespace

PeerDiff diffPeers(const std::vector<Peer>& programmed, const std::vector<Peer>& wanted) {
  const auto have = byKey(programmed);
  const auto want = byKey(wanted);
  std::set<Peer> toRemove, toAdd;

  // Per (vni, ip), all or nothing: deleting one of two programmed entries of
  // an IP would also delete the neighbour entry the other one needs.
  for (const auto& [key, peers] : have) {
    auto it = want.find(key);
    if (it == want.end() || it->second != peers) toRemove.insert(peers.begin(), peers.end());
  }
  for (const auto& [key, peers] : want) {
    auto it = have.find(key);
    if (it == have.end() || it->second != peers) toAdd.insert(peers.begin(), peers.end());
  }
  // Deleting an FDB entry (MAC -> VTEP) takes it away from every IP behind
  // that MAC, so an unchanged peer sharing it is written again after the
  // removals. Only MACs outside docker's 02:42:<ip> scheme ever share.
  for (const auto& [key, peers] : want) {
    for (const Peer& p : peers) {
      if (toAdd.count(p)) continue;
      if (std::any_of(toRemove.begin(), toRemove.end(), [&](const Peer& r) { return sharesFdbEntry(r, p); }))
        toAdd.insert(p);
    }
  }
  return PeerDiff{{toRemove.begin(), toRemove.end()}, {toAdd.begin(), toAdd.end()}};
}

}  // namespace skiff::overlay
