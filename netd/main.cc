// netd: skiff's network daemon. Serves the API on a Unix socket, keeps the
// desired state in <data-root>/state.db, runs replicas through the container
// runtime, builds overlay networks with netlink and publishes ports through
// the routing-mesh proxy. See netd/include/skiff/netd/orchestrator.h.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <iostream>
#include <variant>

#include "skiff/common/fd.h"
#include "skiff/common/log.h"
#include "skiff/netd/api.h"
#include "skiff/netd/http_server.h"
#include "skiff/netd/kernel_mesh.h"
#include "skiff/netd/metrics.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/netd/store.h"
#include "skiff/overlay/netlink.h"
#include "skiff/overlay/overlay.h"
#include "skiff/proxy/proxy.h"
#include "skiff/runtime/cgroup.h"
#include "skiff/runtime/container.h"
#include "skiff/runtime/image.h"

namespace {

using namespace skiff;

std::string hostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

int fatal(const std::string& what) {
  log::error("netd", what);
  return 1;
}

// Nothing may leave a libuv callback (it would end netd): the one
// operation fails, is logged, and the loop goes on.
template <typename F>
void guarded(const char* what, F&& work) {
  try {
    work();
  } catch (const std::exception& e) {
    log::error("netd", what, " failed: ", e.what());
  } catch (...) {
    log::error("netd", what, " failed with an unknown exception");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A container's init shim is this same binary; it never returns.
  if (runtime::maybeRunContainerInit(argc, argv)) return 0;

  CLI::App app{"netd: the skiff daemon (runs compose stacks as replicas on overlay networks)"};
  std::string socketPath = "/run/skiff/netd.sock";
  std::string dataRoot = "/var/lib/skiff";
  std::string metricsAddr = "127.0.0.1:9323";
  std::string logLevel = "info";
  std::string cgroupParent = "skiff";
  unsigned proxyThreads = 0;
  std::string nodeHostname;
  std::string listenAddr;
  double heartbeatSeconds = 1;
  std::string kernelLb = "off";
  std::string kernelLbCgroup;
  app.add_option("--socket", socketPath, "API socket path")->capture_default_str();
  app.add_option("--data-root", dataRoot, "state, images, containers and volumes")->capture_default_str();
  std::vector<std::string> insecureRegistries;
  app.add_option("--insecure-registry", insecureRegistries,
                 "a registry (host[:port]) that may be reached over plain HTTP (repeatable; loopback ones always "
                 "may); others need HTTPS, trusting <data-root>/certs.d/<host>/ca.crt when it exists");
  app.add_option("--metrics-addr", metricsAddr, "Prometheus endpoint (host:port, empty = off)")->capture_default_str();
  app.add_option("--log-level", logLevel, "debug|info|warn|error")->capture_default_str();
  app.add_option("--cgroup-parent", cgroupParent, "cgroup under which replicas' groups are made")
      ->capture_default_str();
  app.add_option("--proxy-threads", proxyThreads, "routing-mesh proxy threads (0 = cores)")->capture_default_str();
  app.add_option("--hostname", nodeHostname,
                 "this node's name in the swarm (default: the host name; labs run several nodes "
                 "on one host)");
  app.add_option("--listen-addr", listenAddr,
                 "the cluster port a manager serves (IPv4:PORT; default 0.0.0.0:2377, or what "
                 "`swarm init --listen-addr` says)");
  app.add_option("--heartbeat", heartbeatSeconds,
                 "seconds between an agent's heartbeats; a node silent for 4 of them is Down")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 60.0));
  app.add_option("--kernel-lb", kernelLb,
                 "connect clients on this node straight to a replica with BPF socket load balancing (socklb) "
                 "in front of the proxy: off, auto (when the kernel and privileges allow it, else say why "
                 "once and proxy every client), on (or refuse to start)")
      ->check(CLI::IsMember({"off", "auto", "on"}))
      ->capture_default_str();
  app.add_option("--kernel-lb-cgroup", kernelLbCgroup,
                 "with --kernel-lb: serve the processes of this cgroup v2 directory, absolute or relative to "
                 "the cgroup2 root (default: the root; only this network namespace is served either way)");
  CLI11_PARSE(app, argc, argv);

