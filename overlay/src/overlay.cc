#include "skiff/overlay/overlay.h"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <set>

#include "skiff/common/log.h"

namespace skiff::overlay {
namespace {

constexpr std::string_view kLog = "overlay";

Error withContext(const std::string& what, const Error& e) { return Error{e.code, what + ": " + e.message}; }

// Runs a request whose "already there"/"already gone" answer is success.
Status requestTolerating(NetlinkTransport& nl, NlMessage msg, int okErrno, const std::string& what) {
  auto r = nl.request(std::move(msg));
  if (!r.ok() && r.error().code != okErrno) return withContext(what, r.error());
  return okStatus();
}

Status requestOk(NetlinkTransport& nl, NlMessage msg, const std::string& what) {
  auto r = nl.request(std::move(msg));
  if (!r.ok()) return withContext(what, r.error());
  return okStatus();
}

Result<LinkInfo> requireLink(NetlinkTransport& nl, const std::string& name, const std::string& why) {
  auto link = findLink(nl, name);
  if (!link.ok()) return link.error();
  if (!link.value()) return Error::msg(why + ": link " + name + " does not exist", ENODEV);
  return **link;
}

// The VNI in a skiff device name, when `name` is exactly bridgeName(vni) or
// vxlanName(vni) of a valid VNI.
std::optional<uint32_t> vniOfDeviceName(const std::string& name) {
  for (std::string_view prefix : {"skbr-", "skvx-"}) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string_view digits = std::string_view(name).substr(prefix.size());
    if (digits.empty() || digits.size() > 8 || digits[0] == '0') return std::nullopt;
    uint32_t vni = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), vni);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    if (vni == 0 || vni > kMaxVni) return std::nullopt;
    return vni;
  }
  return std::nullopt;
}

}  // namespace

Result<std::optional<LinkInfo>> findLink(NetlinkTransport& nl, const std::string& name) {
  auto r = nl.request(nl::getLink(name));
  if (!r.ok()) {
    if (r.error().code == ENODEV) return std::optional<LinkInfo>{};
    return withContext("look up link " + name, r.error());
  }
  for (const auto& msg : r.value())
    if (auto link = nl::parseLink(msg)) return std::optional<LinkInfo>{*link};
  return Error::msg("look up link " + name + ": no RTM_NEWLINK in the reply", EPROTO);
}

Overlay::Overlay(NetlinkTransport& host, NetnsOpener openInNetns) : host_(host), openInNetns_(std::move(openInNetns)) {}

std::string Overlay::bridgeName(uint32_t vni) { return "skbr-" + std::to_string(vni); }
std::string Overlay::vxlanName(uint32_t vni) { return "skvx-" + std::to_string(vni); }

std::string Overlay::macFor(Ipv4 ip) { return macForAddress(ip); }

std::string Overlay::hostIfName(const std::string& endpointId, const std::string& containerIfName) {
  std::string hex;
  for (char c : endpointId) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      hex.clear();
      break;
    }
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (hex.size() < 8) {
    // Not a hex id: FNV-1a keeps the name stable for the same id.
    uint32_t h = 2166136261u;
    for (char c : endpointId) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
    char buf[9];
    std::snprintf(buf, sizeof(buf), "%08x", h);
    hex = buf;
  }
  std::string digits;
  for (auto it = containerIfName.rbegin(); it != containerIfName.rend(); ++it) {
    if (!std::isdigit(static_cast<unsigned char>(*it))) break;
    digits.insert(digits.begin(), *it);
  }
  std::string name = "skv" + hex.substr(0, 8) + digits;
  return name.substr(0, IFNAMSIZ - 1);
}

Result<int> Overlay::effectiveMtu(const NetworkConfig& config) {
  if (config.mtu > 0) return config.mtu;
  auto mtu = underlayMtu();
  if (!mtu.ok()) return mtu.error();
  return *mtu - kVxlanOverhead;
}

