// KernelMesh over a fake proxy mesh and a fake socket load balancer: what
// the kernel is told to serve as ports open, backends come and go, drain
// and get ejected; that the proxy shares the kernel's rotation; and that
// the metrics count both paths.

#include "skiff/netd/kernel_mesh.h"

#include <gtest/gtest.h>

#include "fake_mesh.h"

namespace skiff::netd {
namespace {

using testing::FakeMesh;

class FakeSocketLb : public socklb::SocketLb {
 public:
  struct Shared {
    std::map<std::string, socklb::Service> services;
    std::vector<std::string> calls;  // "set NAME" / "remove NAME", in order
    std::map<std::string, std::map<socklb::Endpoint, uint64_t>> picks;
    std::map<std::string, uint64_t> turns;
    std::string refuse;           // a service name whose setService fails
    std::function<void()> onSet;  // runs at each setService
  };
  explicit FakeSocketLb(Shared& s) : s_(s) {}
  Status setService(const std::string& name, const socklb::Service& service) override {
    s_.calls.push_back("set " + name);
    if (s_.onSet) s_.onSet();
    // Refused while it has something to serve (a full map refuses entries).
    if (name == s_.refuse && !service.frontends.empty())
      return Error::msg("update map frontends: Argument list too long", E2BIG);
    s_.services[name] = service;
    s_.turns[name];
    return okStatus();
  }
  Status removeService(const std::string& name) override {
    s_.calls.push_back("remove " + name);
    s_.services.erase(name);
    s_.turns.erase(name);
    return okStatus();
  }
  std::map<std::string, std::map<socklb::Endpoint, uint64_t>> picks() const override { return s_.picks; }
  uint64_t* turns(const std::string& name) override {
    auto it = s_.turns.find(name);
    return it == s_.turns.end() ? nullptr : &it->second;
  }
  uint64_t netnsCookie() const override { return 1; }
  const std::string& cgroup() const override { return cgroup_; }

 private:
  Shared& s_;
  std::string cgroup_ = "/sys/fs/cgroup/test";
};

std::vector<std::string> backendsOf(const socklb::Service& s) {
  std::vector<std::string> out;
  for (const auto& b : s.backends) out.push_back(b.str());
  return out;
}

class KernelMeshTest : public ::testing::Test {
 protected:
  KernelMeshTest() : mesh_(proxy_, std::make_unique<FakeSocketLb>(lb_), [this] { return addresses_; }) {}

  proxy::ListenerConfig web() {
    proxy::ListenerConfig c;
    c.name = "4000/tcp";
    c.port = 4000;
    c.backends = {{"r1", "10.0.0.3", 80}, {"r2", "10.0.0.4", 80}};
    return c;
  }

  FakeMesh proxy_;
  FakeSocketLb::Shared lb_;
  std::vector<std::string> addresses_ = {"10.0.0.2", "127.0.0.1", "198.51.100.11"};
  KernelMesh mesh_;
};

TEST_F(KernelMeshTest, APortOnAllAddressesIsServedOnEachOfThemAndSharesTheRotation) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  const auto& s = lb_.services.at("4000/tcp");
  std::vector<std::string> fronts;
  for (const auto& f : s.frontends) fronts.push_back(f.str());
  EXPECT_EQ(fronts, (std::vector<std::string>{"10.0.0.2:4000", "127.0.0.1:4000", "198.51.100.11:4000"}));
  EXPECT_EQ(backendsOf(s), (std::vector<std::string>{"10.0.0.3:80", "10.0.0.4:80"}));
  EXPECT_EQ(s.protocol, socklb::Protocol::kTcp);
  // The proxy's listener takes its turns from the kernel's counter.
  EXPECT_EQ(proxy_.listeners.at("4000/tcp").sharedTurns, &lb_.turns.at("4000/tcp"));
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "socket-lb+proxy");

  // A bound address is the one frontend.
  auto c = web();
  c.name = "4001/udp@127.0.0.1";
  c.bindHost = "127.0.0.1";
  c.port = 4001;
  c.udp = true;
  ASSERT_TRUE(mesh_.addListener(c).ok());
  ASSERT_EQ(lb_.services.at(c.name).frontends.size(), 1u);
  EXPECT_EQ(lb_.services.at(c.name).frontends[0].str(), "127.0.0.1:4001");
  EXPECT_EQ(lb_.services.at(c.name).protocol, socklb::Protocol::kUdp);
}

TEST_F(KernelMeshTest, ABackendThatLeavesIsOutOfTheKernelBeforeTheProxy) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  lb_.calls.clear();
  std::vector<std::string> proxyHadThen;
  lb_.onSet = [&] { proxyHadThen = proxy_.ids("4000/tcp"); };
  mesh_.setBackends("4000/tcp", {{"r2", "10.0.0.4", 80}});
  EXPECT_EQ(backendsOf(lb_.services.at("4000/tcp")), (std::vector<std::string>{"10.0.0.4:80"}));
  EXPECT_EQ(proxyHadThen, (std::vector<std::string>{})) << "the proxy got the new list before the kernel";
  EXPECT_EQ(lb_.calls, (std::vector<std::string>{"set 4000/tcp"}));
  EXPECT_EQ(proxy_.ids("4000/tcp"), (std::vector<std::string>{"r2"}));
  // Nothing changed: the kernel is not written again.
  mesh_.setBackends("4000/tcp", {{"r2", "10.0.0.4", 80}});
  mesh_.refresh();
  EXPECT_EQ(lb_.calls.size(), 1u);
}

