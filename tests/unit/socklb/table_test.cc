// ServiceTable on a fake MapStore: what the maps hold after each change, and
// which backends a program reading them could pick, also in the middle of
// a change (the fake runs a connect between every two map writes).

#include "table.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <set>

namespace skiff::socklb {
namespace {

// The maps, and the program's choice as socklb.bpf.c makes it.
class FakeMaps : public MapStore {
 public:
  std::map<FrontendKey, FrontendValue> frontends;
  std::map<BackendKey, BackendValue> backends;
  std::map<pid_t, int32_t> netnsOfPid;  // a pid absent here is gone
  std::set<pid_t> netlinkRefuses;       // the kernel refuses to name their namespace
  uint64_t rr[kMaxServices] = {};
  std::function<void()> afterWrite;            // a connect in the middle of a change
  std::optional<std::string> failFrontendPut;  // an ip whose frontend put fails

  Status putFrontend(const FrontendKey& k, const FrontendValue& v) override {
    if (failFrontendPut && formatIpv4(k.addr) == *failFrontendPut) return Error::msg("map is full", E2BIG);
    frontends[k] = v;
    return wrote();
  }
  Status eraseFrontend(const FrontendKey& k) override {
    frontends.erase(k);
    return wrote();
  }
  Status putBackend(const BackendKey& k, const BackendValue& v) override {
    backends[k] = v;
    return wrote();
  }
  Status eraseBackend(const BackendKey& k) override {
    backends.erase(k);
    return wrote();
  }
  uint64_t* turns(uint32_t service) override { return service < kMaxServices ? &rr[service] : nullptr; }
  std::map<PickKey, uint64_t> pickCounts;
  std::map<PickKey, uint64_t> picks() const override { return pickCounts; }
  Result<int32_t> netnsIdOf(pid_t pid) override {
    if (netlinkRefuses.count(pid)) return Error::msg("read a network namespace id: Operation not permitted", EPERM);
    auto it = netnsOfPid.find(pid);
    if (it == netnsOfPid.end()) {
      std::string what = "open /proc/";
      what.append(std::to_string(pid)).append("/ns/net: No such file");
      return Error::msg(what, ENOENT);
    }
    return it->second;
  }
  void erasePicks(uint32_t service) override {
    std::erase_if(pickCounts, [&](const auto& kv) { return kv.first.service == service; });
  }

  // connect4: the backend "ip:port" a client dialling ip:port gets, or ""
  // when the program leaves it to the proxy.
  std::string connect(const std::string& ip, uint16_t port, Protocol proto = Protocol::kTcp) {
    FrontendKey fk{*parseIpv4(ip), htons(port), static_cast<uint8_t>(proto), 0};
    auto fe = frontends.find(fk);
    if (fe == frontends.end() || fe->second.count == 0) return "";
    uint64_t n = rr[fe->second.service]++;
    BackendKey bk{fe->second.service, static_cast<uint16_t>(fe->second.gen & 1),
                  static_cast<uint16_t>(n % fe->second.count)};
    auto be = backends.find(bk);
    if (be == backends.end()) return "";
    ++pickCounts[PickKey{fe->second.service, be->second.addr, be->second.port, 0}];
    return formatIpv4(be->second.addr) + ":" + std::to_string(ntohs(be->second.port));
  }