Status Overlay::ensureNetwork(const NetworkConfig& config) {
  const std::string what = "network " + config.name;
  if (config.vni == 0 || config.vni > kMaxVni)
    return Error::msg(what + ": VNI " + std::to_string(config.vni) + " out of range 1.." + std::to_string(kMaxVni),
                      ERANGE);
  std::optional<Ipv4> local;
  if (!config.local.empty()) {
    local = Ipv4::parse(config.local);
    if (!local) return Error::msg(what + ": invalid VTEP address " + config.local, EINVAL);
  }
  auto mtu = effectiveMtu(config);
  if (!mtu.ok()) return withContext(what, mtu.error());
  const std::string br = bridgeName(config.vni);
  const std::string vx = vxlanName(config.vni);

  // The node's own address on the bridge comes with a MAC any node can
  // compute, so remote nodes program it as a peer without asking.
  std::optional<std::string> nodeMac;
  if (config.nodeAddress) nodeMac = macFor(config.nodeAddress->first);

  // Bridge: create if missing, then (re)apply MAC, MTU and up.
  auto bridge = findLink(host_, br);
  if (!bridge.ok()) return bridge.error();
  if (*bridge && (*bridge)->kind != "bridge")
    return Error::msg(what + ": " + br + " exists but is a " + (*bridge)->kind, EEXIST);
  if (!*bridge)
    SKIFF_TRY(
        requestOk(host_, nl::newBridge(br, *mtu, nodeMac ? parseMac(*nodeMac) : std::nullopt), "create bridge " + br));
  auto brLink = requireLink(host_, br, what);
  if (!brLink.ok()) return brLink.error();
  if (nodeMac && brLink->mac != *nodeMac) {
    SKIFF_TRY(
        requestOk(host_, nl::setLinkAddress(brLink->index, *parseMac(*nodeMac)), "set MAC " + *nodeMac + " on " + br));
    log::info(kLog, "network ", config.name, ": ", br, " MAC ", brLink->mac, " -> ", *nodeMac);
  }
  SKIFF_TRY(requestOk(host_, nl::setLink(brLink->index, *mtu, std::nullopt, true), "set bridge " + br + " up"));

  // VXLAN: its VNI/port/local cannot change in place, so a stale device with
  // other parameters is replaced (as flannel does).
  nl::VxlanParams params;
  params.vni = config.vni;
  params.port = kVxlanPort;
  params.local = local;
  auto vxlan = findLink(host_, vx);
  if (!vxlan.ok()) return vxlan.error();
  if (*vxlan) {
    const LinkInfo& l = **vxlan;
    const bool same = l.kind == "vxlan" && l.vni == config.vni && l.vxlanPort == kVxlanPort &&
                      l.vxlanLearning == false && l.vxlanLocal == local;
    if (!same) {
      log::warn(kLog, "replacing ", vx, ": parameters differ from network ", config.name);
      SKIFF_TRY(requestTolerating(host_, nl::delLink(vx), ENODEV, "delete stale " + vx));
      vxlan.value().reset();
    }
  }
  if (!*vxlan) SKIFF_TRY(requestOk(host_, nl::newVxlan(vx, params, *mtu), "create vxlan " + vx));
  auto vxLink = requireLink(host_, vx, what);
  if (!vxLink.ok()) return vxLink.error();
  SKIFF_TRY(requestOk(host_, nl::setLink(vxLink->index, *mtu, brLink->index, true), "attach " + vx + " to " + br));

  if (config.nodeAddress)
    SKIFF_TRY(requestOk(host_, nl::newAddr(brLink->index, config.nodeAddress->first, config.nodeAddress->second),
                        "address " + config.nodeAddress->first.str() + " on " + br));
  log::info(kLog, "network ", config.name, " up (vni ", config.vni, ", ", br, "/", vx, ", subnet ", config.subnet.str(),
            ", mtu ", *mtu, ")");
  return okStatus();
}

Status Overlay::removeNetwork(const NetworkConfig& config) {
  SKIFF_TRY(requestTolerating(host_, nl::delLink(vxlanName(config.vni)), ENODEV, "delete " + vxlanName(config.vni)));
  SKIFF_TRY(requestTolerating(host_, nl::delLink(bridgeName(config.vni)), ENODEV, "delete " + bridgeName(config.vni)));
  log::info(kLog, "network ", config.name, " removed (vni ", config.vni, ")");
  return okStatus();
}

