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
// The per-backend proxy families are labelled {stack,service,port,protocol,
// backend,node} (node: the hostname of the node that runs the replica);
// skiff_proxy_idle_timeouts_total{...} and for TCP
// skiff_proxy_resets_total{...,side} count how connections ended.
// Services: skiff_task_restarts_total{stack,service} and
// skiff_task_state_transitions_total{stack,service,state}. Overlay peers:
// skiff_overlay_{fdb_entries,neighbour_entries,remote_vteps}{network}. The
// daemon: skiff_api_requests_total{method,route,code},
// skiff_reconcile_duration_seconds, and process_* (CPU, memory, fds, start).
// A series exists only while what it counts does: a removed backend, service
// or network takes its series with it at the next refresh.

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/netd/mesh.h"
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

// What the kernel says about a process (netd itself), for process_*.
struct ProcessStats {
  double cpuSeconds = 0;        // user + system
  double startTimeSeconds = 0;  // since the epoch
  uint64_t residentBytes = 0, virtualBytes = 0;
  uint64_t openFds = 0, maxFds = 0;
};
// Reads procDir/stat, procDir/fd/ and procDir/limits (procDir: "/proc/self")
// with the boot time from procStat ("/proc/stat"); nullopt when stat cannot
// be read or parsed (the others then count as 0).
std::optional<ProcessStats> readProcessStats(const std::string& procDir = "/proc/self",
                                             const std::string& procStat = "/proc/stat");

// The bounds of skiff_reconcile_duration_seconds's buckets, in nanoseconds.
inline constexpr std::array<int64_t, 9> kReconcileBucketBoundsNs{
    100'000, 500'000, 1'000'000, 5'000'000, 10'000'000, 50'000'000, 100'000'000, 500'000'000, 1'000'000'000};

class Metrics {
 public:
  // Binds addr ("127.0.0.1:9323"); an empty addr disables the endpoint.
  // The per-backend families come from the mesh's stats (nullptr: none).
  static Result<std::unique_ptr<Metrics>> start(const std::string& addr, const Mesh* mesh);
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
  // Loop thread: replaces the overlay peer counts.
  void publishPeers(std::vector<Orchestrator::NetworkPeers> peers);

  // Any thread: an API request (route: apiRoute()'s pattern) was answered.
  void countApiRequest(const std::string& method, const std::string& route, int status);
  // Any thread: one reconcile of a service took d.
  void observeReconcile(std::chrono::nanoseconds d);

  class Collector;

 private:
  Metrics() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<Collector> collector_;
  std::string overlayErrors_;  // the last refresh's errors (loop thread)
};

}  // namespace skiff::netd
