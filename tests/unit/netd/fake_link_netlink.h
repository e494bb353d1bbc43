#pragma once
// A NetlinkTransport that keeps a table of links, so the overlay's
// look-up-after-create sequences work without a kernel: RTM_NEWLINK with
// NLM_F_CREATE stores the link (with a fresh ifindex), RTM_GETLINK answers
// from the table (ENODEV when absent), RTM_DELLINK removes. Everything else
// (addresses, setlink, routes, fdb, neighbours) is ACKed. A link dump
// answers every stored link.

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <map>

#include "skiff/overlay/netlink.h"

namespace skiff::netd::testing {

class FakeLinkNetlink : public overlay::NetlinkTransport {
 public:
  Result<std::vector<overlay::NlMessage>> request(overlay::NlMessage msg) override {
    requests++;
    if (msg.size() < sizeof(nlmsghdr) + sizeof(ifinfomsg)) return std::vector<overlay::NlMessage>{};
    nlmsghdr hdr;
    std::memcpy(&hdr, msg.data(), sizeof hdr);
    if (hdr.nlmsg_type != RTM_NEWLINK && hdr.nlmsg_type != RTM_GETLINK && hdr.nlmsg_type != RTM_DELLINK) {
      return std::vector<overlay::NlMessage>{};
    }
    if (hdr.nlmsg_type == RTM_GETLINK && (hdr.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP) {
      std::vector<overlay::NlMessage> all;
      for (const auto& [n, m] : links_) all.push_back(m);
      return all;
    }
    auto info = overlay::nl::parseLink(withType(msg, RTM_NEWLINK));
    if (!info) return std::vector<overlay::NlMessage>{};
    std::string name = info->name;
    if (name.empty()) {
      for (const auto& [n, m] : links_) {
        if (overlay::nl::parseLink(m)->index == info->index) name = n;
      }
    }
    switch (hdr.nlmsg_type) {
      case RTM_NEWLINK:
        if ((hdr.nlmsg_flags & NLM_F_CREATE) && !links_.count(name)) {
          overlay::NlMessage stored = withType(msg, RTM_NEWLINK);
          int index = nextIndex_++;
          std::memcpy(stored.data() + sizeof(nlmsghdr) + offsetof(ifinfomsg, ifi_index), &index, sizeof index);
          links_[name] = stored;
        }
        return std::vector<overlay::NlMessage>{};
      case RTM_GETLINK: {
        auto it = links_.find(name);
        if (it == links_.end() && everyLinkExists) {
          // Inside a container's netns the veth peer was made by the host's
          // request; pretend it (and lo) are there.
          overlay::NlMessage made = overlay::nl::newBridge(name, 1500);
          int index = nextIndex_++;
          std::memcpy(made.data() + sizeof(nlmsghdr) + offsetof(ifinfomsg, ifi_index), &index, sizeof index);
          it = links_.emplace(name, made).first;
        }
        if (it == links_.end()) return Error::msg("No such device", ENODEV);
        return std::vector<overlay::NlMessage>{it->second};
      }
      default: {  // RTM_DELLINK
        if (!links_.erase(name)) return Error::msg("No such device", ENODEV);
        return std::vector<overlay::NlMessage>{};
      }
    }
  }

  bool has(const std::string& name) const { return links_.count(name) != 0; }
  size_t linkCount() const { return links_.size(); }
  int requests = 0;
  bool everyLinkExists = false;

 private:
  static overlay::NlMessage withType(overlay::NlMessage msg, uint16_t type) {
    nlmsghdr hdr;
    std::memcpy(&hdr, msg.data(), sizeof hdr);
    hdr.nlmsg_type = type;
    std::memcpy(msg.data(), &hdr, sizeof hdr);
    return msg;
  }
  std::map<std::string, overlay::NlMessage> links_;
  int nextIndex_ = 10;
};

}  // namespace skiff::netd::testing
