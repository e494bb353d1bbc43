#include "skiff/overlay/ipam.h"

#include <arpa/inet.h>

#include <charconv>

namespace skiff::overlay {

std::optional<Ipv4> Ipv4::parse(std::string_view text) {
  uint32_t value = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    // One to three digits, no sign, no leading '+', value <= 255.
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc() || next == p || next - p > 3 || octet > 255) return std::nullopt;
    p = next;
    value = (value << 8) | octet;
  }
  if (p != end) return std::nullopt;
  return Ipv4{value};
}

std::string Ipv4::str() const {
  return std::to_string(host_order >> 24) + "." + std::to_string((host_order >> 16) & 0xff) + "." +
         std::to_string((host_order >> 8) & 0xff) + "." + std::to_string(host_order & 0xff);
}

uint32_t Ipv4::networkOrder() const { return htonl(host_order); }

std::optional<Subnet> Subnet::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = Ipv4::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  auto rest = text.substr(slash + 1);
  int prefix = -1;
  auto [next, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), prefix);
  if (ec != std::errc() || next != rest.data() + rest.size() || rest.empty() || prefix < 0 || prefix > 32)
    return std::nullopt;
  Subnet s{*ip, prefix};
  if ((ip->host_order & s.mask()) != ip->host_order) return std::nullopt;
  return s;
}

std::string Subnet::str() const { return base.str() + "/" + std::to_string(prefix); }

uint32_t Subnet::mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

bool Subnet::contains(Ipv4 ip) const { return (ip.host_order & mask()) == base.host_order; }

bool Subnet::overlaps(const Subnet& other) const {
  // Two aligned prefixes overlap iff the shorter one contains the other's base.
  return prefix <= other.prefix ? contains(other.base) : other.contains(base);
}

Ipv4 Subnet::gateway() const { return Ipv4{base.host_order + 1}; }

Ipv4 Subnet::broadcast() const { return Ipv4{base.host_order | ~mask()}; }

Ipam::Ipam(Subnet pool, int subnetPrefix) : pool_(pool), subnetPrefix_(subnetPrefix) {
  // A pool smaller than one subnet would make every allocation fail; clamp so
  // the error says "exhausted" instead of looping over nothing.
  if (subnetPrefix_ < pool_.prefix) subnetPrefix_ = pool_.prefix;
  if (subnetPrefix_ > 30) subnetPrefix_ = 30;
}

std::optional<Subnet> Ipam::subnetOf(const std::string& network) const {
  auto it = networks_.find(network);
  if (it == networks_.end()) return std::nullopt;
  return it->second.subnet;
}

Result<Subnet> Ipam::allocateSubnet(const std::string& network, std::optional<Subnet> requested) {
  if (network.empty()) return Error::msg("allocate subnet: empty network name", EINVAL);
  if (auto it = networks_.find(network); it != networks_.end()) {
    if (requested && !(*requested == it->second.subnet))
      return Error::msg("network " + network + " already has subnet " + it->second.subnet.str() +
                            ", cannot change it to " + requested->str(),
                        EEXIST);
    return it->second.subnet;
  }
  const bool isIngress = network == kIngress;
  auto conflict = [&](const Subnet& candidate) -> std::optional<std::string> {
    for (const auto& [name, net] : networks_)
      if (net.subnet.overlaps(candidate)) return "subnet " + net.subnet.str() + " of network " + name;
    if (!isIngress && candidate.overlaps(ingressSubnet()))
      return "subnet " + ingressSubnet().str() + " reserved for ingress";
    return std::nullopt;
  };
  if (requested) {
    if (requested->prefix > 30)
      return Error::msg("subnet " + requested->str() + " for network " + network + " is too small (at most /30)",
                        EINVAL);
    if (auto c = conflict(*requested))
      return Error::msg("subnet " + requested->str() + " requested by network " + network + " overlaps " + *c, EEXIST);
    networks_[network] = Network{*requested, {}};
    return *requested;
  }
  const uint64_t count = uint64_t{1} << (subnetPrefix_ - pool_.prefix);
  const uint32_t step = static_cast<uint32_t>(uint64_t{1} << (32 - subnetPrefix_));
  // Bounded: at most 2^(subnetPrefix - poolPrefix) candidates (65536 for /8 in /24s).
  for (uint64_t i = isIngress ? 0 : 1; i < count; ++i) {
    Subnet candidate{Ipv4{pool_.base.host_order + static_cast<uint32_t>(i) * step}, subnetPrefix_};
    if (conflict(candidate)) continue;
    networks_[network] = Network{candidate, {}};
    return candidate;
  }
  return Error::msg("address pool " + pool_.str() + " exhausted: no free /" + std::to_string(subnetPrefix_) +
                        " subnet for network " + network,
                    ENOSPC);
}

