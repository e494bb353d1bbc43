#pragma once
// IPv4 value types and the cluster-wide IPAM. Pure logic, no kernel access:
// the manager owns one Ipam, allocates a subnet per overlay network from the
// address pool (10.0.0.0/8 in /24s by default, 10.0.0.0/24 kept for
// "ingress") and an address per endpoint. toJson()/fromJson() let netd
// persist it in its state store. Not thread-safe; netd calls it on its loop.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "skiff/common/result.h"

namespace skiff::overlay {

struct Ipv4 {
  uint32_t host_order = 0;

  static std::optional<Ipv4> parse(std::string_view text);
  std::string str() const;
  // Network byte order, as netlink attributes and sockaddr_in want it.
  uint32_t networkOrder() const;
  friend auto operator<=>(const Ipv4&, const Ipv4&) = default;
};

struct Subnet {
  Ipv4 base;
  int prefix = 0;

  // "10.0.1.0/24"; rejects host bits set ("10.0.1.5/24") so a typo does not
  // silently become another network.
  static std::optional<Subnet> parse(std::string_view text);
  std::string str() const;
  uint32_t mask() const;
  bool contains(Ipv4 ip) const;
  bool overlaps(const Subnet& other) const;
  Ipv4 gateway() const;    // base + 1
  Ipv4 broadcast() const;  // last address
  uint64_t size() const { return uint64_t{1} << (32 - prefix); }
  friend bool operator==(const Subnet&, const Subnet&) = default;
};

class Ipam {
 public:
  static constexpr std::string_view kIngress = "ingress";

  explicit Ipam(Subnet pool = Subnet{Ipv4{0x0a000000}, 8}, int subnetPrefix = 24);

  // Returns the network's subnet, allocating one if it has none (idempotent
  // when called again with the same or no request). A requested subnet must
  // not overlap another network's nor the ingress reservation; it may lie
  // outside the pool. Without a request the lowest free subnet of the pool is
  // taken; "ingress" gets the pool's first subnet.
  Result<Subnet> allocateSubnet(const std::string& network, std::optional<Subnet> requested);
  Status releaseSubnet(const std::string& network);
  std::optional<Subnet> subnetOf(const std::string& network) const;

  // Lowest free address of the network's subnet; never the network address,
  // the .1 gateway (kept for the node/ingress side) or the broadcast address.
  Result<Ipv4> allocateAddress(const std::string& network, std::optional<Ipv4> requested = {});
  Status releaseAddress(const std::string& network, Ipv4 ip);

  Subnet pool() const { return pool_; }
  int subnetPrefix() const { return subnetPrefix_; }

  nlohmann::json toJson() const;
  static Result<Ipam> fromJson(const nlohmann::json& json);

 private:
  struct Network {
    Subnet subnet;
    std::set<Ipv4> used;
  };
  Subnet ingressSubnet() const { return Subnet{pool_.base, subnetPrefix_}; }

  Subnet pool_;
  int subnetPrefix_;
  std::map<std::string, Network> networks_;
};

}  // namespace skiff::overlay