Result<Overlay::Endpoint> Overlay::attach(const NetworkConfig& config, int containerNetnsFd,
                                          const std::string& endpointId, const std::string& containerIfName,
                                          Ipv4 address) {
  const std::string hostName = hostIfName(endpointId, containerIfName);
  const std::string what = "endpoint " + endpointId + " on network " + config.name;
  if (containerIfName.empty() || containerIfName.size() >= IFNAMSIZ)
    return Error::msg(what + ": invalid interface name '" + containerIfName + "'", EINVAL);
  auto mtu = effectiveMtu(config);
  if (!mtu.ok()) return withContext(what, mtu.error());
  auto bridge = requireLink(host_, bridgeName(config.vni), what + " (network not set up?)");
  if (!bridge.ok()) return bridge.error();

  // A leftover from an interrupted attach would make the create fail; drop it.
  SKIFF_TRY(requestTolerating(host_, nl::delLink(hostName), ENODEV, "delete old " + hostName));
  const std::string mac = macForAddress(address);
  SKIFF_TRY(requestOk(host_, nl::newVeth(hostName, containerIfName, containerNetnsFd, *mtu, mac),
                      what + ": create veth " + hostName + "/" + containerIfName));

  // From here on a failure must not leave a half-made pair behind.
  auto configure = [&]() -> Status {
    auto hostLink = requireLink(host_, hostName, what);
    if (!hostLink.ok()) return hostLink.error();
    SKIFF_TRY(requestOk(host_, nl::setLink(hostLink->index, std::nullopt, bridge->index, true),
                        what + ": enslave " + hostName));
    auto inner = openInNetns_(containerNetnsFd);
    if (!inner.ok()) return withContext(what, inner.error());
    NetlinkTransport& nl = **inner;
    auto peer = requireLink(nl, containerIfName, what + " (container side)");
    if (!peer.ok()) return peer.error();
    SKIFF_TRY(
        requestOk(nl, nl::newAddr(peer->index, address, config.subnet.prefix), what + ": address " + address.str()));
    SKIFF_TRY(requestOk(nl, nl::setLink(peer->index, std::nullopt, std::nullopt, true),
                        what + ": set " + containerIfName + " up"));
    auto lo = requireLink(nl, "lo", what);
    if (!lo.ok()) return lo.error();
    SKIFF_TRY(requestOk(nl, nl::setLink(lo->index, std::nullopt, std::nullopt, true), what + ": set lo up"));
    return okStatus();
  };
  if (auto st = configure(); !st.ok()) {
    (void)requestTolerating(host_, nl::delLink(hostName), ENODEV, "cleanup " + hostName);
    return st.error();
  }
  log::info(kLog, "endpoint ", endpointId, " attached to ", config.name, ": ", hostName, " <-> ", containerIfName, " ",
            address.str(), "/", config.subnet.prefix, " ", mac);
  return Endpoint{hostName, containerIfName, address, config.subnet.prefix, mac};
}

Status Overlay::detach(const std::string& hostIfName) {
  SKIFF_TRY(requestTolerating(host_, nl::delLink(hostIfName), ENODEV, "delete " + hostIfName));
  log::info(kLog, "endpoint ", hostIfName, " removed");
  return okStatus();
}

Status Overlay::addRemotePeer(const NetworkConfig& config, Ipv4 vtep, const std::string& mac, Ipv4 ip) {
  const std::string what = "peer " + ip.str() + " on network " + config.name;
  auto m = parseMac(mac);
  if (!m) return Error::msg(what + ": invalid MAC " + mac, EINVAL);
  auto vx = requireLink(host_, vxlanName(config.vni), what);
  if (!vx.ok()) return vx.error();
  SKIFF_TRY(requestOk(host_, nl::newFdb(vx->index, *m, vtep), what + ": fdb " + mac));
  SKIFF_TRY(requestOk(host_, nl::newNeigh(vx->index, ip, *m), what + ": neighbor"));
  log::info(kLog, "peer added: ", config.name, " ", ip.str(), " ", mac, " via ", vtep.str());
  return okStatus();
}

Status Overlay::removeRemotePeer(const NetworkConfig& config, Ipv4 vtep, const std::string& mac, Ipv4 ip) {
  const std::string what = "peer " + ip.str() + " on network " + config.name;
  auto m = parseMac(mac);
  if (!m) return Error::msg(what + ": invalid MAC " + mac, EINVAL);
  auto vx = findLink(host_, vxlanName(config.vni));
  if (!vx.ok()) return vx.error();
  if (!*vx) return okStatus();  // the network is gone, and its entries with it
  // 0.0.0.0 marks a half entry from listPeers(). A VXLAN FDB delete without
  // a VTEP would drop every remote of the MAC, so it is skipped, not sent.
  if (vtep.host_order != 0)
    SKIFF_TRY(requestTolerating(host_, nl::delFdb((*vx)->index, *m, vtep), ENOENT,
                                what + ": delete fdb " + mac + " via " + vtep.str()));
  if (ip.host_order != 0)
    SKIFF_TRY(requestTolerating(host_, nl::delNeigh((*vx)->index, ip), ENOENT, what + ": delete neighbor"));
  log::info(kLog, "peer removed: ", config.name, " ", ip.str(), " ", mac, " via ", vtep.str());
  return okStatus();
}

