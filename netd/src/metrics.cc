#include "skiff/netd/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "skiff/common/log.h"
#include "skiff/overlay/overlay.h"

namespace skiff::netd {

class Metrics::Collector : public prometheus::Collectable {
 public:
  explicit Collector(proxy::Proxy* proxy) : proxy_(proxy) {}

  void publish(std::vector<Orchestrator::ServiceCount> counts) {
    std::lock_guard<std::mutex> lock(mu_);
    counts_ = std::move(counts);
  }
  void publishOverlay(std::vector<OverlayDeviceCounters> devices) {
    std::lock_guard<std::mutex> lock(mu_);
    overlay_ = std::move(devices);
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
    };
    std::map<std::string, Owner> owners;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : counts_) {
        for (const auto& [name, port] : c.listeners) owners[name] = {c.stack, c.service, port};
      }
    }
    if (proxy_ != nullptr) {
      for (const auto& l : proxy_->stats()) {
        auto owner = owners.find(l.name);
        if (owner == owners.end()) continue;  // a listener being removed
        const auto& [stack, service, port] = owner->second;
        const bool udp = port.ends_with("/udp");
        const std::vector<ClientMetric::Label> listenerLabels{{"stack", stack}, {"service", service}, {"port", port}};
        acceptErrors.metric.push_back(counter(listenerLabels, static_cast<double>(l.acceptErrors)));
        failedClients.metric.push_back(counter(listenerLabels, static_cast<double>(l.failedClientConnections)));
        if (udp) {
          udpRefused.metric.push_back(counter(listenerLabels, static_cast<double>(l.udpFlowsRefused)));
          localErrors.metric.push_back(counter(listenerLabels, static_cast<double>(l.localErrors)));
        } else {
          spliced.metric.push_back(counter(listenerLabels, static_cast<double>(l.splicedBytes)));
        }
        for (const auto& b : l.backends) {
          std::vector<ClientMetric::Label> labels{
              {"stack", stack}, {"service", service}, {"port", port}, {"backend", b.id.substr(0, 12)}};
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
          }
          auto in = labels;
          in.push_back({"direction", "in"});
          bytes.metric.push_back(counter(in, static_cast<double>(b.bytesIn)));
          auto out = labels;
          out.push_back({"direction", "out"});
          bytes.metric.push_back(counter(out, static_cast<double>(b.bytesOut)));
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
      }
    }
    std::vector<MetricFamily> out{conns,      active,       bytes,         errors,      udpRefused,
                                  replicas,   up,           retries,       connectTime, flowsActive,
                                  flowsTotal, acceptErrors, failedClients, spliced,     localErrors};
    appendOverlay(out);
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
  }

  proxy::Proxy* proxy_;
  mutable std::mutex mu_;
  std::vector<Orchestrator::ServiceCount> counts_;
  std::vector<OverlayDeviceCounters> overlay_;
};

Result<std::unique_ptr<Metrics>> Metrics::start(const std::string& addr, proxy::Proxy* proxy) {
  std::unique_ptr<Metrics> m(new Metrics);
  m->collector_ = std::make_shared<Collector>(proxy);
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
