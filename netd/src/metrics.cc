#include "skiff/netd/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "skiff/common/log.h"
#include "skiff/overlay/overlay.h"
#include "skiff/proxy/balancing.h"

namespace skiff::netd {

class Metrics::Collector : public prometheus::Collectable {
 public:
  explicit Collector(const Mesh* mesh) : mesh_(mesh) {}

  void publish(std::vector<Orchestrator::ServiceCount> counts) {
    std::lock_guard<std::mutex> lock(mu_);
    counts_ = std::move(counts);
  }
  void publishOverlay(std::vector<OverlayDeviceCounters> devices) {
    std::lock_guard<std::mutex> lock(mu_);
    overlay_ = std::move(devices);
  }
  void publishPeers(std::vector<Orchestrator::NetworkPeers> peers) {
    std::lock_guard<std::mutex> lock(mu_);
    peers_ = std::move(peers);
  }
  void countApiRequest(const std::string& method, const std::string& route, int status) {
    // The method is the client's text: only HTTP's own become labels.
    static const std::set<std::string, std::less<>> kMethods{"GET",    "HEAD",    "POST", "PUT",
                                                             "DELETE", "OPTIONS", "PATCH"};
    std::lock_guard<std::mutex> lock(mu_);
    ++apiRequests_[{kMethods.count(method) ? method : "other", route, status}];
  }
  void observeReconcile(std::chrono::nanoseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t ns = std::max<int64_t>(0, d.count());
    ++reconcileBuckets_[proxy::bucketOf(kReconcileBucketBoundsNs, ns)];
    reconcileSumNs_ += static_cast<uint64_t>(ns);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::ClientMetric;
    using prometheus::MetricFamily;
    using prometheus::MetricType;
    MetricFamily conns{
        "skiff_proxy_connections_total", "Connections forwarded to each backend.", MetricType::Counter, {}};
    MetricFamily active{"skiff_proxy_active_connections", "Open connections per backend.", MetricType::Gauge, {}};
    MetricFamily bytes{
        "skiff_proxy_bytes_total", "Bytes forwarded per backend and direction.", MetricType::Counter, {}};
    MetricFamily errors{
        "skiff_proxy_connect_errors_total", "Failed connects to each backend.", MetricType::Counter, {}};
    MetricFamily udpRefused{"skiff_proxy_udp_flows_refused_total",
                            "Datagrams of new UDP sources dropped at the listener's flow bound.",
                            MetricType::Counter,
                            {}};
    MetricFamily replicas{"skiff_service_replicas", "Replicas per service and state.", MetricType::Gauge, {}};
    MetricFamily up{"skiff_backend_up",
                    "1 while the backend is in the rotation, 0 while it is ejected (failed connects) or draining.",
                    MetricType::Gauge,
                    {}};
    MetricFamily retries{"skiff_proxy_connect_retries_total",
                         "TCP connects to the backend that retried a client's failed connect to another backend.",
                         MetricType::Counter,
                         {}};
    MetricFamily connectTime{"skiff_proxy_connect_duration_seconds",
                             "Time from connect() to the backend's answer, of successful TCP connects.",
                             MetricType::Histogram,
                             {}};
    MetricFamily flowsActive{"skiff_proxy_udp_flows_active", "Open UDP flows per backend.", MetricType::Gauge, {}};
    MetricFamily flowsTotal{
        "skiff_proxy_udp_flows_total", "UDP flows opened to each backend.", MetricType::Counter, {}};
    MetricFamily acceptErrors{"skiff_proxy_accept_errors_total",
                              "Errors accepting a client (TCP) or receiving from the published port (UDP).",
                              MetricType::Counter,
                              {}};
    MetricFamily failedClients{"skiff_proxy_failed_client_connections_total",
                               "Clients (TCP connections, new UDP flows) that no backend could be reached for.",
                               MetricType::Counter,
                               {}};
    MetricFamily spliced{"skiff_proxy_spliced_bytes_total",
                         "Of the bytes forwarded over TCP, those moved by splice() without a copy.",
                         MetricType::Counter,
                         {}};
    MetricFamily localErrors{"skiff_proxy_local_errors_total",
                             "UDP flows or datagrams lost to a shortage of this host (fds, ports, buffers).",
                             MetricType::Counter,
                             {}};
    MetricFamily idleTimeouts{"skiff_proxy_idle_timeouts_total",
                              "Connections (UDP: flows) to the backend closed by the listener's idle timeout.",
                              MetricType::Counter,
                              {}};
    MetricFamily resets{"skiff_proxy_resets_total",
                        "TCP connections through the backend that ended in a reset (or another socket error) from "
                        "the client's side or the backend's; the proxy resets the other side.",
                        MetricType::Counter,
                        {}};
    MetricFamily restarts{"skiff_task_restarts_total",
                          "Replicas the restart policy restarted (counted on the manager).",
                          MetricType::Counter,
                          {}};
    MetricFamily transitions{"skiff_task_state_transitions_total",
                             "Entries of this node's tasks into each state (new, pending, ..., running, failed).",
                             MetricType::Counter,
                             {}};

    auto counter = [](std::vector<ClientMetric::Label> labels, double v) {
      ClientMetric m;
      m.label = std::move(labels);
      m.counter.value = v;
      return m;
    };
    auto gauge = [](std::vector<ClientMetric::Label> labels, double v) {
      ClientMetric m;
      m.label = std::move(labels);
      m.gauge.value = v;
      return m;
    };
    // Which service and port each proxy listener serves, from the snapshot.
    struct Owner {
      std::string stack, service, port;
      std::vector<std::string> down;  // replicas that ended, not replaced yet
    };
    std::map<std::string, Owner> owners;
    std::map<std::string, std::string> nodes;  // backend id -> its node's hostname
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : counts_) {
        for (const auto& [name, port] : c.listeners) owners[name] = {c.stack, c.service, port, c.downBackends};
        nodes.insert(c.backendNodes.begin(), c.backendNodes.end());
      }
    }
    if (mesh_ != nullptr) {
      for (const auto& l : mesh_->stats()) {
        auto owner = owners.find(l.name);
        if (owner == owners.end()) continue;  // a listener being removed
        const auto& [stack, service, port, down] = owner->second;
        const bool udp = port.ends_with("/udp");
        const std::vector<ClientMetric::Label> listenerLabels{
            {"stack", stack}, {"service", service}, {"port", port}, {"protocol", udp ? "udp" : "tcp"}};
        acceptErrors.metric.push_back(counter(listenerLabels, static_cast<double>(l.acceptErrors)));
        failedClients.metric.push_back(counter(listenerLabels, static_cast<double>(l.failedClientConnections)));
        if (udp) {
          udpRefused.metric.push_back(counter(listenerLabels, static_cast<double>(l.udpFlowsRefused)));
          localErrors.metric.push_back(counter(listenerLabels, static_cast<double>(l.localErrors)));
        } else {
          spliced.metric.push_back(counter(listenerLabels, static_cast<double>(l.splicedBytes)));
        }
        auto backendLabels = [&](const std::string& id) {
          auto node = nodes.find(id);
          return std::vector<ClientMetric::Label>{{"stack", stack},
                                                  {"service", service},
                                                  {"port", port},
                                                  {"protocol", udp ? "udp" : "tcp"},
                                                  {"backend", id.substr(0, 12)},
                                                  {"node", node == nodes.end() ? "" : node->second}};
        };
        std::set<std::string> present;
        for (const auto& b : l.backends) {
          present.insert(b.id);
          const auto labels = backendLabels(b.id);
          idleTimeouts.metric.push_back(counter(labels, static_cast<double>(b.idleTimeouts)));
          conns.metric.push_back(counter(labels, static_cast<double>(b.connections)));
          active.metric.push_back(gauge(labels, static_cast<double>(b.activeConnections)));
          errors.metric.push_back(counter(labels, static_cast<double>(b.connectErrors)));
          up.metric.push_back(gauge(labels, b.ejected || b.draining ? 0 : 1));
          if (udp) {
            // A UDP backend's connections are its flows.
            flowsActive.metric.push_back(gauge(labels, static_cast<double>(b.activeConnections)));
            flowsTotal.metric.push_back(counter(labels, static_cast<double>(b.connections)));
          } else {
            retries.metric.push_back(counter(labels, static_cast<double>(b.connectRetries)));
            connectTime.metric.push_back(histogram(labels, b));
            auto client = labels;
            client.push_back({"side", "client"});
            resets.metric.push_back(counter(client, static_cast<double>(b.clientResets)));
            auto backend = labels;
            backend.push_back({"side", "backend"});
            resets.metric.push_back(counter(backend, static_cast<double>(b.backendResets)));
          }
          auto in = labels;
          in.push_back({"direction", "in"});
          bytes.metric.push_back(counter(in, static_cast<double>(b.bytesIn)));
          auto out = labels;
          out.push_back({"direction", "out"});
          bytes.metric.push_back(counter(out, static_cast<double>(b.bytesOut)));
        }
        // A replica that died has left the proxy's list (no connection to it
        // is open): down until its slot's replacement is in rotation.
        for (const auto& id : down) {
          if (!present.count(id)) up.metric.push_back(gauge(backendLabels(id), 0));
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : counts_) {
        replicas.metric.push_back(
            gauge({{"stack", c.stack}, {"service", c.service}, {"state", "running"}}, static_cast<double>(c.running)));
        replicas.metric.push_back(
            gauge({{"stack", c.stack}, {"service", c.service}, {"state", "desired"}}, static_cast<double>(c.desired)));
        restarts.metric.push_back(
            counter({{"stack", c.stack}, {"service", c.service}}, static_cast<double>(c.restarts)));
        for (const auto& [state, n] : c.transitions) {
          transitions.metric.push_back(
              counter({{"stack", c.stack}, {"service", c.service}, {"state", state}}, static_cast<double>(n)));
        }
      }
    }
    std::vector<MetricFamily> out{conns,        active,       bytes,         errors,      udpRefused,
                                  replicas,     up,           retries,       connectTime, flowsActive,
                                  flowsTotal,   acceptErrors, failedClients, spliced,     localErrors,
                                  idleTimeouts, resets,       restarts,      transitions};
    appendOverlay(out);
    appendDaemon(out);
    return out;
  }