 private:
  Status wrote() {
    if (afterWrite) afterWrite();
    return okStatus();
  }
};

Service web(std::vector<Endpoint> backends) {
  Service s;
  s.frontends = {{"127.0.0.1", 4000}, {"10.1.0.2", 4000}};
  s.backends = std::move(backends);
  return s;
}

const std::vector<Endpoint> kThree = {{"10.0.0.3", 80}, {"10.0.0.4", 80}, {"10.0.0.5", 80}};

TEST(SocketLbTable, ConnectsGoRoundRobinTwoByTwo) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  std::vector<std::string> got;
  for (int i = 0; i < 6; ++i) got.push_back(maps.connect(i % 2 ? "127.0.0.1" : "10.1.0.2", 4000));
  EXPECT_EQ(got, (std::vector<std::string>{"10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80", "10.0.0.3:80", "10.0.0.4:80",
                                           "10.0.0.5:80"}));
  // Another port, protocol or address is not a frontend.
  EXPECT_EQ(maps.connect("127.0.0.1", 4001), "");
  EXPECT_EQ(maps.connect("127.0.0.1", 4000, Protocol::kUdp), "");
  EXPECT_EQ(maps.connect("127.0.0.2", 4000), "");
}

TEST(SocketLbTable, ARemovedBackendIsNeverPickedAfterTheChangeNorDuringIt) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  // During the change, every connect lands on a backend of the old list or
  // the new one, or on the proxy; never on a slot holding something else.
  const FrontendKey local{*parseIpv4("127.0.0.1"), htons(4000), 6, 0};
  int connects = 0;
  maps.afterWrite = [&] {
    const bool swapped = maps.frontends.count(local) && maps.frontends[local].count == 2;
    std::string b = maps.connect("127.0.0.1", 4000);
    ++connects;
    EXPECT_TRUE(b.empty() || b == "10.0.0.3:80" || b == "10.0.0.4:80" || b == "10.0.0.5:80") << b;
    if (swapped) {
      EXPECT_NE(b, "10.0.0.4:80") << "picked after its frontend moved to the new list";
    }
  };
  ASSERT_TRUE(table.set("lab_web", web({{"10.0.0.3", 80}, {"10.0.0.5", 80}})).ok());
  maps.afterWrite = nullptr;
  EXPECT_GE(connects, 5);  // 2 slots, 2 frontends, 3 old slots erased
  for (int i = 0; i < 10; ++i) EXPECT_NE(maps.connect("127.0.0.1", 4000), "10.0.0.4:80");
  // Only the live half is left: 2 slots.
  EXPECT_EQ(maps.backends.size(), 2u);
}

TEST(SocketLbTable, AServiceWithoutBackendsLeavesItsClientsToTheProxy) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  ASSERT_TRUE(table.set("lab_web", web({})).ok());
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "");
  EXPECT_TRUE(maps.backends.empty());
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  EXPECT_EQ(maps.connect("127.0.0.1", 4000).substr(0, 5), "10.0.");
}

TEST(SocketLbTable, RemovingAServiceErasesEveryEntryAndFreesItsRotation) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("a", web(kThree)).ok());
  const uint32_t first = *table.idOf("a");
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "10.0.0.3:80");
  ASSERT_TRUE(table.remove("a").ok());
  EXPECT_TRUE(maps.frontends.empty());
  EXPECT_TRUE(maps.backends.empty());
  EXPECT_EQ(table.idOf("a"), nullptr);
  EXPECT_TRUE(table.remove("a").ok()) << "removing an unknown service is not an error";
  // The id is reused, and its rotation starts again at the first backend.
  ASSERT_TRUE(table.set("b", web(kThree)).ok());
  EXPECT_EQ(*table.idOf("b"), first);
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "10.0.0.3:80");
}

TEST(SocketLbTable, PicksAreCountedPerServiceAndGoWithIt) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("a", web(kThree)).ok());
  Service b;
  b.frontends = {{"127.0.0.1", 4001}};
  b.backends = {kThree[0]};  // the same replica behind two ports
  ASSERT_TRUE(table.set("b", b).ok());
  for (int i = 0; i < 4; ++i) maps.connect("127.0.0.1", 4000);
  maps.connect("127.0.0.1", 4001);
  auto picks = table.picks();
  EXPECT_EQ(picks["a"][kThree[0]], 2u);
  EXPECT_EQ(picks["a"][kThree[1]], 1u);
  EXPECT_EQ(picks["b"][kThree[0]], 1u);
  ASSERT_TRUE(table.remove("a").ok());
  ASSERT_TRUE(table.set("c", web(kThree)).ok());  // takes a's id
  EXPECT_EQ(table.picks().count("c"), 0u) << "a new service inherited the counts of a removed one";
  EXPECT_EQ(table.picks()["b"][kThree[0]], 1u);
}

