// netd's Prometheus exposition (netd/src/metrics.cc), scraped over HTTP as a
// user's Prometheus would: the families with their types, the label set of
// every series, values equal to what was fed in (connections, bytes, connect
// errors, retries, connect times, backends in and out of rotation, UDP flows
// and failed clients made on loopback through a real proxy, the
// orchestrator's service counts, and the overlay devices' kernel counters
// read through a fake netlink), and the series of a backend or a network that
// was removed gone. Loopback only (127.0.0.1).

#include "skiff/netd/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/overlay/overlay.h"
#include "skiff/proxy/proxy.h"

namespace skiff::netd {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t portOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A socket bound to 127.0.0.1 on an ephemeral port (listening when TCP).
UniqueFd boundSocket(int type) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  auto a = loopback(0);
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  if (type == SOCK_STREAM && ::listen(fd.get(), 16) != 0) return UniqueFd();
  return fd;
}

// A port nothing listens on (bound once, then released): connects to it are refused.
uint16_t closedPort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto a = loopback(0);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  return portOf(fd.get());
}

UniqueFd connectTo(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto a = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

bool sendAll(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// Reads until EOF; "<timeout>" appended when 5 s pass first.
std::string readToEof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return out + "<timeout>";
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
}

// The next connection on a listening socket, or an invalid fd after 5 s.
UniqueFd acceptOne(int listener) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return UniqueFd();
  return UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

// The text exposition's skiff_* families, parsed: "# TYPE name type" lines
// and the samples.
struct Exposition {
  int status = 0;
  std::map<std::string, std::string> types;
  std::map<std::string, std::vector<std::pair<Labels, double>>> samples;  // by family name

  // The value of the series of `name` with exactly these labels, -1 when absent.
  double value(const std::string& name, const Labels& labels) const {
    auto it = samples.find(name);
    if (it == samples.end()) return -1;
    for (const auto& [l, v] : it->second) {
      if (l == labels) return v;
    }
    return -1;
  }
  std::set<Labels> series(const std::string& name) const {
    std::set<Labels> out;
    auto it = samples.find(name);
    if (it != samples.end()) {
      for (const auto& [l, v] : it->second) out.insert(l);
    }
    return out;
  }
};

Exposition parse(const std::string& text) {
  Exposition e;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    // Only skiff's families (the exposer adds its own exposer_* ones).
    if (line.rfind("# TYPE skiff_", 0) == 0) {
      size_t sp = line.find(' ', 7);
      e.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    if (line.rfind("skiff_", 0) != 0) continue;
    size_t brace = line.find('{');
    size_t space = line.rfind(' ');
    std::string name = line.substr(0, std::min(brace, line.find(' ')));
    Labels labels;
    if (brace != std::string::npos) {
      size_t close = line.find('}', brace);
      std::string body = line.substr(brace + 1, close - brace - 1);
      size_t p = 0;
      while (p < body.size()) {
        size_t eq = body.find('=', p);
        size_t q1 = body.find('"', eq);
        size_t q2 = body.find('"', q1 + 1);  // the values used here hold no quotes
        labels[body.substr(p, eq - p)] = body.substr(q1 + 1, q2 - q1 - 1);
        p = q2 + 1;
        if (p < body.size() && body[p] == ',') ++p;
      }
    }
    e.samples[name].emplace_back(labels, std::stod(line.substr(space + 1)));
  }
  return e;
}

Exposition scrape(uint16_t port) {
  Exposition e;
  UniqueFd fd = connectTo(port);
  if (!fd.valid() || !sendAll(fd.get(), "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) return e;
  std::string response = readToEof(fd.get());
  size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return e;
  e = parse(response.substr(body + 4));
  if (response.rfind("HTTP/1.", 0) == 0) e.status = std::atoi(response.c_str() + 9);
  return e;
}

// Waits (bounded) until pred() holds; the proxy's counters move on its loop thread.
template <typename Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The overlay families: the kernel's eight counters of each device.
const std::vector<std::pair<std::string, uint64_t overlay::LinkStats::*>> kOverlayFamilies = {
    {"skiff_overlay_rx_bytes_total", &overlay::LinkStats::rxBytes},
    {"skiff_overlay_tx_bytes_total", &overlay::LinkStats::txBytes},
    {"skiff_overlay_rx_packets_total", &overlay::LinkStats::rxPackets},
    {"skiff_overlay_tx_packets_total", &overlay::LinkStats::txPackets},
    {"skiff_overlay_rx_dropped_total", &overlay::LinkStats::rxDropped},
    {"skiff_overlay_tx_dropped_total", &overlay::LinkStats::txDropped},
    {"skiff_overlay_rx_errors_total", &overlay::LinkStats::rxErrors},
    {"skiff_overlay_tx_errors_total", &overlay::LinkStats::txErrors},
};

// Every family netd exports and its type: present even when it has no series.
std::map<std::string, std::string> allTypes() {
  std::map<std::string, std::string> types{{"skiff_proxy_connections_total", "counter"},
                                           {"skiff_proxy_active_connections", "gauge"},
                                           {"skiff_proxy_bytes_total", "counter"},
                                           {"skiff_proxy_connect_errors_total", "counter"},
                                           {"skiff_proxy_udp_flows_refused_total", "counter"},
                                           {"skiff_service_replicas", "gauge"},
                                           {"skiff_backend_up", "gauge"},
                                           {"skiff_proxy_connect_retries_total", "counter"},
                                           {"skiff_proxy_connect_duration_seconds", "histogram"},
                                           {"skiff_proxy_udp_flows_active", "gauge"},
                                           {"skiff_proxy_udp_flows_total", "counter"},
                                           {"skiff_proxy_accept_errors_total", "counter"},
                                           {"skiff_proxy_failed_client_connections_total", "counter"},
                                           {"skiff_proxy_spliced_bytes_total", "counter"},
                                           {"skiff_proxy_local_errors_total", "counter"}};
  for (const auto& [name, field] : kOverlayFamilies) types[name] = "counter";
  return types;
}

const std::string kLive =
    "0123456789ab"
    "cdef0123456789abcdef0123456789abcdef0123456789abcdef0123";  // 64 hex
const std::string kDead =
    "deadbeef0000"
    "1111222233334444555566667777888899990000aaaabbbbccccdddd";
const std::string kDns =
    "d05d05d05d05"
    "0000000000000000000000000000000000000000000000000000";

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = proxy::Proxy::start(proxy::Options{1});
    ASSERT_TRUE(p.ok()) << p.error().message;
    proxy_ = std::move(*p);
    // Port 0 cannot be asked of the exposer: take a free port, retry if
    // someone else took it meanwhile.
    for (int attempt = 0; attempt < 5 && !metrics_; ++attempt) {
      UniqueFd probe = boundSocket(SOCK_STREAM);
      ASSERT_TRUE(probe.valid());
      metricsPort_ = portOf(probe.get());
      probe = UniqueFd();
      auto m = Metrics::start("127.0.0.1:" + std::to_string(metricsPort_), proxy_.get());
      if (m.ok()) metrics_ = std::move(*m);
    }
    ASSERT_TRUE(metrics_) << "no metrics endpoint";
  }
  void TearDown() override {
    metrics_.reset();  // before the proxy it reads
    proxy_.reset();
  }
  uint16_t addListener(const std::string& name, bool udp, size_t maxUdpFlows = 16384) {
    proxy::ListenerConfig cfg;
    cfg.name = name;
    cfg.bindHost = "127.0.0.1";
    cfg.udp = udp;
    cfg.maxUdpFlows = maxUdpFlows;
    auto s = proxy_->addListener(cfg);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return proxy_->boundPort(name);
  }
  proxy::Proxy::BackendStats statsOf(const std::string& listener, const std::string& id) {
    for (auto& l : proxy_->stats()) {
      if (l.name != listener) continue;
      for (auto& b : l.backends) {
        if (b.id == id) return b;
      }
    }
    return {};
  }
  proxy::Proxy::ListenerStats listenerStats(const std::string& listener) {
    for (auto& l : proxy_->stats()) {
      if (l.name == listener) return l;
    }
    return {};
  }

  std::unique_ptr<proxy::Proxy> proxy_;
  std::unique_ptr<Metrics> metrics_;
  uint16_t metricsPort_ = 0;
};

TEST_F(MetricsTest, FamiliesLabelsAndValuesAsFedAndARemovedBackendsSeriesGo) {
  const std::string web = "shop_web:8080/tcp", dns = "shop_dns:53/udp", ghost = "ghost_x:9/tcp";
  UniqueFd live = boundSocket(SOCK_STREAM);
  UniqueFd dnsBackend = boundSocket(SOCK_DGRAM);
  UniqueFd ghostBackend = boundSocket(SOCK_STREAM);
  ASSERT_TRUE(live.valid() && dnsBackend.valid() && ghostBackend.valid());
  const uint16_t webPort = addListener(web, false);
  const uint16_t dnsPort = addListener(dns, true, /*maxUdpFlows=*/1);
  const uint16_t ghostPort = addListener(ghost, false);  // no service owns it: not exported
  proxy_->setBackends(web, {{kDead, "127.0.0.1", closedPort()}, {kLive, "127.0.0.1", portOf(live.get())}});
  proxy_->setBackends(dns, {{kDns, "127.0.0.1", portOf(dnsBackend.get())}});
  proxy_->setBackends(ghost, {{"ghost0", "127.0.0.1", portOf(ghostBackend.get())}});
  std::vector<Orchestrator::ServiceCount> counts(3);
  counts[0].stack = "shop", counts[0].service = "web", counts[0].running = 2, counts[0].desired = 3;
  counts[0].listeners = {{web, "8080/tcp"}};
  counts[1].stack = "shop", counts[1].service = "dns", counts[1].running = 1, counts[1].desired = 1;
  counts[1].listeners = {{dns, "53/udp"}};
  counts[2].stack = "shop", counts[2].service = "worker", counts[2].running = 0, counts[2].desired = 2;
  metrics_->publish(counts);

  // One TCP connection: the first pick (the dead backend) is refused, the
  // live one answers; 5 bytes in, 3 bytes out, then both sides close.
  {
    UniqueFd client = connectTo(webPort);
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(sendAll(client.get(), "hello"));
    UniqueFd server = acceptOne(live.get());
    ASSERT_TRUE(server.valid());
    char buf[5];
    ASSERT_EQ(::recv(server.get(), buf, sizeof buf, MSG_WAITALL), 5);
    ASSERT_TRUE(sendAll(server.get(), "hey"));
    server = UniqueFd();
    ::shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(readToEof(client.get()), "hey");
  }
  ASSERT_TRUE(eventually([&] { return statsOf(web, kLive).activeConnections == 0; }));
  // The dead backend's refused connect (retried on the live one) ejected it
  // for a back-off of a second: scraped at once, it is out of the rotation.
  {
    ASSERT_TRUE(statsOf(web, kDead).ejected);
    Exposition early = scrape(metricsPort_);
    ASSERT_EQ(early.status, 200);
    const Labels dead{{"stack", "shop"}, {"service", "web"}, {"port", "8080/tcp"}, {"backend", "deadbeef0000"}};
    const Labels alive{{"stack", "shop"}, {"service", "web"}, {"port", "8080/tcp"}, {"backend", "0123456789ab"}};
    EXPECT_EQ(early.value("skiff_backend_up", dead), 0);
    EXPECT_EQ(early.value("skiff_backend_up", alive), 1);
  }
  // A connection on the unexported listener.
  UniqueFd ghostClient = connectTo(ghostPort);
  ASSERT_TRUE(ghostClient.valid());
  ASSERT_TRUE(eventually([&] { return statsOf(ghost, "ghost0").connections == 1; }));
  // UDP: one flow (one source), then a second source refused at the bound of 1.
  UniqueFd a = boundSocket(SOCK_DGRAM), b = boundSocket(SOCK_DGRAM);
  auto to = loopback(dnsPort);
  ASSERT_EQ(::sendto(a.get(), "q1", 2, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 2);
  ASSERT_TRUE(eventually([&] { return statsOf(dns, kDns).connections == 1; }));
  ASSERT_EQ(::sendto(b.get(), "q2", 2, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 2);
  ASSERT_TRUE(eventually([&] { return listenerStats(dns).udpFlowsRefused == 1; }));

  Exposition e = scrape(metricsPort_);
  ASSERT_EQ(e.status, 200);
  EXPECT_EQ(e.types, allTypes());
  // Backends are labelled by the first 12 characters of their id (docker's short id).
  const Labels webDead{{"stack", "shop"}, {"service", "web"}, {"port", "8080/tcp"}, {"backend", "deadbeef0000"}};
  const Labels webLive{{"stack", "shop"}, {"service", "web"}, {"port", "8080/tcp"}, {"backend", "0123456789ab"}};
  const Labels dnsFlow{{"stack", "shop"}, {"service", "dns"}, {"port", "53/udp"}, {"backend", "d05d05d05d05"}};
  const std::set<Labels> backendSeries{webDead, webLive, dnsFlow};
  for (const char* family :
       {"skiff_proxy_connections_total", "skiff_proxy_active_connections", "skiff_proxy_connect_errors_total"}) {
    EXPECT_EQ(e.series(family), backendSeries) << family << ": one series per backend of an owned listener";
  }
  EXPECT_EQ(e.value("skiff_proxy_connections_total", webLive), 1);
  EXPECT_EQ(e.value("skiff_proxy_connections_total", webDead), 0);
  EXPECT_EQ(e.value("skiff_proxy_connections_total", dnsFlow), 1);
  EXPECT_EQ(e.value("skiff_proxy_connect_errors_total", webDead), 1);
  EXPECT_EQ(e.value("skiff_proxy_connect_errors_total", webLive), 0);
  EXPECT_EQ(e.value("skiff_proxy_active_connections", webLive), 0);
  EXPECT_EQ(e.value("skiff_proxy_active_connections", dnsFlow), 1);
  auto with = [](Labels l, const char* direction) {
    l["direction"] = direction;
    return l;
  };
  EXPECT_EQ(e.series("skiff_proxy_bytes_total"),
            (std::set<Labels>{with(webDead, "in"), with(webDead, "out"), with(webLive, "in"), with(webLive, "out"),
                              with(dnsFlow, "in"), with(dnsFlow, "out")}));
  EXPECT_EQ(e.value("skiff_proxy_bytes_total", with(webLive, "in")), 5);
  EXPECT_EQ(e.value("skiff_proxy_bytes_total", with(webLive, "out")), 3);
  EXPECT_EQ(e.value("skiff_proxy_bytes_total", with(webDead, "in")), 0);
  EXPECT_EQ(e.value("skiff_proxy_bytes_total", with(dnsFlow, "in")), 2);
  EXPECT_EQ(e.value("skiff_proxy_bytes_total", with(dnsFlow, "out")), 0);
  // UDP listeners only.
  EXPECT_EQ(e.series("skiff_proxy_udp_flows_refused_total"),
            (std::set<Labels>{{{"stack", "shop"}, {"service", "dns"}, {"port", "53/udp"}}}));
  EXPECT_EQ(e.value("skiff_proxy_udp_flows_refused_total", {{"stack", "shop"}, {"service", "dns"}, {"port", "53/udp"}}),
            1);
  EXPECT_EQ(e.series("skiff_backend_up"), backendSeries);
  EXPECT_EQ(e.value("skiff_backend_up", webLive), 1);
  EXPECT_EQ(e.value("skiff_backend_up", dnsFlow), 1);
  // TCP backends only: retries and the connect duration histogram.
  EXPECT_EQ(e.series("skiff_proxy_connect_retries_total"), (std::set<Labels>{webDead, webLive}));
  EXPECT_EQ(e.value("skiff_proxy_connect_retries_total", webLive), 1);
  EXPECT_EQ(e.value("skiff_proxy_connect_retries_total", webDead), 0);
  EXPECT_EQ(e.series("skiff_proxy_connect_duration_seconds_count"), (std::set<Labels>{webDead, webLive}));
  EXPECT_EQ(e.series("skiff_proxy_connect_duration_seconds_sum"), (std::set<Labels>{webDead, webLive}));
  EXPECT_EQ(e.value("skiff_proxy_connect_duration_seconds_count", webLive), 1);
  EXPECT_EQ(e.value("skiff_proxy_connect_duration_seconds_count", webDead), 0);
  EXPECT_GT(e.value("skiff_proxy_connect_duration_seconds_sum", webLive), 0);
  EXPECT_LT(e.value("skiff_proxy_connect_duration_seconds_sum", webLive), 2);
  auto le = [](Labels l, const char* bound) {
    l["le"] = bound;
    return l;
  };
  const std::vector<const char*> bounds{"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                        "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2",     "+Inf"};
  std::set<Labels> buckets;
  for (const char* bound : bounds) {
    buckets.insert(le(webDead, bound));
    buckets.insert(le(webLive, bound));
  }
  EXPECT_EQ(e.series("skiff_proxy_connect_duration_seconds_bucket"), buckets);
  // Cumulative: never falling, the loopback connect within 2 s, all by +Inf.
  double previous = 0;
  for (const char* bound : bounds) {
    double v = e.value("skiff_proxy_connect_duration_seconds_bucket", le(webLive, bound));
    EXPECT_GE(v, previous) << bound;
    previous = v;
    EXPECT_EQ(e.value("skiff_proxy_connect_duration_seconds_bucket", le(webDead, bound)), 0) << bound;
  }
  EXPECT_EQ(e.value("skiff_proxy_connect_duration_seconds_bucket", le(webLive, "2")), 1);
  // UDP backends only: their flows.
  EXPECT_EQ(e.series("skiff_proxy_udp_flows_active"), (std::set<Labels>{dnsFlow}));
  EXPECT_EQ(e.series("skiff_proxy_udp_flows_total"), (std::set<Labels>{dnsFlow}));
  EXPECT_EQ(e.value("skiff_proxy_udp_flows_active", dnsFlow), 1);
  EXPECT_EQ(e.value("skiff_proxy_udp_flows_total", dnsFlow), 1);
  // Per listener: accept errors and failed clients for both, spliced bytes
  // for TCP, local errors for UDP.
  const Labels webPortLabels{{"stack", "shop"}, {"service", "web"}, {"port", "8080/tcp"}};
  const Labels dnsPortLabels{{"stack", "shop"}, {"service", "dns"}, {"port", "53/udp"}};
  for (const char* family : {"skiff_proxy_accept_errors_total", "skiff_proxy_failed_client_connections_total"}) {
    EXPECT_EQ(e.series(family), (std::set<Labels>{webPortLabels, dnsPortLabels})) << family;
    EXPECT_EQ(e.value(family, webPortLabels), 0) << family;
    EXPECT_EQ(e.value(family, dnsPortLabels), 0) << family;
  }
  EXPECT_EQ(e.series("skiff_proxy_spliced_bytes_total"), (std::set<Labels>{webPortLabels}));
  EXPECT_EQ(e.value("skiff_proxy_spliced_bytes_total", webPortLabels), 0) << "8 bytes are no bulk transfer";
  EXPECT_EQ(e.series("skiff_proxy_local_errors_total"), (std::set<Labels>{dnsPortLabels}));
  EXPECT_EQ(e.value("skiff_proxy_local_errors_total", dnsPortLabels), 0);
  // Every service, with or without a published port: running and desired.
  EXPECT_EQ(e.samples["skiff_service_replicas"].size(), 6u);
  for (const auto& [service, running, desired] :
       std::vector<std::tuple<std::string, double, double>>{{"web", 2, 3}, {"dns", 1, 1}, {"worker", 0, 2}}) {
    EXPECT_EQ(e.value("skiff_service_replicas", {{"stack", "shop"}, {"service", service}, {"state", "running"}}),
              running)
        << service;
    EXPECT_EQ(e.value("skiff_service_replicas", {{"stack", "shop"}, {"service", service}, {"state", "desired"}}),
              desired)
        << service;
  }

  // The dead backend is removed (a replica gone): its series go with it; the
  // live one keeps its counters and now holds an open connection.
  proxy_->setBackends(web, {{kLive, "127.0.0.1", portOf(live.get())}});
  UniqueFd held = connectTo(webPort);
  ASSERT_TRUE(held.valid());
  UniqueFd heldServer = acceptOne(live.get());
  ASSERT_TRUE(heldServer.valid());
  ASSERT_TRUE(eventually([&] { return statsOf(web, kLive).activeConnections == 1; }));
  // And a service scaled to 0 and removed from the snapshot.
  counts.pop_back();
  metrics_->publish(counts);
  e = scrape(metricsPort_);
  ASSERT_EQ(e.status, 200);
  for (const char* family :
       {"skiff_proxy_connections_total", "skiff_proxy_active_connections", "skiff_proxy_connect_errors_total"}) {
    EXPECT_EQ(e.series(family), (std::set<Labels>{webLive, dnsFlow})) << family;
  }
  EXPECT_EQ(e.series("skiff_proxy_bytes_total").count(with(webDead, "in")), 0u);
  EXPECT_EQ(e.series("skiff_proxy_bytes_total").size(), 4u);
  EXPECT_EQ(e.value("skiff_proxy_connections_total", webLive), 2);
  EXPECT_EQ(e.value("skiff_proxy_active_connections", webLive), 1);
  EXPECT_EQ(e.value("skiff_proxy_bytes_total", with(webLive, "in")), 5);
  EXPECT_EQ(e.samples["skiff_service_replicas"].size(), 4u);
  EXPECT_EQ(e.value("skiff_service_replicas", {{"stack", "shop"}, {"service", "worker"}, {"state", "desired"}}), -1);
  // The removed backend's new series went with it too.
  EXPECT_EQ(e.series("skiff_backend_up"), (std::set<Labels>{webLive, dnsFlow}));
  EXPECT_EQ(e.series("skiff_proxy_connect_retries_total"), (std::set<Labels>{webLive}));
  EXPECT_EQ(e.series("skiff_proxy_connect_duration_seconds_count"), (std::set<Labels>{webLive}));
  EXPECT_EQ(e.series("skiff_proxy_connect_duration_seconds_bucket").size(), bounds.size());
  EXPECT_EQ(e.value("skiff_proxy_connect_duration_seconds_count", webLive), 2);

  // The live backend drains (its replica stops): out of the rotation, so a
  // new client finds no backend and is counted as failed.
  proxy_->drainBackend(web, kLive, 60s);
  UniqueFd refused = connectTo(webPort);
  ASSERT_TRUE(refused.valid());
  EXPECT_EQ(readToEof(refused.get()), "");
  ASSERT_TRUE(eventually([&] { return listenerStats(web).failedClientConnections == 1; }));
  e = scrape(metricsPort_);
  ASSERT_EQ(e.status, 200);
  EXPECT_EQ(e.value("skiff_backend_up", webLive), 0);
  EXPECT_EQ(e.value("skiff_backend_up", dnsFlow), 1);
  EXPECT_EQ(e.value("skiff_proxy_failed_client_connections_total", webPortLabels), 1);
  EXPECT_EQ(e.value("skiff_proxy_failed_client_connections_total", dnsPortLabels), 0);
}

// A device's counters as the kernel answers RTM_GETLINK (IFLA_STATS64);
// each counter differs, so a family that exports the wrong one shows.
overlay::NlMessage linkWithStats(const std::string& name, uint64_t base) {
  alignas(nlmsghdr) char buf[1024] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = 7;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  rtnl_link_stats64 s{};
  s.rx_bytes = base + 1;
  s.tx_bytes = base + 2;
  s.rx_packets = base + 3;
  s.tx_packets = base + 4;
  s.rx_dropped = base + 5;
  s.tx_dropped = base + 6;
  s.rx_errors = base + 7;
  s.tx_errors = base + 8;
  mnl_attr_put(nlh, IFLA_STATS64, sizeof s, &s);
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, name.rfind("skvx-", 0) == 0 ? "vxlan" : "bridge");
  mnl_attr_nest_end(nlh, info);
  auto* p = reinterpret_cast<const uint8_t*>(nlh);
  return overlay::NlMessage(p, p + nlh->nlmsg_len);
}

// The value kOverlayFamilies[i] must show for a device made with `base`.
double expectedCounter(size_t family, uint64_t base) { return static_cast<double>(base + 1 + family); }

overlay::Overlay::NetnsOpener noNetns() {
  return [](int) -> Result<std::unique_ptr<overlay::NetlinkTransport>> {
    return Error::msg("no netns in unit tests", ENOSYS);
  };
}

// The overlay families, fed as netd's loop feeds them: the network list from
// the orchestrator, each network's devices read through netlink (a fake one
// here, answering as the kernel does). Labelled {network, device}; a network
// whose devices are not on this node, or that cannot be read, has none; a
// network removed from the list loses its series at the next refresh.
TEST(MetricsOverlay, CountersPerNetworkAndDeviceAndARemovedNetworksSeriesGo) {
  UniqueFd probe = boundSocket(SOCK_STREAM);
  ASSERT_TRUE(probe.valid());
  uint16_t port = portOf(probe.get());
  probe = UniqueFd();
  auto m = Metrics::start("127.0.0.1:" + std::to_string(port), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;

  overlay::FakeNetlink kernel;
  overlay::Overlay overlayNet(kernel, noNetns());
  const nlohmann::json networks = nlohmann::json::array({
      {{"name", "shop_webnet"}, {"vni", 4097}, {"subnet", "10.0.1.0/24"}},
      {{"name", "ingress"}, {"vni", 256}, {"subnet", "10.0.0.0/24"}},
      {{"name", "shop_backend"}, {"vni", 4098}},  // not set up on this node
      {{"name", "shop_locked"}, {"vni", 4099}},   // netlink refuses
      {{"name", "broken"}},                       // no VNI: skipped
  });
  kernel.pushReply({linkWithStats("skvx-4097", 1000)});
  kernel.pushReply({linkWithStats("skbr-4097", 2000)});
  kernel.pushReply({linkWithStats("skvx-256", 3000)});
  kernel.pushReply({linkWithStats("skbr-256", 4000)});
  kernel.pushError(Error{ENODEV, "No such device"});
  kernel.pushError(Error{ENODEV, "No such device"});
  kernel.pushError(Error{EPERM, "Operation not permitted"});
  (*m)->refreshOverlay(overlayNet, networks);
  EXPECT_EQ(kernel.requests().size(), 7u) << "two GETLINK per network, one for the refused one";

  const Labels webVx{{"network", "shop_webnet"}, {"device", "skvx-4097"}};
  const Labels webBr{{"network", "shop_webnet"}, {"device", "skbr-4097"}};
  const Labels ingVx{{"network", "ingress"}, {"device", "skvx-256"}};
  const Labels ingBr{{"network", "ingress"}, {"device", "skbr-256"}};
  Exposition e = scrape(port);
  ASSERT_EQ(e.status, 200);
  EXPECT_EQ(e.types, allTypes());
  for (size_t i = 0; i < kOverlayFamilies.size(); ++i) {
    const std::string& family = kOverlayFamilies[i].first;
    EXPECT_EQ(e.series(family), (std::set<Labels>{webVx, webBr, ingVx, ingBr})) << family;
    EXPECT_EQ(e.value(family, webVx), expectedCounter(i, 1000)) << family;
    EXPECT_EQ(e.value(family, webBr), expectedCounter(i, 2000)) << family;
    EXPECT_EQ(e.value(family, ingVx), expectedCounter(i, 3000)) << family;
    EXPECT_EQ(e.value(family, ingBr), expectedCounter(i, 4000)) << family;
  }

  // shop_webnet removed (stack rm): its series go; ingress's counters moved on.
  kernel.pushReply({linkWithStats("skvx-256", 5000)});
  kernel.pushReply({linkWithStats("skbr-256", 6000)});
  (*m)->refreshOverlay(overlayNet, nlohmann::json::array({networks[1]}));
  e = scrape(port);
  ASSERT_EQ(e.status, 200);
  for (size_t i = 0; i < kOverlayFamilies.size(); ++i) {
    const std::string& family = kOverlayFamilies[i].first;
    EXPECT_EQ(e.series(family), (std::set<Labels>{ingVx, ingBr})) << family;
    EXPECT_EQ(e.value(family, ingVx), expectedCounter(i, 5000)) << family;
    EXPECT_EQ(e.value(family, ingBr), expectedCounter(i, 6000)) << family;
  }

  // No networks left: no overlay series at all, the families stay declared.
  (*m)->refreshOverlay(overlayNet, nlohmann::json::array());
  e = scrape(port);
  ASSERT_EQ(e.status, 200);
  EXPECT_TRUE(e.samples.empty());
  EXPECT_EQ(e.types, allTypes());
}

// With no proxy and nothing published, the endpoint still answers: the
// families are there, empty.
TEST(MetricsEmpty, AnEndpointWithNothingToReportAnswers200) {
  UniqueFd probe = boundSocket(SOCK_STREAM);
  ASSERT_TRUE(probe.valid());
  uint16_t port = portOf(probe.get());
  probe = UniqueFd();
  auto m = Metrics::start("127.0.0.1:" + std::to_string(port), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  Exposition e = scrape(port);
  EXPECT_EQ(e.status, 200);
  EXPECT_TRUE(e.samples.empty());
  EXPECT_EQ(e.types, allTypes());
}

TEST(MetricsEmpty, ABadAddressIsAnError) {
  auto m = Metrics::start("127.0.0.1:notaport", nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message.rfind("metrics endpoint on 127.0.0.1:notaport: ", 0), 0u) << m.error().message;
}

}  // namespace
}  // namespace skiff::netd
