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
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/netd/api.h"
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
    // Only skiff's and the process's families (the exposer adds its own
    // exposer_* ones).
    if (line.rfind("# TYPE skiff_", 0) == 0 || line.rfind("# TYPE process_", 0) == 0) {
      size_t sp = line.find(' ', 7);
      e.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    if (line.rfind("skiff_", 0) != 0 && line.rfind("process_", 0) != 0) continue;
    size_t brace = line.find('{');
    size_t space = line.rfind(' ');
    std::string name = line.substr(0, std::min(brace, line.find(' ')));
    Labels labels;
    if (brace != std::string::npos) {
      size_t close = line.rfind('}');  // values may hold braces ("/v1/services/{name}")
      std::string body = line.substr(brace + 1, close - brace - 1);
      size_t p = 0;
      while (p < body.size()) {
        size_t eq = body.find('=', p);
        size_t q1 = body.find('"', eq);
        size_t q2 = q1 == std::string::npos ? q1 : body.find('"', q1 + 1);  // values here hold no quotes
        if (eq == std::string::npos || q2 == std::string::npos) {
          ADD_FAILURE() << "unparsable labels: " << line;
          break;
        }
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
                                           {"skiff_proxy_local_errors_total", "counter"},
                                           {"skiff_proxy_idle_timeouts_total", "counter"},
                                           {"skiff_proxy_resets_total", "counter"},
                                           {"skiff_task_restarts_total", "counter"},
                                           {"skiff_task_state_transitions_total", "counter"},
                                           {"skiff_overlay_fdb_entries", "gauge"},
                                           {"skiff_overlay_neighbour_entries", "gauge"},
                                           {"skiff_overlay_remote_vteps", "gauge"},
                                           {"skiff_api_requests_total", "counter"},
                                           {"skiff_reconcile_duration_seconds", "histogram"},
                                           {"process_cpu_seconds_total", "counter"},
                                           {"process_resident_memory_bytes", "gauge"},
                                           {"process_virtual_memory_bytes", "gauge"},
                                           {"process_open_fds", "gauge"},
                                           {"process_max_fds", "gauge"},
                                           {"process_start_time_seconds", "gauge"}};
  for (const auto& [name, field] : kOverlayFamilies) types[name] = "counter";
  return types;
}

Labels backendLabels(const std::string& service, const std::string& port, const std::string& backend,
                     const std::string& node) {
  return {{"stack", "shop"},    {"service", service}, {"port", port}, {"protocol", port.substr(port.find('/') + 1)},
          {"backend", backend}, {"node", node}};
}

// The samples of families that always have one: the daemon's reconcile
// histogram and the process; "nothing to report" means nothing else.
std::map<std::string, std::vector<std::pair<Labels, double>>> reported(const Exposition& e) {
  auto out = e.samples;
  std::erase_if(out, [](const auto& kv) {
    return kv.first.rfind("skiff_reconcile_duration_seconds", 0) == 0 || kv.first.rfind("process_", 0) == 0;
  });
  return out;
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
      mesh_ = std::make_unique<ProxyMesh>(*proxy_);
      auto m = Metrics::start("127.0.0.1:" + std::to_string(metricsPort_), mesh_.get());
      if (m.ok()) metrics_ = std::move(*m);
    }
    ASSERT_TRUE(metrics_) << "no metrics endpoint";
  }
  void TearDown() override {
    metrics_.reset();  // before the proxy it reads
    proxy_.reset();
  }
  uint16_t addListener(const std::string& name, bool udp, size_t maxUdpFlows = 16384,
                       std::chrono::milliseconds idleTimeout = 0ms) {
    proxy::ListenerConfig cfg;
    cfg.name = name;
    cfg.idleTimeout = idleTimeout;
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
  std::unique_ptr<ProxyMesh> mesh_;
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
  counts[0].backendNodes = {{kLive, "n1"}, {kDead, "n2"}};
  counts[0].restarts = 2;
  counts[0].transitions = {{"running", 3}, {"failed", 1}};
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
    const Labels dead = backendLabels("web", "8080/tcp", "deadbeef0000", "n2");
    const Labels alive = backendLabels("web", "8080/tcp", "0123456789ab", "n1");
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
  // node: the hostname of the node that runs the replica, "" when not known.
  const Labels webDead = backendLabels("web", "8080/tcp", "deadbeef0000", "n2");
  const Labels webLive = backendLabels("web", "8080/tcp", "0123456789ab", "n1");
  const Labels dnsFlow = backendLabels("dns", "53/udp", "d05d05d05d05", "");
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
  auto with = [](Labels l, const char* value, const char* key = "direction") {
    l[key] = value;
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
  const Labels webPortLabels{{"stack", "shop"}, {"service", "web"}, {"port", "8080/tcp"}, {"protocol", "tcp"}};
  const Labels dnsPortLabels{{"stack", "shop"}, {"service", "dns"}, {"port", "53/udp"}, {"protocol", "udp"}};
  EXPECT_EQ(e.series("skiff_proxy_udp_flows_refused_total"), (std::set<Labels>{dnsPortLabels}));
  EXPECT_EQ(e.value("skiff_proxy_udp_flows_refused_total", dnsPortLabels), 1);
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
  // Every backend: idle timeouts; TCP backends: resets by the side they came from.
  EXPECT_EQ(e.series("skiff_proxy_idle_timeouts_total"), backendSeries);
  EXPECT_EQ(e.value("skiff_proxy_idle_timeouts_total", webLive), 0);
  EXPECT_EQ(e.series("skiff_proxy_resets_total"),
            (std::set<Labels>{with(webDead, "client", "side"), with(webDead, "backend", "side"),
                              with(webLive, "client", "side"), with(webLive, "backend", "side")}));
  EXPECT_EQ(e.value("skiff_proxy_resets_total", with(webLive, "client", "side")), 0) << "both sides closed cleanly";
  EXPECT_EQ(e.value("skiff_proxy_resets_total", with(webLive, "backend", "side")), 0);
  // Restarts and state transitions, per service as the snapshot has them.
  EXPECT_EQ(e.value("skiff_task_restarts_total", {{"stack", "shop"}, {"service", "web"}}), 2);
  EXPECT_EQ(e.value("skiff_task_restarts_total", {{"stack", "shop"}, {"service", "worker"}}), 0);
  EXPECT_EQ(e.series("skiff_task_state_transitions_total"),
            (std::set<Labels>{{{"stack", "shop"}, {"service", "web"}, {"state", "running"}},
                              {{"stack", "shop"}, {"service", "web"}, {"state", "failed"}}}));
  EXPECT_EQ(
      e.value("skiff_task_state_transitions_total", {{"stack", "shop"}, {"service", "web"}, {"state", "running"}}), 3);
  // Per listener: accept errors and failed clients for both, spliced bytes
  // for TCP, local errors for UDP.
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
  EXPECT_EQ(e.series("skiff_backend_up"), (std::set<Labels>{webLive, dnsFlow}))
      << "a backend the orchestrator does not call down goes with its last series";
  // The orchestrator says the removed one died and has no ready replacement
  // yet: it stays in skiff_backend_up, at 0, and only there.
  counts[0].downBackends = {kDead};
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
  // The removed backend's other series went with it too.
  EXPECT_EQ(e.series("skiff_backend_up"), (std::set<Labels>{webLive, webDead, dnsFlow}));
  EXPECT_EQ(e.value("skiff_backend_up", webDead), 0);
  EXPECT_EQ(e.series("skiff_proxy_idle_timeouts_total"), (std::set<Labels>{webLive, dnsFlow}));
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

// How connections ended, per backend: closed by the idle timeout, or reset
// by the client or by the backend (each reset reaches the other side).
TEST_F(MetricsTest, IdleTimeoutsAndResetsAreCountedByTheSideTheyCameFrom) {
  const std::string web = "shop_web:8080/tcp";
  UniqueFd backend = boundSocket(SOCK_STREAM);
  ASSERT_TRUE(backend.valid());
  const uint16_t port = addListener(web, false, 16384, /*idleTimeout=*/300ms);
  proxy_->setBackends(web, {{kLive, "127.0.0.1", portOf(backend.get())}});
  std::vector<Orchestrator::ServiceCount> counts(1);
  counts[0].stack = "shop", counts[0].service = "web", counts[0].listeners = {{web, "8080/tcp"}};
  metrics_->publish(counts);
  auto resetClose = [](UniqueFd& fd) {
    linger lg{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    fd = UniqueFd();
  };

  // 1. Nobody says anything for 300 ms: the proxy closes both sides.
  {
    UniqueFd client = connectTo(port);
    ASSERT_TRUE(client.valid());
    UniqueFd server = acceptOne(backend.get());
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(readToEof(client.get()), "") << "closed by the idle timeout";
  }
  ASSERT_TRUE(eventually([&] { return statsOf(web, kLive).idleTimeouts == 1; }));
  // 2. The backend resets: the client gets a reset too.
  {
    UniqueFd client = connectTo(port);
    ASSERT_TRUE(client.valid());
    UniqueFd server = acceptOne(backend.get());
    ASSERT_TRUE(server.valid());
    resetClose(server);
    char c;
    EXPECT_EQ(::recv(client.get(), &c, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);
  }
  ASSERT_TRUE(eventually([&] { return statsOf(web, kLive).backendResets == 1; }));
  // 3. The client resets: the backend gets a reset too.
  {
    UniqueFd client = connectTo(port);
    ASSERT_TRUE(client.valid());
    UniqueFd server = acceptOne(backend.get());
    ASSERT_TRUE(server.valid());
    resetClose(client);
    char c;
    pollfd p{server.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    EXPECT_EQ(::recv(server.get(), &c, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);
  }
  ASSERT_TRUE(eventually([&] { return statsOf(web, kLive).clientResets == 1; }));
  ASSERT_TRUE(eventually([&] { return statsOf(web, kLive).activeConnections == 0; }));

  Exposition e = scrape(metricsPort_);
  ASSERT_EQ(e.status, 200);
  Labels live = backendLabels("web", "8080/tcp", "0123456789ab", "");
  auto side = [&](const char* s) {
    Labels l = live;
    l["side"] = s;
    return l;
  };
  EXPECT_EQ(e.value("skiff_proxy_connections_total", live), 3);
  EXPECT_EQ(e.value("skiff_proxy_idle_timeouts_total", live), 1);
  EXPECT_EQ(e.value("skiff_proxy_resets_total", side("backend")), 1);
  EXPECT_EQ(e.value("skiff_proxy_resets_total", side("client")), 1);
}

// netd itself: API requests by method, route and status, the reconcile
// histogram, overlay peer counts and the process_* families.
TEST(MetricsDaemon, ApiRequestsReconcileTimesPeersAndTheProcess) {
  UniqueFd probe = boundSocket(SOCK_STREAM);
  ASSERT_TRUE(probe.valid());
  uint16_t port = portOf(probe.get());
  probe = UniqueFd();
  auto m = Metrics::start("127.0.0.1:" + std::to_string(port), nullptr);
  ASSERT_TRUE(m.ok()) << m.error().message;
  (*m)->countApiRequest("GET", apiRoute("/v1/services/shop_web"), 200);
  (*m)->countApiRequest("GET", apiRoute("/v1/services/shop_db"), 200);
  (*m)->countApiRequest("GET", apiRoute("/v1/services/nope"), 404);
  (*m)->countApiRequest("POST", apiRoute("/v1/stacks/shop"), 200);
  (*m)->countApiRequest("GET", apiRoute("/etc/passwd"), 404);
  (*m)->countApiRequest("BREW-COFFEE-1", apiRoute("/v1/info"), 405);
  (*m)->observeReconcile(50us);
  (*m)->observeReconcile(3ms);
  (*m)->observeReconcile(2s);
  (*m)->publishPeers({{"shop_webnet", 4, 4, 2}, {"ingress", 3, 2, 1}});

  Exposition e = scrape(port);
  ASSERT_EQ(e.status, 200);
  EXPECT_EQ(e.types, allTypes());
  EXPECT_EQ(e.series("skiff_api_requests_total"),
            (std::set<Labels>{{{"method", "GET"}, {"route", "/v1/services/{name}"}, {"code", "200"}},
                              {{"method", "GET"}, {"route", "/v1/services/{name}"}, {"code", "404"}},
                              {{"method", "POST"}, {"route", "/v1/stacks/{name}"}, {"code", "200"}},
                              {{"method", "GET"}, {"route", "other"}, {"code", "404"}},
                              {{"method", "other"}, {"route", "/v1/info"}, {"code", "405"}}}))
      << "names and unknown methods never become labels";
  EXPECT_EQ(e.value("skiff_api_requests_total", {{"method", "GET"}, {"route", "/v1/services/{name}"}, {"code", "200"}}),
            2);
  EXPECT_EQ(e.value("skiff_reconcile_duration_seconds_count", {}), 3);
  EXPECT_NEAR(e.value("skiff_reconcile_duration_seconds_sum", {}), 2.00305, 1e-9);
  EXPECT_EQ(e.value("skiff_reconcile_duration_seconds_bucket", {{"le", "0.0001"}}), 1);
  EXPECT_EQ(e.value("skiff_reconcile_duration_seconds_bucket", {{"le", "0.005"}}), 2);
  EXPECT_EQ(e.value("skiff_reconcile_duration_seconds_bucket", {{"le", "1"}}), 2);
  EXPECT_EQ(e.value("skiff_reconcile_duration_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(e.value("skiff_overlay_fdb_entries", {{"network", "shop_webnet"}}), 4);
  EXPECT_EQ(e.value("skiff_overlay_neighbour_entries", {{"network", "ingress"}}), 2);
  EXPECT_EQ(e.value("skiff_overlay_remote_vteps", {{"network", "shop_webnet"}}), 2);
  // This test's own process, as the kernel sees it.
  EXPECT_GT(e.value("process_resident_memory_bytes", {}), 1 << 20);
  EXPECT_GE(e.value("process_virtual_memory_bytes", {}), e.value("process_resident_memory_bytes", {}));
  EXPECT_GE(e.value("process_open_fds", {}), 3);
  EXPECT_GT(e.value("process_max_fds", {}), e.value("process_open_fds", {}));
  EXPECT_GE(e.value("process_cpu_seconds_total", {}), 0);
  const double now = static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_LE(e.value("process_start_time_seconds", {}), now + 2);
  EXPECT_GT(e.value("process_start_time_seconds", {}), now - 3600) << "this test started less than an hour ago";

  // The peers of a network that went are not reported any more.
  (*m)->publishPeers({{"ingress", 0, 0, 0}});
  e = scrape(port);
  EXPECT_EQ(e.series("skiff_overlay_fdb_entries"), (std::set<Labels>{{{"network", "ingress"}}}));
}

// Every route netd serves has a bounded label; anything else is "other".
TEST(MetricsDaemon, ApiRoutesAreThePatternsNotTheNames) {
  EXPECT_EQ(apiRoute("/v1/info"), "/v1/info");
  EXPECT_EQ(apiRoute("/v1/services/shop_web/update"), "/v1/services/{name}/update");
  EXPECT_EQ(apiRoute("/v1/services/shop_web"), "/v1/services/{name}");
  EXPECT_EQ(apiRoute("/v1/images/127.0.0.1:5000/alice/app:v2"), "/v1/images/{name}");
  EXPECT_EQ(apiRoute("/v1/images/build"), "/v1/images/build");
  EXPECT_EQ(apiRoute("/v1/containers/abc/logs"), "/v1/containers/{name}/logs");
  EXPECT_EQ(apiRoute("/cluster/v1/heartbeat"), "/cluster/v1/heartbeat");
  EXPECT_EQ(apiRoute("/v1/services/"), "other");
  // The last wildcard takes the rest of a path (image names hold slashes): still one label.
  EXPECT_EQ(apiRoute("/v1/services/a/b/c"), "/v1/services/{name}");
  EXPECT_EQ(apiRoute("/v2/anything"), "other");
  EXPECT_EQ(apiRoute(""), "other");
}

// /proc/<pid>/stat with a command name holding spaces and parentheses, a
// limits file and an fd folder, as the kernel writes them.
TEST(MetricsDaemon, ProcessStatsAreReadFromProcFiles) {
  char tmpl[] = "/tmp/skiff-proc-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto write = [](const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  // Fields from 3 (state): utime 14 = 3 s, stime 15 = 1 s, starttime 22 = 10 s, vsize 23, rss 24.
  std::string stat = "4242 (net (d) x) S";
  for (int field = 4; field <= 52; ++field) {
    long v = 0;
    if (field == 14) v = 3 * ticks;
    if (field == 15) v = 1 * ticks;
    if (field == 22) v = 10 * ticks;
    if (field == 23) v = 123456789;
    if (field == 24) v = 1000;
    stat.append(" ").append(std::to_string(v));  // in place: GCC 12 -O3 warns falsely (-Wrestrict) on " " + s
  }
  write(dir + "/stat", stat + "\n");
  write(dir + "/limits",
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max processes             95000                95000                processes \n"
        "Max open files            4096                 524288               files     \n");
  ASSERT_EQ(::mkdir((dir + "/fd").c_str(), 0700), 0);
  for (const char* fd : {"0", "1", "2", "7"}) write(dir + "/fd/" + fd, "");
  write(dir + "/procstat", "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n");

  auto p = readProcessStats(dir, dir + "/procstat");
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->cpuSeconds, 4);
  EXPECT_DOUBLE_EQ(p->startTimeSeconds, 1700000010);
  EXPECT_EQ(p->virtualBytes, 123456789u);
  EXPECT_EQ(p->residentBytes, 1000u * static_cast<uint64_t>(page));
  EXPECT_EQ(p->openFds, 4u);
  EXPECT_EQ(p->maxFds, 4096u);

  write(dir + "/stat", "4242 (netd S 1 2\n");
  EXPECT_FALSE(readProcessStats(dir, dir + "/procstat").has_value()) << "a stat without its fields";
  EXPECT_FALSE(readProcessStats(dir + "/missing", dir + "/procstat").has_value());
  std::filesystem::remove_all(dir);
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
  EXPECT_TRUE(reported(e).empty());
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
  EXPECT_TRUE(reported(e).empty());
  EXPECT_EQ(e.types, allTypes());
}

TEST(MetricsEmpty, ABadAddressIsAnError) {
  auto m = Metrics::start("127.0.0.1:notaport", nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message.rfind("metrics endpoint on 127.0.0.1:notaport: ", 0), 0u) << m.error().message;
}

}  // namespace
}  // namespace skiff::netd