  log::Level level;
  if (!log::parseLevel(logLevel, &level)) return fatal("invalid --log-level \"" + logLevel + "\"");
  log::setLevel(level);
  if (::geteuid() != 0) return fatal("netd needs root (namespaces, cgroups, netlink)");
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  dataRoot = std::filesystem::absolute(dataRoot, ec).lexically_normal().string();
  // As dockerd's setDefaultUmask: what netd creates gets the modes it asks
  // for whatever umask it was started under (077 would leave replicas' upper
  // dirs, and so their "/", closed to a non-root user; 0 world-writable).
  ::umask(022);
  // Modes as docker's since CVE-2021-41091: host users may pass through the
  // data root (0711) but reach nothing below it (0700), so a setuid file a
  // replica writes into its upper dir or a volume cannot be run from the host,
  // and configs stay root's. Replicas are not affected: their rootfs, volumes
  // and configs are mounted by root. Folders an older netd made are tightened.
  using Perms = std::filesystem::perms;
  const std::pair<const char*, Perms> kDirs[] = {{"", Perms(0711)},
                                                 {"/containers", Perms(0700)},
                                                 {"/volumes", Perms(0700)},
                                                 {"/configs", Perms(0700)},
                                                 {"/images", Perms(0700)}};
  for (const auto& [sub, mode] : kDirs) {
    std::filesystem::create_directories(dataRoot + sub, ec);
    if (ec) return fatal("cannot create " + dataRoot + sub + ": " + ec.message());
    std::filesystem::permissions(dataRoot + sub, mode, ec);
    if (ec) return fatal("cannot chmod " + dataRoot + sub + ": " + ec.message());
  }
  std::filesystem::create_directories(std::filesystem::path(socketPath).parent_path(), ec);

