#pragma once
// Metrics: netd's Prometheus endpoint (prometheus-cpp's Exposer on
// --metrics-addr, path /metrics). One Collectable builds the families at
// scrape time from three sources: the proxy's counters (thread-safe to read),
// a snapshot of the orchestrator's service counts, and a snapshot of the
// overlay devices' kernel counters. The loop thread refreshes both snapshots
// (publish(), refreshOverlay()) because the orchestrator and the overlay's
// netlink socket are not thread-safe; a scrape reads them under a mutex.
//
// Families: skiff_proxy_connections_total{stack,service,port,backend},
// skiff_proxy_active_connections{...}, skiff_proxy_bytes_total{...,direction},
// skiff_proxy_connect_errors_total{...}, skiff_backend_up{...}, for TCP
// skiff_proxy_connect_retries_total{...} and the histogram
// skiff_proxy_connect_duration_seconds{...}, for UDP skiff_proxy_udp_flows_{active,total}{...};
// per listener {stack,service,port}: skiff_proxy_accept_errors_total,
// skiff_proxy_failed_client_connections_total, for TCP skiff_proxy_spliced_bytes_total,
// for UDP skiff_proxy_udp_flows_refused_total and skiff_proxy_local_errors_total;
// skiff_service_replicas{stack,service,state}, and per overlay device
// skiff_overlay_{rx,tx}_{bytes,packets,dropped,errors}_total{network,device}.
// A series exists only while what it counts does: a removed backend, service
// or network takes its series with it at the next refresh.

#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/overlay/netlink.h"
#include "skiff/proxy/proxy.h"

namespace prometheus {
class Exposer;
}

namespace skiff::overlay {
class Overlay;
}

namespace skiff::netd {

// One device of an overlay network on this node and its kernel counters.
struct OverlayDeviceCounters {
  std::string network;  // the network's name ("getstartedlab_webnet", "ingress")
  std::string device;   // "skvx-<vni>" or "skbr-<vni>"
  overlay::LinkStats stats;
};

class Metrics {
 public:
  // Binds addr ("127.0.0.1:9323"); an empty addr disables the endpoint.
  static Result<std::unique_ptr<Metrics>> start(const std::string& addr, proxy::Proxy* proxy);
  ~Metrics();

  // Loop thread: replaces the service-count snapshot.
  void publish(std::vector<Orchestrator::ServiceCount> counts);

  // Loop thread: replaces the overlay snapshot.
  void publishOverlay(std::vector<OverlayDeviceCounters> devices);
  // Loop thread: reads the counters of every network in `networks`
  // (Orchestrator::listNetworks()'s array; "name" and "vni" of each) through
  // `overlay` (two RTM_GETLINK per network) and publishes them. A network
  // whose devices are not on this node has no series; one whose counters
  // cannot be read is left out and the error logged, once until it changes.
  void refreshOverlay(overlay::Overlay& overlay, const nlohmann::json& networks);

  class Collector;

 private:
  Metrics() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<Collector> collector_;
  std::string overlayErrors_;  // the last refresh's errors (loop thread)
};

}  // namespace skiff::netd
