#pragma once
// The socket-LB's maps as user space sees them, and the seam to the kernel:
// MapStore is the BPF maps (BpfMaps, bpf_maps.cc) or a fake in the tests.
// The layouts mirror socklb/bpf/socklb.bpf.c: keep them in step. Addresses
// and ports are in network byte order, as the programs read them.

#include <sys/types.h>

#include <cstdint>
#include <map>

#include "skiff/common/result.h"

namespace skiff::socklb {

struct FrontendKey {
  uint32_t addr = 0;
  uint16_t port = 0;
  uint8_t proto = 0;
  uint8_t pad = 0;
  auto operator<=>(const FrontendKey&) const = default;
};

// A service's backends live in slots {service, gen & 1, 0..count-1}.
struct FrontendValue {
  uint32_t service = 0;
  uint32_t count = 0;
  uint32_t gen = 0;
  uint32_t pad = 0;
  auto operator<=>(const FrontendValue&) const = default;
};

struct BackendKey {
  uint32_t service = 0;
  uint16_t half = 0;
  uint16_t slot = 0;
  auto operator<=>(const BackendKey&) const = default;
};

struct EndpointValue {
  uint32_t addr = 0;
  uint16_t port = 0;
  uint16_t pad = 0;
  auto operator<=>(const EndpointValue&) const = default;
};

// A backend slot's value: with kCheckSocket, the programs look up its
// listening socket in network namespace `netns` (an id relative to the
// client's; -1: the client's own) and pass it over when there is none.
inline constexpr uint16_t kCheckSocket = 1;
struct BackendValue {
  uint32_t addr = 0;
  uint16_t port = 0;
  uint16_t flags = 0;
  int32_t netns = -1;
  uint32_t pad = 0;
  auto operator<=>(const BackendValue&) const = default;
};

struct PickKey {
  uint32_t service = 0;
  uint32_t addr = 0;
  uint16_t port = 0;
  uint16_t pad = 0;
  auto operator<=>(const PickKey&) const = default;
};

static_assert(sizeof(PickKey) == 12 && sizeof(FrontendKey) == 8 && sizeof(FrontendValue) == 16 &&
              sizeof(BackendKey) == 8 && sizeof(EndpointValue) == 8 && sizeof(BackendValue) == 16);

inline constexpr uint32_t kMaxServices = 4096;   // the `rr` array's size
inline constexpr uint32_t kMaxBackends = 65535;  // slots per half

class MapStore {
 public:
  virtual ~MapStore() = default;
  virtual Status putFrontend(const FrontendKey& k, const FrontendValue& v) = 0;
  virtual Status eraseFrontend(const FrontendKey& k) = 0;  // an absent key is not an error
  virtual Status putBackend(const BackendKey& k, const BackendValue& v) = 0;
  virtual Status eraseBackend(const BackendKey& k) = 0;
  // The service's round-robin counter (the mmapped `rr` array).
  virtual uint64_t* turns(uint32_t service) = 0;
  virtual std::map<PickKey, uint64_t> picks() const = 0;
  // A service's counts go with it (its id is reused).
  virtual void erasePicks(uint32_t service) = 0;
  // The id of pid's network namespace relative to this process's (-1 when
  // it is this one), assigned if it has none; an error when pid is gone.
  virtual Result<int32_t> netnsIdOf(pid_t pid) = 0;
};

}  // namespace skiff::socklb