 private:
  // skiff_proxy_connect_duration_seconds of one backend: the proxy counts
  // each bucket apart, Prometheus wants them cumulative.
  static prometheus::ClientMetric histogram(std::vector<prometheus::ClientMetric::Label> labels,
                                            const proxy::Proxy::BackendStats& b) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < b.connectDurationBuckets.size(); ++i) {
      cumulative += b.connectDurationBuckets[i];
      prometheus::ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = i < proxy::Proxy::kConnectBucketBoundsNs.size()
                               ? static_cast<double>(proxy::Proxy::kConnectBucketBoundsNs[i]) / 1e9
                               : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(bucket);
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(b.connectDurationSumNs) / 1e9;
    return m;
  }

  // skiff_overlay_{rx,tx}_{bytes,packets,dropped,errors}_total{network,device}:
  // the kernel's own counters (IFLA_STATS64), passed through as they are.
  void appendOverlay(std::vector<prometheus::MetricFamily>& out) const {
    using Field = uint64_t overlay::LinkStats::*;
    struct Spec {
      const char* name;
      const char* help;
      Field field;
    };
    static constexpr Spec kSpecs[] = {
        {"skiff_overlay_rx_bytes_total", "Bytes an overlay network's device received, as the kernel counts them.",
         &overlay::LinkStats::rxBytes},
        {"skiff_overlay_tx_bytes_total", "Bytes an overlay network's device sent, as the kernel counts them.",
         &overlay::LinkStats::txBytes},
        {"skiff_overlay_rx_packets_total", "Packets an overlay network's device received.",
         &overlay::LinkStats::rxPackets},
        {"skiff_overlay_tx_packets_total", "Packets an overlay network's device sent.", &overlay::LinkStats::txPackets},
        {"skiff_overlay_rx_dropped_total", "Received packets an overlay network's device dropped.",
         &overlay::LinkStats::rxDropped},
        {"skiff_overlay_tx_dropped_total",
         "Packets an overlay network's device dropped on sending (on the VXLAN device: no FDB entry for the "
         "destination).",
         &overlay::LinkStats::txDropped},
        {"skiff_overlay_rx_errors_total", "Receive errors of an overlay network's device.",
         &overlay::LinkStats::rxErrors},
        {"skiff_overlay_tx_errors_total", "Send errors of an overlay network's device.", &overlay::LinkStats::txErrors},
    };
    std::lock_guard<std::mutex> lock(mu_);
    for (const Spec& spec : kSpecs) {
      prometheus::MetricFamily family{spec.name, spec.help, prometheus::MetricType::Counter, {}};
      for (const auto& d : overlay_) {
        prometheus::ClientMetric m;
        m.label = {{"network", d.network}, {"device", d.device}};
        m.counter.value = static_cast<double>(d.stats.*spec.field);
        family.metric.push_back(std::move(m));
      }
      out.push_back(std::move(family));
    }
    using PeerField = uint64_t Orchestrator::NetworkPeers::*;
    struct PeerSpec {
      const char* name;
      const char* help;
      PeerField field;
    };
    static constexpr PeerSpec kPeerSpecs[] = {
        {"skiff_overlay_fdb_entries",
         "FDB entries (remote MAC -> VTEP) skiff programmed on the network's VXLAN device.",
         &Orchestrator::NetworkPeers::fdbEntries},
        {"skiff_overlay_neighbour_entries", "Permanent neighbour entries (remote IP -> MAC) skiff programmed.",
         &Orchestrator::NetworkPeers::neighbours},
        {"skiff_overlay_remote_vteps", "Other nodes (VTEPs) the network reaches from this node.",
         &Orchestrator::NetworkPeers::remoteVteps},
    };
    for (const PeerSpec& spec : kPeerSpecs) {
      prometheus::MetricFamily family{spec.name, spec.help, prometheus::MetricType::Gauge, {}};
      for (const auto& p : peers_) {
        prometheus::ClientMetric m;
        m.label = {{"network", p.network}};
        m.gauge.value = static_cast<double>(p.*spec.field);
        family.metric.push_back(std::move(m));
      }
      out.push_back(std::move(family));
    }
  }

  // netd itself: API requests, reconcile times, and the process.
  void appendDaemon(std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::ClientMetric;
    using prometheus::MetricFamily;
    using prometheus::MetricType;
    MetricFamily api{"skiff_api_requests_total",
                     "Requests to netd's API by method, route and HTTP status.",
                     MetricType::Counter,
                     {}};
    MetricFamily reconcile{"skiff_reconcile_duration_seconds",
                           "Time netd took to reconcile a service (compare, start and stop replicas).",
                           MetricType::Histogram,
                           {}};
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, n] : apiRequests_) {
        const auto& [method, route, code] = key;
        ClientMetric m;
        m.label = {{"method", method}, {"route", route}, {"code", std::to_string(code)}};
        m.counter.value = static_cast<double>(n);
        api.metric.push_back(std::move(m));
      }
      ClientMetric m;
      uint64_t cumulative = 0;
      for (size_t i = 0; i < reconcileBuckets_.size(); ++i) {
        cumulative += reconcileBuckets_[i];
        ClientMetric::Bucket b;
        b.cumulative_count = cumulative;
        b.upper_bound = i < kReconcileBucketBoundsNs.size() ? static_cast<double>(kReconcileBucketBoundsNs[i]) / 1e9
                                                            : std::numeric_limits<double>::infinity();
        m.histogram.bucket.push_back(b);
      }
      m.histogram.sample_count = cumulative;
      m.histogram.sample_sum = static_cast<double>(reconcileSumNs_) / 1e9;
      reconcile.metric.push_back(std::move(m));
    }
    out.push_back(std::move(api));
    out.push_back(std::move(reconcile));
    auto p = readProcessStats();
    if (!p) return;
    auto one = [&out](const char* name, const char* help, MetricType type, double v) {
      MetricFamily f{name, help, type, {}};
      ClientMetric m;
      if (type == MetricType::Counter) {
        m.counter.value = v;
      } else {
        m.gauge.value = v;
      }
      f.metric.push_back(std::move(m));
      out.push_back(std::move(f));
    };
    one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", MetricType::Counter,
        p->cpuSeconds);
    one("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
        static_cast<double>(p->residentBytes));
    one("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
        static_cast<double>(p->virtualBytes));
    one("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, static_cast<double>(p->openFds));
    one("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
        static_cast<double>(p->maxFds));
    one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
        p->startTimeSeconds);
  }

  const Mesh* mesh_;
  mutable std::mutex mu_;
  std::vector<Orchestrator::ServiceCount> counts_;
  std::vector<OverlayDeviceCounters> overlay_;
  std::vector<Orchestrator::NetworkPeers> peers_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> apiRequests_;  // method, route, code
  std::array<uint64_t, kReconcileBucketBoundsNs.size() + 1> reconcileBuckets_{};
  uint64_t reconcileSumNs_ = 0;
};

