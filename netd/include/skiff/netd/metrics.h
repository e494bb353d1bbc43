#pragma once
// Metrics: netd's Prometheus endpoint (prometheus-cpp's Exposer on
// --metrics-addr, path /metrics). One Collectable builds the families at
// scrape time from two sources: the proxy's counters (thread-safe to read)
// and a snapshot of the orchestrator's service counts, which the loop thread
// refreshes (publish()) because the orchestrator is not thread-safe.
//
// Families: skiff_proxy_connections_total{stack,service,port,backend},
// skiff_proxy_active_connections{...}, skiff_proxy_bytes_total{...,direction},
// skiff_proxy_connect_errors_total{...}, skiff_service_replicas{stack,service,state}.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/proxy/proxy.h"

namespace prometheus {
class Exposer;
}

namespace skiff::netd {

class Metrics {
 public:
  // Binds addr ("127.0.0.1:9323"); an empty addr disables the endpoint.
  static Result<std::unique_ptr<Metrics>> start(const std::string& addr, proxy::Proxy* proxy);
  ~Metrics();

  // Loop thread: replaces the service-count snapshot.
  void publish(std::vector<Orchestrator::ServiceCount> counts);

  class Collector;

 private:
  Metrics() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<Collector> collector_;
};

}  // namespace skiff::netd
