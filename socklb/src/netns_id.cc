#include "netns_id.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "skiff/common/fd.h"

namespace skiff::socklb {

namespace {

struct MnlClose {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};

// One request on a fresh rtnetlink socket; the NETNSA_NSID of the answer
// to RTM_GETNSID (or INT32_MIN for an acknowledged RTM_NEWNSID).
Result<int32_t> request(uint16_t type, int nsFd, bool withNewId) {
  std::unique_ptr<mnl_socket, MnlClose> nl(mnl_socket_open(NETLINK_ROUTE));
  if (!nl) return Error::fromErrno("open rtnetlink");
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) != 0) return Error::fromErrno("bind rtnetlink");
  alignas(nlmsghdr) char buf[8192];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | (withNewId ? NLM_F_ACK : 0);
  nlh->nlmsg_seq = 1;
  auto* g = static_cast<rtgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtgenmsg)));
  g->rtgen_family = AF_UNSPEC;
  mnl_attr_put_u32(nlh, NETNSA_FD, static_cast<uint32_t>(nsFd));
  if (withNewId) mnl_attr_put_u32(nlh, NETNSA_NSID, static_cast<uint32_t>(-1));  // the kernel picks
  if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0) return Error::fromErrno("send rtnetlink request");
  ssize_t n = mnl_socket_recvfrom(nl.get(), buf, sizeof buf);
  if (n < 0) return Error::fromErrno("read rtnetlink answer");
  int32_t id = INT32_MIN;
  auto onMessage = [](const nlmsghdr* m, void* data) -> int {
    auto onAttr = [](const nlattr* a, void* out) -> int {
      if (mnl_attr_get_type(a) == NETNSA_NSID && mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
        *static_cast<int32_t*>(out) = static_cast<int32_t>(mnl_attr_get_u32(a));
      return MNL_CB_OK;
    };
    mnl_attr_parse(m, sizeof(rtgenmsg), onAttr, data);
    return MNL_CB_OK;
  };
  if (mnl_cb_run(buf, n, 1, mnl_socket_get_portid(nl.get()), onMessage, &id) < 0)
    return Error::fromErrno(type == RTM_NEWNSID ? "assign a network namespace id" : "read a network namespace id");
  return id;
}

}  // namespace

Result<int32_t> netnsId(pid_t pid) {
  std::string path = "/proc/";
  path.append(std::to_string(pid)).append("/ns/net");
  struct stat self {
  }, other{};
  if (::stat("/proc/self/ns/net", &self) != 0) return Error::fromErrno("stat /proc/self/ns/net");
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return Error::fromErrno("open " + path);
  if (::fstat(ns.get(), &other) != 0) return Error::fromErrno("stat " + path);
  if (self.st_ino == other.st_ino && self.st_dev == other.st_dev) return -1;
  auto id = request(RTM_GETNSID, ns.get(), false);
  if (!id.ok()) return id.error();
  if (*id >= 0) return *id;
  auto assigned = request(RTM_NEWNSID, ns.get(), true);
  if (!assigned.ok()) return assigned.error();
  id = request(RTM_GETNSID, ns.get(), false);
  if (!id.ok()) return id.error();
  if (*id < 0) return Error::msg("the kernel gave " + path + " no namespace id");
  return *id;
}

}  // namespace skiff::socklb