std::optional<ProcessStats> readProcessStats(const std::string& procDir, const std::string& procStat) {
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  // stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses,
  // so the fields are counted from the last ')'. After it, field 3 (state)
  // is the first: utime is 14, stime 15, starttime 22, vsize 23, rss 24.
  std::string stat = slurp(procDir + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  if (f.size() < 22) return std::nullopt;
  auto num = [&f](size_t field) -> std::optional<uint64_t> {
    const std::string& text = f[field - 3];
    uint64_t v = 0;
    for (char ch : text) {
      if (ch < '0' || ch > '9') return std::nullopt;
      v = v * 10 + static_cast<uint64_t>(ch - '0');
    }
    return v;
  };
  auto utime = num(14), stime = num(15), start = num(22), vsize = num(23), rss = num(24);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  ProcessStats p;
  p.cpuSeconds = static_cast<double>(*utime + *stime) / ticks;
  p.virtualBytes = *vsize;
  p.residentBytes = *rss * page;
  std::istringstream boot(slurp(procStat));
  for (std::string line; std::getline(boot, line);) {
    if (line.rfind("btime ", 0) == 0) {
      p.startTimeSeconds = std::strtod(line.c_str() + 6, nullptr) + static_cast<double>(*start) / ticks;
    }
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(procDir + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++p.openFds;
  }
  std::istringstream limits(slurp(procDir + "/limits"));
  for (std::string line; std::getline(limits, line);) {
    // "Max open files            1024                 524288               files"
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream words(line.substr(14));
    std::string soft;
    words >> soft;
    p.maxFds = soft == "unlimited" ? 0 : std::strtoull(soft.c_str(), nullptr, 10);
  }
  return p;
}

Result<std::unique_ptr<Metrics>> Metrics::start(const std::string& addr, const Mesh* mesh) {
  std::unique_ptr<Metrics> m(new Metrics);
  m->collector_ = std::make_shared<Collector>(mesh);
  if (addr.empty()) return m;
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(addr, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return Error::msg("metrics endpoint on " + addr + ": " + e.what());
  }
  m->exposer_->RegisterCollectable(m->collector_);
  return m;
}

Metrics::~Metrics() = default;

void Metrics::publish(std::vector<Orchestrator::ServiceCount> counts) { collector_->publish(std::move(counts)); }

void Metrics::publishOverlay(std::vector<OverlayDeviceCounters> devices) {
  collector_->publishOverlay(std::move(devices));
}

void Metrics::publishPeers(std::vector<Orchestrator::NetworkPeers> peers) {
  collector_->publishPeers(std::move(peers));
}

void Metrics::countApiRequest(const std::string& method, const std::string& route, int status) {
  collector_->countApiRequest(method, route, status);
}

void Metrics::observeReconcile(std::chrono::nanoseconds d) { collector_->observeReconcile(d); }

void Metrics::refreshOverlay(overlay::Overlay& overlay, const nlohmann::json& networks) {
  std::vector<OverlayDeviceCounters> devices;
  std::string errors;
  auto addError = [&errors](const std::string& text) {
    if (!errors.empty()) errors += "; ";
    errors += text;
  };
  static const nlohmann::json kNone = nlohmann::json::array();
  if (!networks.is_array()) addError("the network list is not an array");
  for (const auto& n : networks.is_array() ? networks : kNone) {
    // is_number_integer: a VNI may be stored signed or unsigned.
    if (!n.is_object() || !n.contains("name") || !n["name"].is_string() || !n.contains("vni") ||
        !n["vni"].is_number_integer() || n["vni"].get<int64_t>() < 1 || n["vni"].get<int64_t>() > overlay::kMaxVni) {
      addError("a network without a name or a valid VNI: " + n.dump());
      continue;
    }
    overlay::NetworkConfig config;
    config.name = n["name"].get<std::string>();
    config.vni = static_cast<uint32_t>(n["vni"].get<int64_t>());
    auto stats = overlay.networkStats(config);
    if (!stats.ok()) {
      addError(stats.error().message);
      continue;
    }
    for (auto& d : *stats) devices.push_back(OverlayDeviceCounters{config.name, std::move(d.device), d.stats});
  }
  collector_->publishOverlay(std::move(devices));
  // It runs every second: say it when the errors change, not each time.
  if (errors != overlayErrors_) {
    if (errors.empty()) {
      log::info("metrics", "overlay counters readable again");
    } else {
      log::warn("metrics", "overlay counters left out: ", errors);
    }
    overlayErrors_ = std::move(errors);
  }
}

}  // namespace skiff::netd
