#pragma once
// The overlay's one seam to the kernel: a rtnetlink transport (real one on a
// libmnl socket, FakeNetlink for unit tests) plus pure message builders and
// parsers. Building a message never touches a socket, so unit tests check the
// bytes; the transport fills in sequence number and port id, asks for an ACK,
// checks seq/portid of every reply and turns NLMSG_ERROR into an Error with
// the kernel's extended-ack text. Blocking; used from netd's loop thread
// (requests are short, local and bounded).

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/overlay/ipam.h"

namespace skiff::overlay {

using NlMessage = std::vector<uint8_t>;

class NetlinkTransport {
 public:
  virtual ~NetlinkTransport();
  // Sends one request and returns the replies that carry data (dump parts or
  // the answer to a GET); an empty list for a plain ACK. On NLMSG_ERROR the
  // Error has code = errno and message "<strerror>: <kernel extack>".
  [[nodiscard]] virtual Result<std::vector<NlMessage>> request(NlMessage msg) = 0;
};

// A NETLINK_ROUTE socket in the calling thread's network namespace.
[[nodiscard]] Result<std::unique_ptr<NetlinkTransport>> openNetlink();
// A socket created inside another netns (a short-lived helper thread setns()es
// and opens it; a socket stays bound to the netns it was created in).
[[nodiscard]] Result<std::unique_ptr<NetlinkTransport>> openNetlinkInNetns(int netnsFd);

// Records every request; answers with scripted replies in order, then with
// plain ACKs. A scripted reply may hold many messages: that is how a dump
// (links, neighbours, FDB) is answered. Errors can be injected to test the
// error paths.
class FakeNetlink : public NetlinkTransport {
 public:
  Result<std::vector<NlMessage>> request(NlMessage msg) override;
  void pushReply(std::vector<NlMessage> replies) { script_.emplace_back(std::move(replies)); }
  void pushError(Error error) { script_.emplace_back(std::move(error)); }
  const std::vector<NlMessage>& requests() const { return requests_; }

 private:
  std::vector<NlMessage> requests_;
  std::deque<Result<std::vector<NlMessage>>> script_;
};

// A device's counters as the kernel keeps them (IFLA_STATS64, the first
// eight fields of struct rtnl_link_stats64). They only grow while the device
// exists and start again from 0 when it is made anew.
struct LinkStats {
  uint64_t rxPackets = 0, txPackets = 0, rxBytes = 0, txBytes = 0;
  uint64_t rxErrors = 0, txErrors = 0, rxDropped = 0, txDropped = 0;
};

// What the overlay reads back from an RTM_NEWLINK message.
struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;    // "bridge", "vxlan", "veth", "" for plain devices
  unsigned flags = 0;  // IFF_*
  int mtu = 0;
  int master = 0;
  std::string mac;  // "02:42:0a:00:00:02"
  std::optional<uint32_t> vni;
  std::optional<uint16_t> vxlanPort;  // host order
  std::optional<bool> vxlanLearning;
  std::optional<bool> vxlanProxy;
  std::optional<Ipv4> vxlanLocal;
  // Absent when the message carries no IFLA_STATS64 (a request we built; the
  // kernel's answer to RTM_GETLINK always has it).
  std::optional<LinkStats> stats;
};

struct RouteInfo {
  int dstLen = 0;
  int table = 0;
  int oif = 0;
};

struct NeighInfo {
  int family = 0;
  int ifindex = 0;
  uint16_t state = 0;
  uint8_t flags = 0;
  std::string mac;
  std::optional<Ipv4> dst;
};

// Parses "aa:bb:cc:dd:ee:ff".
std::optional<std::array<uint8_t, 6>> parseMac(std::string_view text);
std::string formatMac(const uint8_t* bytes);
// Docker's scheme: 02:42 followed by the IPv4 address, unique per network.
std::string macForAddress(Ipv4 ip);

// Pure builders: seq and portid are left 0 for the transport to fill in.
namespace nl {
struct VxlanParams {
  uint32_t vni = 0;
  uint16_t port = 4789;
  std::optional<Ipv4> local;
  bool learning = false;
  bool proxy = true;  // answer ARP from the neighbor table (remote peers)
};
// A bridge; `mac` (IFLA_ADDRESS) pins its address, which otherwise follows
// the lowest MAC among its ports and changes as ports come and go.
NlMessage newBridge(const std::string& name, int mtu, std::optional<std::array<uint8_t, 6>> mac = std::nullopt);
NlMessage newVxlan(const std::string& name, const VxlanParams& params, int mtu);
// Veth pair: `name` in the socket's netns, `peerName` created directly in the
// netns behind peerNetnsFd (or beside it when -1) with the given MAC and MTU.
NlMessage newVeth(const std::string& name, const std::string& peerName, int peerNetnsFd, int mtu,
                  const std::string& peerMac);
// Changes an existing link; unset fields stay as they are.
NlMessage setLink(int index, std::optional<int> mtu, std::optional<int> master, bool up);
// Sets the hardware address of an existing link (up or down).
NlMessage setLinkAddress(int index, const std::array<uint8_t, 6>& mac);
NlMessage getLink(const std::string& name);
NlMessage dumpLinks();
NlMessage getLinkByIndex(int index);
NlMessage delLink(const std::string& name);
NlMessage newAddr(int index, Ipv4 ip, int prefix);  // replace: idempotent
NlMessage dumpRoutes();
// Neighbour dump: AF_INET for IP -> MAC entries, AF_BRIDGE for FDB entries
// (bridge and VXLAN devices). Without NETLINK_GET_STRICT_CHK (we do not set
// it) the kernel ignores ifindex and dumps every device: filter the replies.
NlMessage dumpNeigh(int family, int ifindex);
// FDB entry on a VXLAN device: MAC -> remote VTEP (bridge family, NTF_SELF).
NlMessage newFdb(int vxlanIndex, const std::array<uint8_t, 6>& mac, Ipv4 vtep);
NlMessage delFdb(int vxlanIndex, const std::array<uint8_t, 6>& mac, Ipv4 vtep);
// Neighbor entry: IP -> MAC on the VXLAN device, permanent.
NlMessage newNeigh(int index, Ipv4 ip, const std::array<uint8_t, 6>& mac);
NlMessage delNeigh(int index, Ipv4 ip);

std::optional<LinkInfo> parseLink(const NlMessage& msg);
std::optional<RouteInfo> parseRoute(const NlMessage& msg);
std::optional<NeighInfo> parseNeigh(const NlMessage& msg);
}  // namespace nl

}  // namespace skiff::overlay