TEST_F(KernelMeshTest, DrainingAndEjectedBackendsGetNoKernelConnections) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  mesh_.setBackends("4000/tcp", web().backends);
  mesh_.drainBackend("4000/tcp", "r1", std::chrono::seconds(10));
  EXPECT_EQ(backendsOf(lb_.services.at("4000/tcp")), (std::vector<std::string>{"10.0.0.4:80"}));
  ASSERT_EQ(proxy_.drains.size(), 1u) << "the proxy drains it too";
  // The proxy ejects r2 (its connects failed): the next refresh takes it out,
  // and puts it back once the proxy admits it again.
  mesh_.setBackends("4000/tcp", {{"r2", "10.0.0.4", 80}, {"r3", "10.0.0.5", 80}});
  proxy_.ejected = {"r2"};
  mesh_.refresh();
  EXPECT_EQ(backendsOf(lb_.services.at("4000/tcp")), (std::vector<std::string>{"10.0.0.5:80"}));
  proxy_.ejected.clear();
  mesh_.refresh();
  EXPECT_EQ(backendsOf(lb_.services.at("4000/tcp")), (std::vector<std::string>{"10.0.0.4:80", "10.0.0.5:80"}));
}

TEST_F(KernelMeshTest, NewNodeAddressesBecomeFrontendsAtTheNextRefresh) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  addresses_.push_back("10.0.1.2");  // a network this node joined
  mesh_.refresh();
  EXPECT_EQ(lb_.services.at("4000/tcp").frontends.size(), 4u);
}

TEST_F(KernelMeshTest, APortTheKernelRefusesIsProxiedAndKeepsOneRotation) {
  lb_.refuse = "4000/tcp";
  ASSERT_TRUE(mesh_.addListener(web()).ok()) << "the proxy still serves the port";
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "proxy");
  ASSERT_EQ(lb_.services.count("4000/tcp"), 1u);
  EXPECT_TRUE(lb_.services.at("4000/tcp").frontends.empty()) << "the kernel must serve nothing of it";
  // The service keeps its counter, which the proxy takes its turns from...
  uint64_t* turns = proxy_.listeners.at("4000/tcp").sharedTurns;
  ASSERT_NE(turns, nullptr);
  // ...so when the kernel takes the port later, both share one rotation.
  lb_.refuse.clear();
  mesh_.refresh();
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "socket-lb+proxy");
  EXPECT_EQ(lb_.services.at("4000/tcp").frontends.size(), 3u);
  mesh_.setBackends("4000/tcp", web().backends);
  EXPECT_EQ(lb_.turns.count("4000/tcp"), 1u);
  EXPECT_EQ(&lb_.turns.at("4000/tcp"), turns);
}

TEST_F(KernelMeshTest, APortThatSendsAProxyProtocolHeaderIsTheProxysAlone) {
  auto c = web();
  c.proxyProtocol = 2;
  ASSERT_TRUE(mesh_.addListener(c).ok());
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "proxy");
  EXPECT_TRUE(lb_.services.at("4000/tcp").frontends.empty());
  mesh_.refresh();
  EXPECT_TRUE(lb_.services.at("4000/tcp").frontends.empty());
}

TEST_F(KernelMeshTest, ASecondListenerOfTheSameNameLeavesTheFirstOneServed) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  lb_.calls.clear();
  auto again = web();
  again.backends = {};
  auto st = mesh_.addListener(again);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "listener 4000/tcp exists");
  EXPECT_TRUE(lb_.calls.empty()) << "the kernel's entry belongs to the first listener";
  EXPECT_EQ(backendsOf(lb_.services.at("4000/tcp")), (std::vector<std::string>{"10.0.0.3:80", "10.0.0.4:80"}));
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "socket-lb+proxy");
}

TEST_F(KernelMeshTest, APortTheProxyCannotOpenLeavesNothingInTheKernel) {
  proxy_.refusePort = "4000/tcp";
  auto st = mesh_.addListener(web());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "port 4000/tcp is already in use by pid 1 (init)");
  EXPECT_TRUE(lb_.services.empty());
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "proxy");
}

TEST_F(KernelMeshTest, RemovingAPortTakesItOutOfTheKernelFirst) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  lb_.calls.clear();
  ASSERT_TRUE(mesh_.removeListener("4000/tcp").ok());
  EXPECT_EQ(lb_.calls, (std::vector<std::string>{"remove 4000/tcp"}));
  EXPECT_TRUE(proxy_.listeners.empty());
  EXPECT_EQ(mesh_.pathOf("4000/tcp"), "proxy");
}

TEST_F(KernelMeshTest, ConnectionsCountBothPaths) {
  ASSERT_TRUE(mesh_.addListener(web()).ok());
  mesh_.setBackends("4000/tcp", web().backends);
  proxy::Proxy::BackendStats viaProxy;
  viaProxy.connections = 3;
  proxy_.counters[{"4000/tcp", "r1"}] = viaProxy;
  lb_.picks["4000/tcp"][{"10.0.0.3", 80}] = 4;
  lb_.picks["4000/tcp"][{"10.0.0.4", 80}] = 5;
  lb_.picks["other"][{"10.0.0.3", 80}] = 100;  // another port's: not counted here
  std::map<std::string, uint64_t> got;
  for (const auto& l : mesh_.stats()) {
    for (const auto& b : l.backends) got[b.id] = b.connections;
  }
  EXPECT_EQ(got, (std::map<std::string, uint64_t>{{"r1", 7}, {"r2", 5}}));
}

}  // namespace
}  // namespace skiff::netd
