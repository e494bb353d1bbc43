#pragma once
// ServiceTable: the services the socket-LB serves, written into its maps in
// an order that never lets a program pick a backend that was taken out. Pure
// logic over a MapStore; unit-tested on a fake one.
//
// Replacing a backend list: the new list goes into the half of the slots the
// programs do not read, then each frontend's value is swapped in one map
// update (count and generation together), then the old half is deleted. A
// connect that read the old value and finds its slot deleted is left to the
// proxy; none is ever sent to a backend absent from the newest list once
// setService returns.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "maps.h"
#include "skiff/socklb/socklb.h"

namespace skiff::socklb {

// "10.0.0.2" -> network byte order; an error names the text.
Result<uint32_t> parseIpv4(const std::string& ip);
std::string formatIpv4(uint32_t addrNetworkOrder);

class ServiceTable {
 public:
  explicit ServiceTable(MapStore& maps) : maps_(maps) {}
  Status set(const std::string& name, const Service& service);
  Status remove(const std::string& name);
  // The service's id (its `rr` slot), if it is here.
  const uint32_t* idOf(const std::string& name) const;
  // Connections and UDP flows the programs gave each backend, by service.
  std::map<std::string, std::map<Endpoint, uint64_t>> picks() const;

 private:
  struct Entry {
    uint32_t id = 0;
    uint32_t gen = 0;
    uint32_t count = 0;
    std::set<FrontendKey> frontends;
  };
  Status eraseHalf(const Entry& e);
  MapStore& maps_;
  std::map<std::string, Entry> entries_;
  std::map<FrontendKey, std::string> owners_;
  std::set<uint32_t> freeIds_;
  uint32_t nextId_ = 0;
};

}  // namespace skiff::socklb
