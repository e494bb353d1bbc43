// Builders/parsers (pure) and the libmnl transport. Attribute layouts follow
// the kernel's rtnetlink uapi (linux/if_link.h, linux/neighbour.h).
#include "skiff/overlay/netlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <thread>

#include "skiff/common/log.h"

namespace skiff::overlay {

NetlinkTransport::~NetlinkTransport() = default;

// ---------------------------------------------------------------- MAC helpers

std::optional<std::array<uint8_t, 6>> parseMac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  std::array<uint8_t, 6> out{};
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return std::nullopt;
    unsigned v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = text[i * 3 + j];
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + static_cast<unsigned>(d);
    }
    out[i] = static_cast<uint8_t>(v);
  }
  return out;
}

std::string formatMac(const uint8_t* b) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return buf;
}

std::string macForAddress(Ipv4 ip) {
  const uint32_t a = ip.host_order;
  uint8_t b[6] = {0x02,
                  0x42,
                  static_cast<uint8_t>(a >> 24),
                  static_cast<uint8_t>(a >> 16),
                  static_cast<uint8_t>(a >> 8),
                  static_cast<uint8_t>(a)};
  return formatMac(b);
}

// ------------------------------------------------------------------- builders
namespace nl {
namespace {

// A message under construction in a fixed buffer; finish() copies it out.
class Builder {
 public:
  Builder(uint16_t type, uint16_t flags) {
    nlh_ = mnl_nlmsg_put_header(buf_);
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = NLM_F_REQUEST | flags;
  }
  template <typename T>
  T* extra() {
    return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T)));
  }
  nlmsghdr* nlh() { return nlh_; }
  NlMessage finish() const {
    auto* p = reinterpret_cast<const uint8_t*>(nlh_);
    return NlMessage(p, p + nlh_->nlmsg_len);
  }

 private:
  // Every message we build is far below a page; mnl_attr_put_check is not
  // needed because names are length-checked before.
  alignas(nlmsghdr) char buf_[4096] = {};
  nlmsghdr* nlh_;
};

void putIfname(nlmsghdr* nlh, const std::string& name) {
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.substr(0, IFNAMSIZ - 1).c_str());
}

}  // namespace

