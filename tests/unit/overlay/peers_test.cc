// diffPeers: what a node writes and deletes to go from the FDB/neighbour
// entries it has to the ones the manager wants. Expected values are literal.
#include "skiff/overlay/peers.h"

#include <gtest/gtest.h>

namespace skiff::overlay {
namespace {

Peer peer(uint32_t vni, const char* ip, const char* mac, const char* vtep) {
  return Peer{vni, *Ipv4::parse(ip), mac, *Ipv4::parse(vtep)};
}

// Readable failure output: "4097 10.0.1.5 02:42:0a:00:01:05 via 198.51.100.2".
std::string show(const std::vector<Peer>& peers) {
  std::string out;
  for (const Peer& p : peers)
    out += std::to_string(p.vni) + " " + p.ip.str() + " " + p.mac + " via " + p.vtep.str() + "\n";
  return out;
}

const Peer kB5 = peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2");
const Peer kB6 = peer(4097, "10.0.1.6", "02:42:0a:00:01:06", "198.51.100.2");
const Peer kC7 = peer(4097, "10.0.1.7", "02:42:0a:00:01:07", "198.51.100.3");

TEST(DiffPeers, NothingProgrammedNothingWantedIsEmpty) {
  auto d = diffPeers({}, {});
  EXPECT_TRUE(d.remove.empty());
  EXPECT_TRUE(d.add.empty());
}

TEST(DiffPeers, EqualSetsInAnyOrderChangeNothing) {
  auto d = diffPeers({kC7, kB5, kB6}, {kB6, kC7, kB5});
  EXPECT_TRUE(d.remove.empty()) << show(d.remove);
  EXPECT_TRUE(d.add.empty()) << show(d.add);
}

TEST(DiffPeers, NewPeersAreAddedOnly) {
  auto d = diffPeers({kB5}, {kB5, kC7, kB6});
  EXPECT_TRUE(d.remove.empty()) << show(d.remove);
  EXPECT_EQ(d.add, (std::vector<Peer>{
                       peer(4097, "10.0.1.6", "02:42:0a:00:01:06", "198.51.100.2"),
                       peer(4097, "10.0.1.7", "02:42:0a:00:01:07", "198.51.100.3"),
                   }))
      << show(d.add);
}

TEST(DiffPeers, GonePeersAreRemovedOnly) {
  auto d = diffPeers({kB5, kB6, kC7}, {kB6});
  EXPECT_EQ(d.remove, (std::vector<Peer>{
                          peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2"),
                          peer(4097, "10.0.1.7", "02:42:0a:00:01:07", "198.51.100.3"),
                      }))
      << show(d.remove);
  EXPECT_TRUE(d.add.empty()) << show(d.add);
}

TEST(DiffPeers, PeerMovedToAnotherNodeIsRemovedThenAdded) {
  // The replica behind 10.0.1.5 was rescheduled from node .2 to node .3.
  auto d = diffPeers({kB5, kB6}, {peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.3"), kB6});
  EXPECT_EQ(d.remove, (std::vector<Peer>{peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2")}))
      << show(d.remove);
  EXPECT_EQ(d.add, (std::vector<Peer>{peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.3")})) << show(d.add);
}

TEST(DiffPeers, PeerWithNewMacIsRemovedThenAdded) {
  auto d = diffPeers({kB5}, {peer(4097, "10.0.1.5", "02:42:0a:00:01:55", "198.51.100.2")});
  EXPECT_EQ(d.remove, (std::vector<Peer>{peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2")}));
  EXPECT_EQ(d.add, (std::vector<Peer>{peer(4097, "10.0.1.5", "02:42:0a:00:01:55", "198.51.100.2")}));
}

TEST(DiffPeers, DuplicatesInEitherInputCollapse) {
  auto d = diffPeers({kB5, kB5, kB6, kB6}, {kB6, kB6, kC7, kC7, kC7});
  EXPECT_EQ(d.remove, (std::vector<Peer>{peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2")}));
  EXPECT_EQ(d.add, (std::vector<Peer>{peer(4097, "10.0.1.7", "02:42:0a:00:01:07", "198.51.100.3")}));
}

TEST(DiffPeers, OutputIsSortedByVniThenIpThenMacThenVtep) {
  const Peer other = peer(256, "10.0.0.9", "02:42:0a:00:00:09", "198.51.100.9");
  const Peer low = peer(4097, "10.0.1.2", "02:42:0a:00:01:02", "198.51.100.4");
  auto d = diffPeers({kC7, other, kB5, low}, {});
  EXPECT_EQ(d.remove, (std::vector<Peer>{
                          peer(256, "10.0.0.9", "02:42:0a:00:00:09", "198.51.100.9"),
                          peer(4097, "10.0.1.2", "02:42:0a:00:01:02", "198.51.100.4"),
                          peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2"),
                          peer(4097, "10.0.1.7", "02:42:0a:00:01:07", "198.51.100.3"),
                      }))
      << show(d.remove);
  auto e = diffPeers({}, {kC7, other, kB5, low});
  EXPECT_EQ(e.add, d.remove);
}

TEST(DiffPeers, SameIpOnTwoNetworksAreDifferentPeers) {
  const Peer onWebnet = peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2");
  const Peer onBackend = peer(4098, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.3");
  auto d = diffPeers({onWebnet}, {onWebnet, onBackend});
  EXPECT_TRUE(d.remove.empty()) << show(d.remove);
  EXPECT_EQ(d.add, (std::vector<Peer>{peer(4098, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.3")}));
}

TEST(DiffPeers, HalfEntriesFromTheKernelAreRemovedAndTheWholePeerWritten) {
  // listPeers() reports an FDB entry without neighbour as ip 0.0.0.0 and a
  // neighbour entry without FDB entry as vtep 0.0.0.0.
  const Peer fdbOnly = peer(4097, "0.0.0.0", "02:42:0a:00:01:06", "198.51.100.2");
  const Peer neighOnly = peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "0.0.0.0");
  auto d = diffPeers({fdbOnly, neighOnly}, {kB5, kB6});
  EXPECT_EQ(d.remove, (std::vector<Peer>{
                          peer(4097, "0.0.0.0", "02:42:0a:00:01:06", "198.51.100.2"),
                          peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "0.0.0.0"),
                      }))
      << show(d.remove);
  EXPECT_EQ(d.add, (std::vector<Peer>{
                       peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2"),
                       peer(4097, "10.0.1.6", "02:42:0a:00:01:06", "198.51.100.2"),
                   }))
      << show(d.add);
}

TEST(DiffPeers, AllEntriesOfAnIpGoWhenOneIsWrong) {
  // Two VTEPs for one MAC (someone appended an FDB entry by hand): removing
  // only the wrong one would also delete the neighbour entry of the right one.
  const Peer wrong = peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.9");
  auto d = diffPeers({kB5, wrong}, {kB5});
  EXPECT_EQ(d.remove, (std::vector<Peer>{
                          peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2"),
                          peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.9"),
                      }))
      << show(d.remove);
  EXPECT_EQ(d.add, (std::vector<Peer>{peer(4097, "10.0.1.5", "02:42:0a:00:01:05", "198.51.100.2")}));
}

TEST(DiffPeers, UnchangedPeerSharingARemovedFdbEntryIsWrittenAgain) {
  // Two IPs behind one MAC (not docker's scheme, e.g. a router): removing
  // .8 deletes the FDB entry that .9 uses too.
  const Peer gone = peer(4097, "10.0.1.8", "02:42:aa:bb:cc:dd", "198.51.100.2");
  const Peer kept = peer(4097, "10.0.1.9", "02:42:aa:bb:cc:dd", "198.51.100.2");
  auto d = diffPeers({gone, kept}, {kept});
  EXPECT_EQ(d.remove, (std::vector<Peer>{peer(4097, "10.0.1.8", "02:42:aa:bb:cc:dd", "198.51.100.2")}));
  EXPECT_EQ(d.add, (std::vector<Peer>{peer(4097, "10.0.1.9", "02:42:aa:bb:cc:dd", "198.51.100.2")}));
}

TEST(DiffPeers, RemovingANeighbourOnlyEntryLeavesSharersAlone) {
  // vtep 0.0.0.0: no FDB entry is deleted, so nobody needs writing again.
  const Peer neighOnly = peer(4097, "10.0.1.8", "02:42:0a:00:01:05", "0.0.0.0");
  auto d = diffPeers({neighOnly, kB5}, {kB5});
  EXPECT_EQ(d.remove, (std::vector<Peer>{peer(4097, "10.0.1.8", "02:42:0a:00:01:05", "0.0.0.0")}));
  EXPECT_TRUE(d.add.empty()) << show(d.add);
}

}  // namespace
}  // namespace skiff::overlay
