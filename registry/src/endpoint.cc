// Which scheme and CA a registry gets (docker's rules), and the connection
// settled by a ping.

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>

#include "skiff/registry/registry.h"

namespace skiff::registry {
namespace {

// "host" of "host:port", "[::1]:5000" -> "::1".
std::string hostOf(const std::string& registry) {
  if (!registry.empty() && registry.front() == '[') {
    auto close = registry.find(']');
    return close == std::string::npos ? registry : registry.substr(1, close - 1);
  }
  auto colon = registry.find(':');
  return colon == std::string::npos ? registry : registry.substr(0, colon);
}

}  // namespace

bool allowsPlainHttp(const std::string& registry, const EndpointPolicy& policy) {
  if (std::find(policy.insecure.begin(), policy.insecure.end(), registry) != policy.insecure.end()) return true;
  const std::string host = hostOf(registry);
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::string caFileFor(const std::string& registry, const EndpointPolicy& policy) {
  if (policy.certsDir.empty()) return "";
  // A registry name never holds "/" or "..": it cannot leave certsDir.
  if (registry.find('/') != std::string::npos || registry.find("..") != std::string::npos) return "";
  std::filesystem::path ca = std::filesystem::path(policy.certsDir) / registry / "ca.crt";
  std::error_code ec;
  return std::filesystem::is_regular_file(ca, ec) ? ca.string() : "";
}

Result<Connection> connect(const std::string& registry, const EndpointPolicy& policy,
                           std::optional<Credentials> credentials) {
  TransportOptions t;
  t.caFile = caFileFor(registry, policy);
  Connection c;
  c.transport = makeCurlTransport(t);
  ClientOptions o;
  o.credentials = std::move(credentials);
  o.scheme = "https";
  // Where plain HTTP may be tried: does HTTPS answer at all (any HTTP
  // status)? Only when it does not is the registry asked over plain HTTP.
  // (Elsewhere the ping below is the one exchange.)
  if (allowsPlainHttp(registry, policy)) {
    HttpRequest probe{"GET", "https://" + registry + "/v2/", {}, {}, false};
    auto answered = c.transport->send(probe);
    if (!answered.ok() && answered.error().code != kUntrustedCertificate) {
      HttpRequest plain{"GET", "http://" + registry + "/v2/", {}, {}, false};
      if (!c.transport->send(plain).ok()) return answered.error();  // neither: HTTPS's error names the cause
      o.scheme = "http";
    }
  }
  c.client = std::make_unique<Client>(*c.transport, registry, o);
  auto st = c.client->ping();
  if (!st.ok() && st.error().code == kUntrustedCertificate) {
    // A server that speaks TLS with a certificate not trusted here is not
    // asked again in plain text: the user needs its CA, and is told so.
    return Error::msg(st.error().message + " (trust its CA: put it in " +
                      (policy.certsDir.empty() ? std::string("certs.d") : policy.certsDir) + "/" + registry +
                      "/ca.crt)");
  }
  if (!st.ok()) return st.error();
  return c;
}

}  // namespace skiff::registry