TEST(SocketLbTable, ALocalBackendIsCheckedInItsOwnNetworkNamespace) {
  FakeMaps maps;
  ServiceTable table(maps);
  maps.netnsOfPid = {{101, 7}, {102, -1}};
  maps.netlinkRefuses = {104};
  Service s = web(
      {{"10.0.0.3", 80, 101}, {"10.0.0.4", 80, 102}, {"10.0.0.5", 80, 103}, {"10.1.0.9", 80}, {"10.0.0.6", 80, 104}});
  ASSERT_TRUE(table.set("lab_web", s).ok());
  std::vector<std::pair<uint16_t, int32_t>> got;
  for (uint16_t slot = 0; slot < 5; ++slot) {
    const auto& v = maps.backends.at(BackendKey{0, 0, slot});
    got.push_back({v.flags, v.netns});
  }
  EXPECT_EQ(got, (std::vector<std::pair<uint16_t, int32_t>>{
                     {kCheckSocket, 7},          // a replica in namespace id 7
                     {kCheckSocket, -1},         // one in this very namespace
                     {kCheckSocket, INT32_MAX},  // gone already: no namespace has that id
                     {0, -1},                    // on another node: not checked
                     {0, -1}}));                 // its namespace unknown (not gone): not checked
}

TEST(SocketLbTable, AFrontendDroppedFromTheSpecIsErased) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  Service s = web(kThree);
  s.frontends = {{"127.0.0.1", 4000}};
  ASSERT_TRUE(table.set("lab_web", s).ok());
  EXPECT_EQ(maps.connect("10.1.0.2", 4000), "");
  EXPECT_NE(maps.connect("127.0.0.1", 4000), "");
  EXPECT_EQ(maps.frontends.size(), 1u);
}

TEST(SocketLbTable, ServicesCannotShareAFrontendButTcpAndUdpCan) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  auto st = table.set("lab_other", web(kThree));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("frontend 127.0.0.1:4000/tcp is already served by lab_web"), std::string::npos)
      << st.error().message;
  // Refused whole: nothing of lab_other was written.
  EXPECT_EQ(table.idOf("lab_other"), nullptr);
  EXPECT_EQ(maps.backends.size(), 3u);
  Service dns = web({{"10.0.0.9", 53}});
  dns.protocol = Protocol::kUdp;
  ASSERT_TRUE(table.set("lab_dns", dns).ok());
  EXPECT_EQ(maps.connect("127.0.0.1", 4000, Protocol::kUdp), "10.0.0.9:53");
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "10.0.0.3:80");
}

TEST(SocketLbTable, BadAddressesAreNamedAndChangeNothing) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  auto st = table.set("lab_web", web({{"10.0.0.3", 80}, {"10.0.0.300", 80}}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "service lab_web: backend \"10.0.0.300\" is not an IPv4 address");
  Service s = web(kThree);
  s.frontends.push_back({"localhost", 4000});
  st = table.set("lab_web", s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "service lab_web: frontend \"localhost\" is not an IPv4 address");
  st = table.set("lab_web", web({{"10.0.0.3", 0}}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "service lab_web: backend 10.0.0.3 has no port");
  // The running list is untouched.
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "10.0.0.3:80");
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "10.0.0.4:80");
  EXPECT_EQ(maps.backends.size(), 3u);
}

TEST(SocketLbTable, AFrontendTheKernelRefusesIsLeftToTheProxyAndReported) {
  FakeMaps maps;
  ServiceTable table(maps);
  ASSERT_TRUE(table.set("lab_web", web(kThree)).ok());
  maps.failFrontendPut = "10.1.0.2";
  auto st = table.set("lab_web", web({{"10.0.0.5", 80}}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "service lab_web: frontend 10.1.0.2:4000: map is full");
  // The frontend that was written serves the new list; the refused one
  // has no entry, so its clients reach the proxy, never an old backend.
  EXPECT_EQ(maps.connect("127.0.0.1", 4000), "10.0.0.5:80");
  EXPECT_EQ(maps.connect("10.1.0.2", 4000), "");
}

}  // namespace
}  // namespace skiff::socklb
