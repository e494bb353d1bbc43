#include "skiff/netd/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <map>

#include "skiff/common/log.h"

namespace skiff::netd {

class Metrics::Collector : public prometheus::Collectable {
 public:
  explicit Collector(proxy::Proxy* proxy) : proxy_(proxy) {}

  void publish(std::vector<Orchestrator::ServiceCount> counts) {
    std::lock_guard<std::mutex> lock(mu_);
    counts_ = std::move(counts);
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
        if (port.ends_with("/udp")) {
          udpRefused.metric.push_back(counter({{"stack", stack}, {"service", service}, {"port", port}},
                                              static_cast<double>(l.udpFlowsRefused)));
        }
        for (const auto& b : l.backends) {
          std::vector<ClientMetric::Label> labels{
              {"stack", stack}, {"service", service}, {"port", port}, {"backend", b.id.substr(0, 12)}};
          conns.metric.push_back(counter(labels, static_cast<double>(b.connections)));
          active.metric.push_back(gauge(labels, static_cast<double>(b.activeConnections)));
          errors.metric.push_back(counter(labels, static_cast<double>(b.connectErrors)));
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
    return {conns, active, bytes, errors, udpRefused, replicas};
  }

 private:
  proxy::Proxy* proxy_;
  mutable std::mutex mu_;
  std::vector<Orchestrator::ServiceCount> counts_;
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

}  // namespace skiff::netd