Status Ipam::releaseSubnet(const std::string& network) {
  if (networks_.erase(network) == 0) return Error::msg("release subnet: network " + network + " has no subnet", ENOENT);
  return okStatus();
}

Result<Ipv4> Ipam::allocateAddress(const std::string& network, std::optional<Ipv4> requested) {
  auto it = networks_.find(network);
  if (it == networks_.end()) return Error::msg("allocate address: network " + network + " has no subnet", ENOENT);
  Network& net = it->second;
  const Ipv4 first{net.subnet.base.host_order + 2};  // skip network address and .1 gateway
  const Ipv4 last{net.subnet.broadcast().host_order - 1};
  if (requested) {
    if (!net.subnet.contains(*requested) || *requested < first || last < *requested)
      return Error::msg(
          "address " + requested->str() + " is not assignable in network " + network + " (" + net.subnet.str() + ")",
          EINVAL);
    if (!net.used.insert(*requested).second)
      return Error::msg("address " + requested->str() + " is already in use in network " + network, EADDRINUSE);
    return *requested;
  }
  // Walk the sorted used set alongside the candidate; bounded by the subnet size.
  uint32_t candidate = first.host_order;
  for (const Ipv4& used : net.used) {
    if (used.host_order < candidate) continue;
    if (used.host_order > candidate) break;
    ++candidate;
  }
  if (candidate > last.host_order)
    return Error::msg("no free address in network " + network + " (" + net.subnet.str() + ")", ENOSPC);
  net.used.insert(Ipv4{candidate});
  return Ipv4{candidate};
}

Status Ipam::releaseAddress(const std::string& network, Ipv4 ip) {
  auto it = networks_.find(network);
  if (it == networks_.end()) return Error::msg("release address: network " + network + " has no subnet", ENOENT);
  if (it->second.used.erase(ip) == 0)
    return Error::msg("release address: " + ip.str() + " is not allocated in network " + network, ENOENT);
  return okStatus();
}

nlohmann::json Ipam::toJson() const {
  nlohmann::json nets = nlohmann::json::object();
  for (const auto& [name, net] : networks_) {
    nlohmann::json addrs = nlohmann::json::array();
    for (const Ipv4& ip : net.used) addrs.push_back(ip.str());
    nets[name] = {{"subnet", net.subnet.str()}, {"addresses", addrs}};
  }
  return {{"pool", pool_.str()}, {"subnetPrefix", subnetPrefix_}, {"networks", nets}};
}

Result<Ipam> Ipam::fromJson(const nlohmann::json& json) {
  auto bad = [](const std::string& why) { return Error::msg("ipam state: " + why, EINVAL); };
  if (!json.is_object() || !json.contains("pool") || !json["pool"].is_string() || !json.contains("subnetPrefix") ||
      !json["subnetPrefix"].is_number_integer())
    return bad("missing pool or subnetPrefix");
  auto pool = Subnet::parse(json["pool"].get<std::string>());
  if (!pool) return bad("invalid pool " + json["pool"].get<std::string>());
  Ipam ipam(*pool, json["subnetPrefix"].get<int>());
  if (!json.contains("networks")) return ipam;
  if (!json["networks"].is_object()) return bad("networks is not an object");
  for (const auto& [name, net] : json["networks"].items()) {
    if (!net.is_object() || !net.contains("subnet") || !net["subnet"].is_string())
      return bad("network " + name + " has no subnet");
    auto subnet = Subnet::parse(net["subnet"].get<std::string>());
    if (!subnet) return bad("network " + name + " has an invalid subnet");
    Network n{*subnet, {}};
    if (net.contains("addresses")) {
      if (!net["addresses"].is_array()) return bad("network " + name + ": addresses not a list");
      for (const auto& a : net["addresses"]) {
        auto ip = a.is_string() ? Ipv4::parse(a.get<std::string>()) : std::nullopt;
        if (!ip || !subnet->contains(*ip)) return bad("network " + name + ": bad address");
        n.used.insert(*ip);
      }
    }
    ipam.networks_[name] = std::move(n);
  }
  return ipam;
}

}  // namespace skiff::overlay
