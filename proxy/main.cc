// skiff-proxy: the routing-mesh balancer as a standalone binary.
//   skiff-proxy --listen 127.0.0.1:4000 --backend 127.0.0.1:8081 --backend ...
//               [--threads N] [--udp] [--proxy-protocol v1|v2] [--idle-timeout 30s]
//               [--connect-timeout 2s] [--no-splice] [--udp-max-flows 16384]
//               [--kernel-lb off|auto|on] [--kernel-lb-cgroup DIR]
// With --kernel-lb, clients in this network namespace (and in the cgroup)
// are connected straight to a backend by socklb's BPF programs; everyone
// else still goes through the proxy, which shares their rotation.
// Runs until SIGINT or SIGTERM, then closes every connection and exits 0.

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "skiff/common/log.h"
#include "skiff/proxy/proxy.h"
#include "skiff/socklb/socklb.h"

namespace {

// "host:port" or "[v6]:port".
bool splitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  *host = text.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  if (host->empty()) *host = "0.0.0.0";
  char* end = nullptr;
  errno = 0;
  unsigned long p = std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (errno != 0 || *end != '\0' || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

// "30s", "500ms", "2m", or a bare number of seconds.
bool parseDuration(const std::string& text, std::chrono::milliseconds* out) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v < 0) return false;
  std::string unit(end);
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "ms") {
    ms = v;
  } else if (unit == "m") {
    ms = v * 60000;
  } else if (unit == "h") {
    ms = v * 3600000;
  } else {
    return false;
  }
  *out = std::chrono::milliseconds(static_cast<int64_t>(ms));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skiff-proxy: a round-robin L4 (TCP/UDP) load balancer"};
  std::string listen;
  std::vector<std::string> backends;
  unsigned threads = 0;
  bool udp = false;
  bool noSplice = false;
  std::string proxyProtocol = "none";
  std::string idleTimeout = "0";
  std::string connectTimeout = "2s";
  std::string logLevel = "info";
  size_t maxUdpFlows = skiff::proxy::ListenerConfig{}.maxUdpFlows;
  std::string kernelLb = "off";
  std::string kernelLbCgroup;
  app.add_option("--listen", listen, "address to listen on, HOST:PORT")->required();
  app.add_option("--backend", backends, "a backend HOST:PORT (repeat for each)")->required();
  app.add_option("--threads", threads, "loop threads (default: number of cores)");
  app.add_flag("--udp", udp, "balance UDP flows instead of TCP connections");
  app.add_flag("--no-splice", noSplice, "copy bulk transfers through user space instead of splice()");
  app.add_option("--proxy-protocol", proxyProtocol, "send a PROXY protocol header to backends")
      ->check(CLI::IsMember({"none", "v1", "v2"}));
  app.add_option("--idle-timeout", idleTimeout, "close connections idle this long, e.g. 30s (0 = never)");
  app.add_option("--connect-timeout", connectTimeout, "backend connect timeout, e.g. 2s");
  app.add_option("--udp-max-flows", maxUdpFlows,
                 "with --udp: most flows (client addresses) open at once; datagrams of new clients beyond "
                 "it are dropped and counted")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--kernel-lb", kernelLb,
                 "connect clients on this node straight to a backend with BPF socket load balancing: off, "
                 "auto (when the kernel and privileges allow it, else say why and proxy), on (or fail)")
      ->check(CLI::IsMember({"off", "auto", "on"}))
      ->capture_default_str();
  app.add_option(
      "--kernel-lb-cgroup", kernelLbCgroup,
      "with --kernel-lb: serve the processes of this cgroup v2 directory, absolute or relative to the cgroup2 "
      "root (default: the root)");
  app.add_option("--log-level", logLevel, "debug, info, warn or error");
  CLI11_PARSE(app, argc, argv);

  skiff::log::Level level;
  if (!skiff::log::parseLevel(logLevel, &level)) {
    std::fprintf(stderr, "skiff-proxy: invalid --log-level %s\n", logLevel.c_str());
    return 2;
  }
  skiff::log::setLevel(level);

  skiff::proxy::ListenerConfig config;
  config.udp = udp;
  config.splice = !noSplice;
  config.maxUdpFlows = maxUdpFlows;
  config.name = listen + (udp ? "/udp" : "/tcp");
  if (!splitHostPort(listen, &config.bindHost, &config.port)) {
    std::fprintf(stderr, "skiff-proxy: --listen %s: expected HOST:PORT\n", listen.c_str());
    return 2;
  }
  if (!parseDuration(idleTimeout, &config.idleTimeout)) {
    std::fprintf(stderr, "skiff-proxy: --idle-timeout %s: expected a duration like 30s\n", idleTimeout.c_str());
    return 2;
  }
  if (!parseDuration(connectTimeout, &config.connectTimeout) || config.connectTimeout.count() == 0) {
    std::fprintf(stderr, "skiff-proxy: --connect-timeout %s: expected a duration like 2s\n", connectTimeout.c_str());
    return 2;
  }
  config.proxyProtocol = proxyProtocol == "v1" ? 1 : proxyProtocol == "v2" ? 2 : 0;
  std::vector<skiff::proxy::Backend> list;
  for (const auto& b : backends) {
    skiff::proxy::Backend backend;
    if (!splitHostPort(b, &backend.host, &backend.port)) {
      std::fprintf(stderr, "skiff-proxy: --backend %s: expected HOST:PORT\n", b.c_str());
      return 2;
    }
    backend.id = b;
    list.push_back(backend);
  }

  // Block the stop signals before any loop thread exists, so only sigwait()
  // below receives them.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

  (void)skiff::proxy::raiseFdLimit();
  auto proxy = skiff::proxy::Proxy::start(skiff::proxy::Options{threads});
  if (!proxy) {
    std::fprintf(stderr, "skiff-proxy: %s\n", proxy.error().message.c_str());
    return 1;
  }
  // The kernel path first: the proxy's rotation then starts on its counter.
  std::unique_ptr<skiff::socklb::SocketLb> socketLb;
  if (kernelLb != "off") {
    auto lb = skiff::socklb::SocketLb::open(skiff::socklb::Options{kernelLbCgroup});
    skiff::Status st = lb.ok() ? skiff::okStatus() : skiff::Status(lb.error());
    if (lb.ok()) {
      skiff::socklb::Service service;
      service.protocol = udp ? skiff::socklb::Protocol::kUdp : skiff::socklb::Protocol::kTcp;
      service.frontends = skiff::socklb::frontendsOf(config.bindHost, config.port, skiff::socklb::localIpv4Addresses);
      // A backend in this namespace gets its socket checked before each
      // pick (it is passed over once it stops listening); others are not.
      auto local = skiff::socklb::localIpv4Addresses();
      for (const auto& b : list) {
        bool here = b.host.starts_with("127.") || std::find(local.begin(), local.end(), b.host) != local.end();
        service.backends.push_back({b.host, b.port, here ? getpid() : 0});
      }
      st = config.proxyProtocol != 0
               ? skiff::Status(skiff::Error::msg("--proxy-protocol: a connection the kernel makes carries no PROXY "
                                                 "header, so every client must go through the proxy"))
               : (*lb)->setService(config.name, service);
      if (st.ok()) {
        socketLb = std::move(*lb);
        config.sharedTurns = socketLb->turns(config.name);
        skiff::log::info("proxy", "kernel socket load balancing serves clients in this namespace (cgroup ",
                         socketLb->cgroup(), ")");
      }
    }
    if (!st.ok() && kernelLb == "on") {
      std::fprintf(stderr, "skiff-proxy: --kernel-lb on: %s\n", st.error().message.c_str());
      return 1;
    }
    if (!st.ok()) skiff::log::warn("proxy", "--kernel-lb auto: every client is proxied: ", st.error().message);
  }
  // The backends are in place before the first connection is accepted.
  config.backends = list;
  auto status = (*proxy)->addListener(config);
  if (!status) {
    std::fprintf(stderr, "skiff-proxy: %s\n", status.error().message.c_str());
    return 1;
  }

  int sig = 0;
  sigwait(&stopSignals, &sig);
  skiff::log::info("proxy", "signal ", sig, ": shutting down");
  proxy->reset();
  socketLb.reset();
  return 0;
}