NlMessage newBridge(const std::string& name, int mtu, std::optional<std::array<uint8_t, 6>> mac) {
  Builder b(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  b.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  putIfname(b.nlh(), name);
  mnl_attr_put_u32(b.nlh(), IFLA_MTU, static_cast<uint32_t>(mtu));
  if (mac) mnl_attr_put(b.nlh(), IFLA_ADDRESS, mac->size(), mac->data());
  nlattr* info = mnl_attr_nest_start(b.nlh(), IFLA_LINKINFO);
  mnl_attr_put_strz(b.nlh(), IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(b.nlh(), info);
  return b.finish();
}

NlMessage newVxlan(const std::string& name, const VxlanParams& p, int mtu) {
  Builder b(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  b.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  putIfname(b.nlh(), name);
  mnl_attr_put_u32(b.nlh(), IFLA_MTU, static_cast<uint32_t>(mtu));
  nlattr* info = mnl_attr_nest_start(b.nlh(), IFLA_LINKINFO);
  mnl_attr_put_strz(b.nlh(), IFLA_INFO_KIND, "vxlan");
  nlattr* data = mnl_attr_nest_start(b.nlh(), IFLA_INFO_DATA);
  mnl_attr_put_u32(b.nlh(), IFLA_VXLAN_ID, p.vni);
  mnl_attr_put_u16(b.nlh(), IFLA_VXLAN_PORT, htons(p.port));
  mnl_attr_put_u8(b.nlh(), IFLA_VXLAN_LEARNING, p.learning ? 1 : 0);
  mnl_attr_put_u8(b.nlh(), IFLA_VXLAN_PROXY, p.proxy ? 1 : 0);
  if (p.local) mnl_attr_put_u32(b.nlh(), IFLA_VXLAN_LOCAL, p.local->networkOrder());
  mnl_attr_nest_end(b.nlh(), data);
  mnl_attr_nest_end(b.nlh(), info);
  return b.finish();
}

NlMessage newVeth(const std::string& name, const std::string& peerName, int peerNetnsFd, int mtu,
                  const std::string& peerMac) {
  Builder b(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  b.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  putIfname(b.nlh(), name);
  mnl_attr_put_u32(b.nlh(), IFLA_MTU, static_cast<uint32_t>(mtu));
  nlattr* info = mnl_attr_nest_start(b.nlh(), IFLA_LINKINFO);
  mnl_attr_put_strz(b.nlh(), IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(b.nlh(), IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(b.nlh(), VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg inside VETH_INFO_PEER.
  auto* peerIfi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(b.nlh()));
  std::memset(peerIfi, 0, sizeof(*peerIfi));
  b.nlh()->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
  putIfname(b.nlh(), peerName);
  mnl_attr_put_u32(b.nlh(), IFLA_MTU, static_cast<uint32_t>(mtu));
  if (auto mac = parseMac(peerMac)) mnl_attr_put(b.nlh(), IFLA_ADDRESS, 6, mac->data());
  if (peerNetnsFd >= 0) mnl_attr_put_u32(b.nlh(), IFLA_NET_NS_FD, static_cast<uint32_t>(peerNetnsFd));
  mnl_attr_nest_end(b.nlh(), peer);
  mnl_attr_nest_end(b.nlh(), data);
  mnl_attr_nest_end(b.nlh(), info);
  return b.finish();
}

NlMessage setLink(int index, std::optional<int> mtu, std::optional<int> master, bool up) {
  Builder b(RTM_NEWLINK, 0);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  if (mtu) mnl_attr_put_u32(b.nlh(), IFLA_MTU, static_cast<uint32_t>(*mtu));
  if (master) mnl_attr_put_u32(b.nlh(), IFLA_MASTER, static_cast<uint32_t>(*master));
  return b.finish();
}

NlMessage setLinkAddress(int index, const std::array<uint8_t, 6>& mac) {
  Builder b(RTM_NEWLINK, 0);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  mnl_attr_put(b.nlh(), IFLA_ADDRESS, mac.size(), mac.data());
  return b.finish();
}

NlMessage dumpLinks() {
  Builder b(RTM_GETLINK, NLM_F_DUMP);
  b.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  return b.finish();
}

NlMessage getLink(const std::string& name) {
  Builder b(RTM_GETLINK, 0);
  b.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  putIfname(b.nlh(), name);
  return b.finish();
}

NlMessage getLinkByIndex(int index) {
  Builder b(RTM_GETLINK, 0);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return b.finish();
}

NlMessage delLink(const std::string& name) {
  Builder b(RTM_DELLINK, 0);
  b.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
  putIfname(b.nlh(), name);
  return b.finish();
}

NlMessage newAddr(int index, Ipv4 ip, int prefix) {
  Builder b(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  auto* ifa = b.extra<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(index);
  mnl_attr_put_u32(b.nlh(), IFA_LOCAL, ip.networkOrder());
  mnl_attr_put_u32(b.nlh(), IFA_ADDRESS, ip.networkOrder());
  return b.finish();
}

NlMessage dumpRoutes() {
  Builder b(RTM_GETROUTE, NLM_F_DUMP);
  b.extra<rtmsg>()->rtm_family = AF_INET;
  return b.finish();
}

NlMessage dumpNeigh(int family, int ifindex) {
  Builder b(RTM_GETNEIGH, NLM_F_DUMP);
  auto* nd = b.extra<ndmsg>();
  nd->ndm_family = static_cast<uint8_t>(family);
  nd->ndm_ifindex = ifindex;
  return b.finish();
}

namespace {
NlMessage fdb(uint16_t type, uint16_t flags, int vxlanIndex, const std::array<uint8_t, 6>& mac, Ipv4 vtep) {
  Builder b(type, flags);
  auto* nd = b.extra<ndmsg>();
  nd->ndm_family = AF_BRIDGE;
  nd->ndm_ifindex = vxlanIndex;
  nd->ndm_state = NUD_PERMANENT;
  nd->ndm_flags = NTF_SELF;  // the VXLAN device's own FDB, not the bridge's
  mnl_attr_put(b.nlh(), NDA_LLADDR, 6, mac.data());
  mnl_attr_put_u32(b.nlh(), NDA_DST, vtep.networkOrder());
  return b.finish();
}
}  // namespace

NlMessage newFdb(int vxlanIndex, const std::array<uint8_t, 6>& mac, Ipv4 vtep) {
  return fdb(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, vxlanIndex, mac, vtep);
}
NlMessage delFdb(int vxlanIndex, const std::array<uint8_t, 6>& mac, Ipv4 vtep) {
  return fdb(RTM_DELNEIGH, 0, vxlanIndex, mac, vtep);
}

NlMessage newNeigh(int index, Ipv4 ip, const std::array<uint8_t, 6>& mac) {
  Builder b(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  auto* nd = b.extra<ndmsg>();
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = index;
  nd->ndm_state = NUD_PERMANENT;
  mnl_attr_put_u32(b.nlh(), NDA_DST, ip.networkOrder());
  mnl_attr_put(b.nlh(), NDA_LLADDR, 6, mac.data());
  return b.finish();
}

NlMessage delNeigh(int index, Ipv4 ip) {
  Builder b(RTM_DELNEIGH, 0);
  auto* nd = b.extra<ndmsg>();
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = index;
  mnl_attr_put_u32(b.nlh(), NDA_DST, ip.networkOrder());
  return b.finish();
}

// -------------------------------------------------------------------- parsers
namespace {

// Walks the attributes in [start, start+len); validates each header so a
// truncated message cannot make us read past the buffer.
template <typename Fn>
void forEachAttr(const void* start, size_t len, Fn&& fn) {
  auto* attr = static_cast<const nlattr*>(start);
  int remaining = static_cast<int>(len);
  while (mnl_attr_ok(attr, remaining)) {
    fn(attr);
    remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(attr) + MNL_ALIGN(attr->nla_len));
  }
}

template <typename Fn>
void forEachNested(const nlattr* nest, Fn&& fn) {
  forEachAttr(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), fn);
}

const nlmsghdr* header(const NlMessage& msg, size_t extra) {
  if (msg.size() < NLMSG_HDRLEN + extra) return nullptr;
  auto* nlh = reinterpret_cast<const nlmsghdr*>(msg.data());
  if (nlh->nlmsg_len > msg.size() || nlh->nlmsg_len < NLMSG_HDRLEN + extra) return nullptr;
  return nlh;
}

uint32_t u32(const nlattr* a) { return mnl_attr_get_payload_len(a) >= 4 ? mnl_attr_get_u32(a) : 0; }
uint8_t u8(const nlattr* a) { return mnl_attr_get_payload_len(a) >= 1 ? mnl_attr_get_u8(a) : 0; }
std::string str(const nlattr* a) {
  auto* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(a)));
}

// The struct grows at its end with the kernel (rx_nohandler in 4.6,
// rx_otherhost_dropped in 5.19): an older kernel sends fewer bytes than our
// headers' sizeof, a newer one more. Only the first eight counters are read,
// so any payload that holds them will do; the rest stays zero.
std::optional<LinkStats> stats64(const nlattr* a) {
  constexpr size_t kNeeded = offsetof(rtnl_link_stats64, multicast);
  const size_t len = mnl_attr_get_payload_len(a);
  if (len < kNeeded) return std::nullopt;
  rtnl_link_stats64 s{};
  std::memcpy(&s, mnl_attr_get_payload(a), std::min(len, sizeof(s)));
  LinkStats out;
  out.rxPackets = s.rx_packets;
  out.txPackets = s.tx_packets;
  out.rxBytes = s.rx_bytes;
  out.txBytes = s.tx_bytes;
  out.rxErrors = s.rx_errors;
  out.txErrors = s.tx_errors;
  out.rxDropped = s.rx_dropped;
  out.txDropped = s.tx_dropped;
  return out;
}

}  // namespace

std::optional<LinkInfo> parseLink(const NlMessage& msg) {
  auto* nlh = header(msg, sizeof(ifinfomsg));
  if (!nlh || nlh->nlmsg_type != RTM_NEWLINK) return std::nullopt;
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  LinkInfo link;
  link.index = ifi->ifi_index;
  link.flags = ifi->ifi_flags;
  const size_t off = MNL_ALIGN(sizeof(ifinfomsg));
  forEachAttr(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + off, mnl_nlmsg_get_payload_len(nlh) - off,
              [&](const nlattr* a) {
                switch (mnl_attr_get_type(a)) {
                  case IFLA_IFNAME:
                    link.name = str(a);
                    break;
                  case IFLA_MTU:
                    link.mtu = static_cast<int>(u32(a));
                    break;
                  case IFLA_MASTER:
                    link.master = static_cast<int>(u32(a));
                    break;
                  case IFLA_ADDRESS:
                    if (mnl_attr_get_payload_len(a) == 6)
                      link.mac = formatMac(static_cast<const uint8_t*>(mnl_attr_get_payload(a)));
                    break;
                  case IFLA_STATS64:
                    link.stats = stats64(a);
                    break;
                  case IFLA_LINKINFO:
                    forEachNested(a, [&](const nlattr* i) {
                      if (mnl_attr_get_type(i) == IFLA_INFO_KIND) link.kind = str(i);
                      if (mnl_attr_get_type(i) != IFLA_INFO_DATA) return;
                      forEachNested(i, [&](const nlattr* d) {
                        switch (mnl_attr_get_type(d)) {
                          case IFLA_VXLAN_ID:
                            link.vni = u32(d);
                            break;
                          case IFLA_VXLAN_PORT:
                            if (mnl_attr_get_payload_len(d) >= 2) link.vxlanPort = ntohs(mnl_attr_get_u16(d));
                            break;
                          case IFLA_VXLAN_LEARNING:
                            link.vxlanLearning = u8(d) != 0;
                            break;
                          case IFLA_VXLAN_PROXY:
                            link.vxlanProxy = u8(d) != 0;
                            break;
                          case IFLA_VXLAN_LOCAL:
                            link.vxlanLocal = Ipv4{ntohl(u32(d))};
                            break;
                          default:
                            break;
                        }
                      });
                    });
                    break;
                  default:
                    break;
                }
              });
  // Only bridge/vxlan data is read above; other kinds leave the vxlan fields empty.
  if (link.kind != "vxlan") link.vni.reset();
  return link;
}

std::optional<RouteInfo> parseRoute(const NlMessage& msg) {
  auto* nlh = header(msg, sizeof(rtmsg));
  if (!nlh || nlh->nlmsg_type != RTM_NEWROUTE) return std::nullopt;
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  RouteInfo r;
  r.dstLen = rtm->rtm_dst_len;
  r.table = rtm->rtm_table;
  const size_t off = MNL_ALIGN(sizeof(rtmsg));
  forEachAttr(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + off, mnl_nlmsg_get_payload_len(nlh) - off,
              [&](const nlattr* a) {
                if (mnl_attr_get_type(a) == RTA_OIF) r.oif = static_cast<int>(u32(a));
                if (mnl_attr_get_type(a) == RTA_TABLE) r.table = static_cast<int>(u32(a));
              });
  return r;
}

std::optional<NeighInfo> parseNeigh(const NlMessage& msg) {
  auto* nlh = header(msg, sizeof(ndmsg));
  if (!nlh || nlh->nlmsg_type != RTM_NEWNEIGH) return std::nullopt;
  auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
  NeighInfo n;
  n.family = nd->ndm_family;
  n.ifindex = nd->ndm_ifindex;
  n.state = nd->ndm_state;
  n.flags = nd->ndm_flags;
  const size_t off = MNL_ALIGN(sizeof(ndmsg));
  forEachAttr(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + off, mnl_nlmsg_get_payload_len(nlh) - off,
              [&](const nlattr* a) {
                if (mnl_attr_get_type(a) == NDA_LLADDR && mnl_attr_get_payload_len(a) == 6)
                  n.mac = formatMac(static_cast<const uint8_t*>(mnl_attr_get_payload(a)));
                if (mnl_attr_get_type(a) == NDA_DST && mnl_attr_get_payload_len(a) == 4)
                  n.dst = Ipv4{ntohl(mnl_attr_get_u32(a))};
              });
  return n;
}

}  // namespace nl

// ------------------------------------------------------------------ transport
namespace {

constexpr size_t kRecvBuffer = 64 * 1024;
// Upper bound on datagrams read for one request; a link dump of a busy host
// is a few dozen. Keeps a misbehaving peer from looping us forever.
constexpr int kMaxDatagrams = 10000;

std::string extackText(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t hlen = sizeof(nlmsgerr);
  // Without NLM_F_CAPPED the kernel echoes our whole request before the TLVs.
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) hlen += err->msg.nlmsg_len - sizeof(nlmsghdr);
  const size_t total = mnl_nlmsg_get_payload_len(nlh);
  if (hlen >= total) return {};
  std::string text;
  nl::forEachAttr(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + hlen, total - hlen, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG) text = nl::str(a);
  });
  return text;
}

Error netlinkError(int err, const std::string& extack) {
  std::string text = std::strerror(err);
  if (!extack.empty()) text += ": " + extack;
  return Error{err, text};
}

class MnlTransport : public NetlinkTransport {
 public:
  MnlTransport(mnl_socket* sock, uint32_t portid) : sock_(sock), portid_(portid) {}
  ~MnlTransport() override { mnl_socket_close(sock_); }
  MnlTransport(const MnlTransport&) = delete;
  MnlTransport& operator=(const MnlTransport&) = delete;

  Result<std::vector<NlMessage>> request(NlMessage msg) override {
    if (msg.size() < NLMSG_HDRLEN) return Error::msg("netlink: request too short", EINVAL);
    auto* nlh = reinterpret_cast<nlmsghdr*>(msg.data());
    const uint32_t seq = ++seq_;
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_pid = 0;
    const bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    if (!dump) nlh->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(sock_, msg.data(), msg.size()) < 0) return Error::fromErrno("netlink send");

    std::vector<NlMessage> replies;
    std::vector<char> buf(kRecvBuffer);
    for (int n = 0; n < kMaxDatagrams; ++n) {
      ssize_t len = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
      if (len < 0) {
        if (errno == EINTR) continue;
        return Error::fromErrno("netlink receive");
      }
      int remaining = static_cast<int>(len);
      for (auto* r = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(r, remaining);
           r = mnl_nlmsg_next(r, &remaining)) {
        // Replies for an earlier, abandoned request (or foreign ports) are
        // not ours: skip them rather than mistaking them for our answer.
        if (r->nlmsg_seq != seq || r->nlmsg_pid != portid_) {
          log::debug("overlay", "netlink: skipping reply seq ", r->nlmsg_seq, " pid ", r->nlmsg_pid, " (want ", seq,
                     "/", portid_, ")");
          continue;
        }
        if (r->nlmsg_type == NLMSG_ERROR) {
          if (mnl_nlmsg_get_payload_len(r) < sizeof(nlmsgerr))
            return Error::msg("netlink: truncated error message", EBADMSG);
          auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(r));
          if (err->error == 0) return replies;
          return netlinkError(-err->error, extackText(r));
        }
        if (r->nlmsg_type == NLMSG_DONE) {
          int code = 0;
          if (mnl_nlmsg_get_payload_len(r) >= sizeof(int)) std::memcpy(&code, mnl_nlmsg_get_payload(r), sizeof(int));
          if (code < 0) return netlinkError(-code, extackText(r));
          return replies;
        }
        if (r->nlmsg_type == NLMSG_NOOP) continue;
        auto* p = reinterpret_cast<const uint8_t*>(r);
        replies.emplace_back(p, p + r->nlmsg_len);
      }
    }
    return Error::msg("netlink: no end of reply after " + std::to_string(kMaxDatagrams) + " datagrams", EPROTO);
  }

 private:
  mnl_socket* sock_;
  uint32_t portid_;
  uint32_t seq_ = 0;
};

}  // namespace

