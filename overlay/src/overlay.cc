#include "skiff/overlay/overlay.h"

#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cctype>
#include <cerrno>
#include <cstdio>

#include "skiff/common/log.h"

namespace skiff::overlay {
namespace {

constexpr std::string_view kLog = "overlay";

Error withContext(const std::string& what, const Error& e) {
  return Error{e.code, what + ": " + e.message};
}

// Runs a request whose "already there"/"already gone" answer is success.
Status requestTolerating(NetlinkTransport& nl, NlMessage msg, int okErrno,
                         const std::string& what) {
  auto r = nl.request(std::move(msg));
  if (!r.ok() && r.error().code != okErrno) return withContext(what, r.error());
  return okStatus();
}

Status requestOk(NetlinkTransport& nl, NlMessage msg, const std::string& what) {
  auto r = nl.request(std::move(msg));
  if (!r.ok()) return withContext(what, r.error());
  return okStatus();
}

Result<LinkInfo> requireLink(NetlinkTransport& nl, const std::string& name,
                             const std::string& why) {
  auto link = findLink(nl, name);
  if (!link.ok()) return link.error();
  if (!link.value()) return Error::msg(why + ": link " + name + " does not exist", ENODEV);
  return **link;
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

Overlay::Overlay(NetlinkTransport& host, NetnsOpener openInNetns)
    : host_(host), openInNetns_(std::move(openInNetns)) {}

std::string Overlay::bridgeName(uint32_t vni) { return "skbr-" + std::to_string(vni); }
std::string Overlay::vxlanName(uint32_t vni) { return "skvx-" + std::to_string(vni); }

std::string Overlay::hostIfName(const std::string& endpointId,
                                const std::string& containerIfName) {
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
    return Error::msg(what + ": VNI " + std::to_string(config.vni) + " out of range 1.." +
                          std::to_string(kMaxVni),
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

  // Bridge: create if missing, then (re)apply MTU and up.
  auto bridge = findLink(host_, br);
  if (!bridge.ok()) return bridge.error();
  if (*bridge && (*bridge)->kind != "bridge")
    return Error::msg(what + ": " + br + " exists but is a " + (*bridge)->kind, EEXIST);
  if (!*bridge) SKIFF_TRY(requestOk(host_, nl::newBridge(br, *mtu), "create bridge " + br));
  auto brLink = requireLink(host_, br, what);
  if (!brLink.ok()) return brLink.error();
  SKIFF_TRY(requestOk(host_, nl::setLink(brLink->index, *mtu, std::nullopt, true),
                      "set bridge " + br + " up"));

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
  SKIFF_TRY(requestOk(host_, nl::setLink(vxLink->index, *mtu, brLink->index, true),
                      "attach " + vx + " to " + br));

  if (config.nodeAddress)
    SKIFF_TRY(requestOk(host_,
                        nl::newAddr(brLink->index, config.nodeAddress->first,
                                    config.nodeAddress->second),
                        "address " + config.nodeAddress->first.str() + " on " + br));
  log::info(kLog, "network ", config.name, " up (vni ", config.vni, ", ", br, "/", vx, ", subnet ",
            config.subnet.str(), ", mtu ", *mtu, ")");
  return okStatus();
}

Status Overlay::removeNetwork(const NetworkConfig& config) {
  SKIFF_TRY(requestTolerating(host_, nl::delLink(vxlanName(config.vni)), ENODEV,
                              "delete " + vxlanName(config.vni)));
  SKIFF_TRY(requestTolerating(host_, nl::delLink(bridgeName(config.vni)), ENODEV,
                              "delete " + bridgeName(config.vni)));
  log::info(kLog, "network ", config.name, " removed (vni ", config.vni, ")");
  return okStatus();
}

Result<Overlay::Endpoint> Overlay::attach(const NetworkConfig& config, int containerNetnsFd,
                                          const std::string& endpointId,
                                          const std::string& containerIfName, Ipv4 address) {
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
    SKIFF_TRY(requestOk(nl, nl::newAddr(peer->index, address, config.subnet.prefix),
                        what + ": address " + address.str()));
    SKIFF_TRY(requestOk(nl, nl::setLink(peer->index, std::nullopt, std::nullopt, true),
                        what + ": set " + containerIfName + " up"));
    auto lo = requireLink(nl, "lo", what);
    if (!lo.ok()) return lo.error();
    SKIFF_TRY(requestOk(nl, nl::setLink(lo->index, std::nullopt, std::nullopt, true),
                        what + ": set lo up"));
    return okStatus();
  };
  if (auto st = configure(); !st.ok()) {
    (void)requestTolerating(host_, nl::delLink(hostName), ENODEV, "cleanup " + hostName);
    return st.error();
  }
  log::info(kLog, "endpoint ", endpointId, " attached to ", config.name, ": ", hostName, " <-> ",
            containerIfName, " ", address.str(), "/", config.subnet.prefix, " ", mac);
  return Endpoint{hostName, containerIfName, address, config.subnet.prefix, mac};
}

Status Overlay::detach(const std::string& hostIfName) {
  SKIFF_TRY(requestTolerating(host_, nl::delLink(hostIfName), ENODEV, "delete " + hostIfName));
  log::info(kLog, "endpoint ", hostIfName, " removed");
  return okStatus();
}

Status Overlay::addRemotePeer(const NetworkConfig& config, Ipv4 vtep, const std::string& mac,
                              Ipv4 ip) {
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

Status Overlay::removeRemotePeer(const NetworkConfig& config, Ipv4 vtep, const std::string& mac,
                                 Ipv4 ip) {
  const std::string what = "peer " + ip.str() + " on network " + config.name;
  auto m = parseMac(mac);
  if (!m) return Error::msg(what + ": invalid MAC " + mac, EINVAL);
  auto vx = findLink(host_, vxlanName(config.vni));
  if (!vx.ok()) return vx.error();
  if (!*vx) return okStatus();  // the network is gone, and its entries with it
  SKIFF_TRY(requestTolerating(host_, nl::delFdb((*vx)->index, *m, vtep), ENOENT,
                              what + ": delete fdb"));
  SKIFF_TRY(requestTolerating(host_, nl::delNeigh((*vx)->index, ip), ENOENT,
                              what + ": delete neighbor"));
  log::info(kLog, "peer removed: ", config.name, " ", ip.str(), " ", mac);
  return okStatus();
}

Result<Overlay::LinkStats> Overlay::vxlanStats(const NetworkConfig& config) {
  auto vx = requireLink(host_, vxlanName(config.vni), "stats of network " + config.name);
  if (!vx.ok()) return vx.error();
  return LinkStats{vx->rxPackets, vx->txPackets, vx->rxBytes, vx->txBytes};
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