Result<std::vector<Peer>> Overlay::listPeers(const NetworkConfig& config) {
  const std::string what = "peers of network " + config.name;
  auto vx = findLink(host_, vxlanName(config.vni));
  if (!vx.ok()) return withContext(what, vx.error());
  if (!*vx) return std::vector<Peer>{};
  const int index = (*vx)->index;

  // The kernel dumps every device's entries (see nl::dumpNeigh): keep ours.
  auto fdbDump = host_.request(nl::dumpNeigh(AF_BRIDGE, index));
  if (!fdbDump.ok()) return withContext(what + ": dump fdb", fdbDump.error());
  std::vector<std::pair<std::string, Ipv4>> fdb;  // MAC -> VTEP
  for (const auto& msg : *fdbDump) {
    auto n = nl::parseNeigh(msg);
    // Entries without NDA_DST are the bridge's own (learned, or its ports'
    // addresses), not ours; IPv6 VTEPs are not ours either.
    if (!n || n->family != AF_BRIDGE || n->ifindex != index || !n->dst || n->mac.empty()) continue;
    fdb.emplace_back(n->mac, *n->dst);
  }
  auto neighDump = host_.request(nl::dumpNeigh(AF_INET, index));
  if (!neighDump.ok()) return withContext(what + ": dump neighbors", neighDump.error());
  std::vector<std::pair<Ipv4, std::string>> neigh;  // IP -> MAC
  for (const auto& msg : *neighDump) {
    auto n = nl::parseNeigh(msg);
    if (!n || n->family != AF_INET || n->ifindex != index || !n->dst || n->mac.empty() || !(n->state & NUD_PERMANENT))
      continue;
    neigh.emplace_back(*n->dst, n->mac);
  }

  std::set<Peer> peers;
  const Ipv4 none{};
  for (const auto& [mac, vtep] : fdb) {
    bool joined = false;
    for (const auto& [ip, neighMac] : neigh) {
      if (neighMac != mac) continue;
      peers.insert(Peer{config.vni, ip, mac, vtep});
      joined = true;
    }
    if (!joined) peers.insert(Peer{config.vni, none, mac, vtep});
  }
  for (const auto& entry : neigh) {
    if (std::none_of(fdb.begin(), fdb.end(), [&](const auto& f) { return f.first == entry.second; }))
      peers.insert(Peer{config.vni, entry.first, entry.second, none});
  }
  return std::vector<Peer>(peers.begin(), peers.end());
}

Result<std::vector<uint32_t>> Overlay::listNetworks() {
  auto links = host_.request(nl::dumpLinks());
  if (!links.ok()) return withContext("list networks: dump links", links.error());
  std::set<uint32_t> vnis;
  for (const auto& msg : *links) {
    auto link = nl::parseLink(msg);
    if (!link) continue;
    if (auto vni = vniOfDeviceName(link->name)) vnis.insert(*vni);
  }
  return std::vector<uint32_t>(vnis.begin(), vnis.end());
}

Result<std::vector<Overlay::DeviceStats>> Overlay::networkStats(const NetworkConfig& config) {
  std::vector<DeviceStats> out;
  for (const std::string& name : {vxlanName(config.vni), bridgeName(config.vni)}) {
    auto link = findLink(host_, name);
    if (!link.ok()) return withContext("counters of network " + config.name, link.error());
    if (!*link) continue;
    if (!(*link)->stats)
      return Error::msg("counters of network " + config.name + ": no IFLA_STATS64 in the reply for " + name, EPROTO);
    out.push_back(DeviceStats{name, (*link)->kind, *(*link)->stats});
  }
  return out;
}

Result<int> Overlay::underlayMtu() {
  auto routes = host_.request(nl::dumpRoutes());
  if (!routes.ok()) return withContext("dump routes", routes.error());
  for (const auto& msg : *routes) {
    auto r = nl::parseRoute(msg);
    if (!r || r->dstLen != 0 || r->table != RT_TABLE_MAIN || r->oif == 0) continue;
    auto link = host_.request(nl::getLinkByIndex(r->oif));
    if (!link.ok()) return withContext("default route device", link.error());
    for (const auto& m : *link)
      if (auto l = nl::parseLink(m)) return l->mtu;
  }
  return 1500;
}

}  // namespace skiff::overlay