Result<std::unique_ptr<NetlinkTransport>> openNetlink() {
  mnl_socket* sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!sock) return Error::fromErrno("netlink socket");
  int one = 1;
  // Extended ack gives the kernel's own error text; CAP_ACK keeps the echo short.
  // Both are best effort: old kernels just ignore the options.
  (void)mnl_socket_setsockopt(sock, NETLINK_EXT_ACK, &one, sizeof(one));
  (void)mnl_socket_setsockopt(sock, NETLINK_CAP_ACK, &one, sizeof(one));
  // A kernel always answers rtnetlink requests; the timeout only guards against
  // a lost reply hanging netd's loop forever.
  timeval tv{5, 0};
  if (setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    int err = errno;
    mnl_socket_close(sock);
    return Error::fromErrno("netlink SO_RCVTIMEO", err);
  }
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(sock);
    return Error::fromErrno("netlink bind", err);
  }
  return std::unique_ptr<NetlinkTransport>(std::make_unique<MnlTransport>(sock, mnl_socket_get_portid(sock)));
}

Result<std::unique_ptr<NetlinkTransport>> openNetlinkInNetns(int netnsFd) {
  // setns() changes only the calling thread; doing it in a throwaway thread
  // leaves netd's loop thread in its own namespace whatever happens.
  std::optional<Result<std::unique_ptr<NetlinkTransport>>> out;
  std::thread helper([&] {
    if (::setns(netnsFd, CLONE_NEWNET) != 0) {
      out.emplace(Error::fromErrno("setns(netns fd " + std::to_string(netnsFd) + ")"));
      return;
    }
    out.emplace(openNetlink());
  });
  helper.join();
  return std::move(*out);
}

Result<std::vector<NlMessage>> FakeNetlink::request(NlMessage msg) {
  requests_.push_back(std::move(msg));
  if (script_.empty()) return std::vector<NlMessage>{};
  auto next = std::move(script_.front());
  script_.pop_front();
  return next;
}

}  // namespace skiff::overlay