  // One daemon per data root: a second one would take over the socket and
  // "clean up" the first one's replicas as leftovers.
  UniqueFd lock(::open((dataRoot + "/netd.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return fatal("another netd is running with data root " + dataRoot + " (" + dataRoot + "/netd.lock is locked)");
  }

  auto store = netd::Store::open(dataRoot + "/state.db");
  if (!store.ok()) return fatal(store.error().message);

  auto cgroups = runtime::CgroupManager::detect(cgroupParent);
  if (!cgroups.ok()) return fatal("cgroups: " + cgroups.error().message);
  std::string cgroupVersion = (*cgroups)->version() == runtime::CgroupVersion::kV2 ? "v2" : "v1";
  // The proxy holds two fds per connection on every published port; the
  // replicas start with the limit netd was given.
  uint64_t containerNofile = proxy::raiseFdLimit();
  auto launcher =
      runtime::makeLinuxLauncher(*cgroups,
                                 // The kernel's own link to this binary: it still works after the file
                                 // on disk was replaced by an upgrade (readlink would then give "... (deleted)").
                                 "/proc/self/exe", containerNofile);

  auto netlink = overlay::openNetlink();
  if (!netlink.ok()) return fatal("netlink: " + netlink.error().message);
  overlay::Overlay overlayNet(**netlink);

  proxy::Options popts;
  popts.threads = proxyThreads;
  auto proxy = proxy::Proxy::start(popts);
  if (!proxy.ok()) return fatal("proxy: " + proxy.error().message);

  // The routing mesh: the proxy, with socklb in front when asked for.
  netd::ProxyMesh proxyMesh(**proxy);
  std::unique_ptr<netd::KernelMesh> kernelMesh;
  if (kernelLb != "off") {
    auto lb = socklb::SocketLb::open(socklb::Options{kernelLbCgroup, "/run/skiff/cgroup/unified"});
    if (lb.ok()) {
      log::info("netd", "kernel socket load balancing: clients in cgroup ", (*lb)->cgroup(),
                " on this node reach replicas directly");
      kernelMesh = std::make_unique<netd::KernelMesh>(proxyMesh, std::move(*lb));
    } else if (kernelLb == "on") {
      return fatal("--kernel-lb on: " + lb.error().message);
    } else {
      log::warn("netd", "--kernel-lb auto: every client goes through the proxy: ", lb.error().message);
    }
  }
  netd::Mesh* mesh = kernelMesh ? static_cast<netd::Mesh*>(kernelMesh.get()) : &proxyMesh;

  runtime::ImageStore images(dataRoot);

  uv_loop_t loop;
  uv_loop_init(&loop);

  netd::OrchestratorDeps deps;
  deps.loop = &loop;
  deps.store = store->get();
  deps.images = &images;
  deps.launcher = launcher.get();
  deps.overlay = &overlayNet;
  deps.proxy = proxy->get();
  deps.mesh = mesh;
  deps.dataRoot = dataRoot;
  deps.hostname = nodeHostname.empty() ? hostName() : nodeHostname;
  deps.heartbeatPeriod = std::chrono::milliseconds(static_cast<int64_t>(heartbeatSeconds * 1000));
  deps.heartbeatTimeout = 4 * deps.heartbeatPeriod;

  auto metrics = netd::Metrics::start(metricsAddr, mesh);
  if (!metrics.ok()) return fatal(metrics.error().message);

  // The cluster port: served only while this node is a manager.
  std::unique_ptr<netd::HttpServer> clusterServer;
  netd::Api* apiPtr = nullptr;
  deps.clusterListen = [&](const std::string& addr) -> Status {
    clusterServer = std::make_unique<netd::HttpServer>(&loop, [&](const netd::HttpRequest& r) {
      netd::HttpResponse response = apiPtr->handleCluster(r);
      (*metrics)->countApiRequest(r.method, netd::apiRoute(r.path), response.status);
      return response;
    });
    auto st = clusterServer->listenTcp(listenAddr.empty() ? addr : listenAddr);
    if (!st.ok()) {
      clusterServer.reset();
      return st;
    }
    log::info("netd", "cluster port ", listenAddr.empty() ? addr : listenAddr);
    return okStatus();
  };
  deps.clusterClose = [&] {
    if (clusterServer) clusterServer->close();
  };
  deps.cgroupVersion = cgroupVersion;
  deps.onReconcile = [m = metrics->get()](std::chrono::nanoseconds d) { m->observeReconcile(d); };
  auto orchestrator = std::make_unique<netd::Orchestrator>(deps);

  // The metrics snapshots, on the loop thread: the service counts, and the
  // kernel counters of each network's VXLAN and bridge devices (two short
  // RTM_GETLINK per network on the overlay's netlink socket). A network that
  // is gone from the list takes its series with it.
  // Also once a second: the kernel's backend lists take in the proxy's
  // ejections and the node's new addresses.
  std::function<void()> refreshMetrics = [&] {
    if (kernelMesh) kernelMesh->refresh();
    (*metrics)->publish(orchestrator->serviceCounts());
    (*metrics)->publishPeers(orchestrator->peerCounts());
    auto networks = orchestrator->listNetworks();
    if (const auto* list = std::get_if<nlohmann::json>(&networks)) (*metrics)->refreshOverlay(overlayNet, *list);
  };

  netd::Api api(*orchestrator, images, &loop, registry::EndpointPolicy{dataRoot + "/certs.d", insecureRegistries});
  apiPtr = &api;
  // Every API call may change what runs: refresh the metrics snapshot after
  // each, besides the once-a-second refresh that catches exits and restarts.
  netd::HttpServer server(&loop, [&](const netd::HttpRequest& r, netd::HttpResponder reply) {
    api.handleAsync(r, [&, method = r.method, route = netd::apiRoute(r.path),
                        reply = std::move(reply)](netd::HttpResponse response) {
      (*metrics)->countApiRequest(method, route, response.status);
      guarded("metrics refresh", refreshMetrics);
      reply(std::move(response));
    });
  });
  if (auto st = server.listen(socketPath); !st.ok()) return fatal(st.error().message);

  auto restored = orchestrator->restore();
  if (!restored.ok()) log::error("netd", "restore: ", restored.error().message);

  // The metrics snapshots, refreshed once a second.
  uv_timer_t metricsTimer;
  uv_timer_init(&loop, &metricsTimer);
  metricsTimer.data = &refreshMetrics;
  uv_timer_start(
      &metricsTimer, [](uv_timer_t* t) { guarded("metrics refresh", *static_cast<std::function<void()>*>(t->data)); },
      0, 1000);

  // SIGTERM/SIGINT: stop replicas gracefully, remove what this node made,
  // then leave the loop. A second signal skips the wait.
  struct SignalCtx {
    netd::Orchestrator* orch;
    netd::HttpServer* server;
    netd::Api* api;
    uv_timer_t* metricsTimer;
    uv_signal_t term, intr;
    bool stopping = false;
  } sctx{orchestrator.get(), &server, &api, &metricsTimer, {}, {}};
  auto onSignal = [](uv_signal_t* s, int signum) {
    auto* c = static_cast<SignalCtx*>(s->data);
    if (c->stopping) {
      log::warn("netd", "second signal ", signum, ": exiting now");
      std::_Exit(1);
    }
    c->stopping = true;
    log::info("netd", "signal ", signum, ": stopping replicas and shutting down");
    // If the graceful stop fails, a second signal still exits.
    guarded("graceful shutdown", [c] {
      c->server->close();
      c->api->cancelImageJobs();  // the one that runs finishes; the loop waits for it
      c->orch->shutdown([c] {
        uv_timer_stop(c->metricsTimer);
        uv_close(reinterpret_cast<uv_handle_t*>(c->metricsTimer), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&c->term), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&c->intr), nullptr);
      });
    });
  };
  uv_signal_init(&loop, &sctx.term);
  uv_signal_init(&loop, &sctx.intr);
  sctx.term.data = sctx.intr.data = &sctx;
  uv_signal_start(&sctx.term, onSignal, SIGTERM);
  uv_signal_start(&sctx.intr, onSignal, SIGINT);

  log::info("netd", "listening on ", socketPath, " (data root ", dataRoot, ", cgroup ", cgroupVersion, ", metrics ",
            metricsAddr.empty() ? "off" : metricsAddr, ")");
  uv_run(&loop, UV_RUN_DEFAULT);

  orchestrator.reset();
  clusterServer.reset();
  uv_run(&loop, UV_RUN_DEFAULT);  // let close callbacks of the orchestrator's handles run
  if (uv_loop_close(&loop) != 0) log::warn("netd", "loop closed with handles still open");
  // Stopped before what they read: the metrics endpoint's thread reads the
  // mesh, the proxy's threads take turns from the kernel LB's mapped counters.
  metrics->reset();
  proxy->reset();
  kernelMesh.reset();
  log::info("netd", "stopped");
  return 0;
}
