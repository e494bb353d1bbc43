#include "table.h"

#include <arpa/inet.h>

#include <cerrno>
#include <climits>
#include <optional>

namespace skiff::socklb {

namespace {

const char* protocolName(Protocol p) { return p == Protocol::kUdp ? "udp" : "tcp"; }

constexpr int32_t kNoNetns = INT32_MAX;

}  // namespace

Result<uint32_t> parseIpv4(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return Error::msg("\"" + ip + "\" is not an IPv4 address");
  return a.s_addr;
}

std::string formatIpv4(uint32_t addrNetworkOrder) {
  char text[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = addrNetworkOrder;
  inet_ntop(AF_INET, &a, text, sizeof text);
  return text;
}

const uint32_t* ServiceTable::idOf(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.id;
}

std::map<std::string, std::map<Endpoint, uint64_t>> ServiceTable::picks() const {
  std::map<uint32_t, const std::string*> names;
  for (const auto& [name, e] : entries_) names[e.id] = &name;
  std::map<std::string, std::map<Endpoint, uint64_t>> out;
  for (const auto& [k, n] : maps_.picks()) {
    auto name = names.find(k.service);
    if (name == names.end()) continue;
    out[*name->second][Endpoint{formatIpv4(k.addr), ntohs(k.port)}] += n;
  }
  return out;
}

Status ServiceTable::eraseHalf(const Entry& e) {
  Status first;
  for (uint32_t slot = 0; slot < e.count; ++slot) {
    BackendKey k{e.id, static_cast<uint16_t>(e.gen & 1), static_cast<uint16_t>(slot)};
    auto st = maps_.eraseBackend(k);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

Status ServiceTable::set(const std::string& name, const Service& service) {
  // Everything is checked before the maps change.
  std::set<FrontendKey> frontends;
  for (const auto& f : service.frontends) {
    auto addr = parseIpv4(f.ip);
    if (!addr.ok()) return Error::msg("service " + name + ": frontend " + addr.error().message);
    if (f.port == 0) return Error::msg("service " + name + ": frontend " + f.ip + " has no port");
    FrontendKey k{*addr, htons(f.port), static_cast<uint8_t>(service.protocol), 0};
    auto owner = owners_.find(k);
    if (owner != owners_.end() && owner->second != name)
      return Error::msg("service " + name + ": frontend " + f.str() + "/" + protocolName(service.protocol) +
                        " is already served by " + owner->second);
    frontends.insert(k);
  }
  if (service.backends.size() > kMaxBackends)
    return Error::msg("service " + name + ": " + std::to_string(service.backends.size()) +
                      " backends, the socket load balancer takes at most " + std::to_string(kMaxBackends));
  std::vector<BackendValue> backends;
  for (const auto& b : service.backends) {
    auto addr = parseIpv4(b.ip);
    if (!addr.ok()) return Error::msg("service " + name + ": backend " + addr.error().message);
    if (b.port == 0) return Error::msg("service " + name + ": backend " + b.ip + " has no port");
    BackendValue v{*addr, htons(b.port), 0, -1, 0};
    if (b.pid > 0) {
      // A process that is gone already has no namespace: an id no namespace
      // has makes the programs pass it over. Another failure (the kernel
      // refused the netlink request) leaves the backend unchecked.
      auto ns = maps_.netnsIdOf(b.pid);
      if (ns.ok()) {
        v.flags = kCheckSocket;
        v.netns = *ns;
      } else if (ns.error().code == ENOENT || ns.error().code == ESRCH) {
        v.flags = kCheckSocket;
        v.netns = kNoNetns;
      }
    }
    backends.push_back(v);
  }

  auto existing = entries_.find(name);
  std::optional<Entry> old;
  Entry next;
  if (existing != entries_.end()) {
    old = existing->second;
    next.id = old->id;
    next.gen = old->gen + 1;
  } else {
    if (!freeIds_.empty()) {
      next.id = *freeIds_.begin();
    } else if (nextId_ < kMaxServices) {
      next.id = nextId_;
    } else {
      return Error::msg("service " + name + ": the socket load balancer serves at most " +
                        std::to_string(kMaxServices) + " services");
    }
    next.gen = 0;
  }
  next.count = static_cast<uint32_t>(backends.size());

  // 1. The new list, in the half the programs do not read.
  for (uint32_t slot = 0; slot < next.count; ++slot) {
    BackendKey k{next.id, static_cast<uint16_t>(next.gen & 1), static_cast<uint16_t>(slot)};
    auto st = maps_.putBackend(k, backends[slot]);
    if (!st.ok()) {
      next.count = slot;
      (void)eraseHalf(next);
      return Error::msg("service " + name + ": backend " + formatIpv4(backends[slot].addr) + ": " + st.error().message);
    }
  }
  if (!old) {
    if (freeIds_.count(next.id)) {
      freeIds_.erase(next.id);
    } else {
      ++nextId_;
    }
    // A reused id starts its rotation from the first backend again.
    if (uint64_t* t = maps_.turns(next.id)) __atomic_store_n(t, 0, __ATOMIC_RELAXED);
  }

  // 2. Each frontend switches to the new list in one update. One that
  // cannot be written is left out: its clients go through the proxy.
  Status failed;
  FrontendValue value{next.id, next.count, next.gen, 0};
  for (const auto& k : frontends) {
    auto st = maps_.putFrontend(k, value);
    if (st.ok()) {
      next.frontends.insert(k);
      owners_[k] = name;
    } else if (failed.ok()) {
      failed = Error::msg("service " + name + ": frontend " + formatIpv4(k.addr) + ":" + std::to_string(ntohs(k.port)) +
                          ": " + st.error().message);
    }
  }
  // 3. What the new spec no longer has goes: frontends, then the old half.
  if (old) {
    for (const auto& k : old->frontends) {
      if (next.frontends.count(k)) continue;
      (void)maps_.eraseFrontend(k);
      owners_.erase(k);
    }
    auto st = eraseHalf(*old);
    if (!st.ok() && failed.ok()) failed = st;
  }
  entries_[name] = std::move(next);
  return failed;
}

Status ServiceTable::remove(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return okStatus();
  Status failed;
  for (const auto& k : it->second.frontends) {
    auto st = maps_.eraseFrontend(k);
    if (!st.ok() && failed.ok()) failed = st;
    owners_.erase(k);
  }
  auto st = eraseHalf(it->second);
  if (!st.ok() && failed.ok()) failed = st;
  maps_.erasePicks(it->second.id);
  freeIds_.insert(it->second.id);
  entries_.erase(it);
  return failed;
}

}  // namespace skiff::socklb
