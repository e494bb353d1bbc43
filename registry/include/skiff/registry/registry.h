#pragma once
// A client of the OCI distribution API (registry v2) as Docker Registry 2.8
// serves it: what `skiff login`, `push` and `pull` speak.
//
//   Reference   "127.0.0.1:5000/alice/get-started:part2" split as docker does
//   Challenge   a WWW-Authenticate header: Basic, or Bearer realm/service/scope
//   Transport   one HTTP exchange (the seam: libcurl, or a fake in unit tests)
//   Client      /v2/ ping, blobs (HEAD, GET verified by digest, upload with
//               cross-repository mount), manifests (GET with the media types
//               skiff reads, an index resolved to linux/amd64; PUT)
//
// Authentication follows the registry's answer: a 401 with a Basic challenge
// is retried once with the user's credentials; a Bearer challenge sends them
// to the realm for a token of the asked scope (cached per scope), as docker
// does. Credentials travel only in Authorization headers, never in errors
// or logs. Errors name the registry and what it said: "127.0.0.1:5000:
// manifest unknown: manifest unknown" (the registry's code, then message),
// "unauthorized: authentication required", "blob sha256:... digest
// mismatch: got sha256:...".
//
// Threads: a Client is used from one thread at a time; calls block (netd
// runs them on its thread pool, the CLI on its only thread).

#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::registry {

// docker's media types, and OCI's.
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";

// An image reference: [registry/]repository[:tag][@digest]. The registry is
// the first component when it has a '.' or ':' or is "localhost"; without one
// it is docker.io and a one-component repository gets "library/" (docker's
// rule). Tag "latest" when neither tag nor digest is given.
struct Reference {
  std::string registry;     // "127.0.0.1:5000", "docker.io"
  std::string repository;   // "alice/get-started"
  std::string tag;          // "part2" ("" when only a digest is given)
  std::string digest;       // "sha256:<64 hex>" or ""
  std::string str() const;  // registry/repository[:tag][@digest]
};
// Errors name the reference and the rule: `invalid reference "A/B:": empty tag`.
[[nodiscard]] Result<Reference> parseReference(std::string_view text);

// "sha256:" + hex of sha256(bytes).
std::string sha256Digest(std::string_view bytes);
// True for "sha256:<64 lower-case hex>".
bool validDigest(std::string_view digest);

// WWW-Authenticate, RFC 7235: a scheme and its parameters (quoted or not).
struct Challenge {
  std::string scheme;                         // lower-cased: "basic", "bearer"
  std::map<std::string, std::string> params;  // lower-cased keys: realm, service, scope
};
// The first challenge of the header; none when it is not one.
std::optional<Challenge> parseChallenge(std::string_view header);

struct HttpRequest {
  std::string method;  // GET HEAD POST PUT
  std::string url;     // absolute
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool followRedirects = true;  // blob GETs may be redirected to storage
};
struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names; the last of repeated ones
  std::string body;
  std::string effectiveUrl;  // after redirects
};

// Error::code of a Transport error when the server spoke TLS but its
// certificate was not trusted (no fallback to plain HTTP helps then).
inline constexpr int kUntrustedCertificate = EKEYREJECTED;

class Transport {
 public:
  virtual ~Transport() = default;
  // One exchange; an Error only when no HTTP answer came (refused, timed
  // out, TLS failed), naming the URL's host and the cause.
  [[nodiscard]] virtual Result<HttpResponse> send(const HttpRequest& request) = 0;
};

struct TransportOptions {
  // A CA bundle for HTTPS (docker's certs.d/HOST/ca.crt); "" = the system's.
  std::string caFile;
  // A registry that does not answer is named well within 10 s, also when
  // HTTPS and then plain HTTP are tried (loopback, --insecure-registry): two
  // attempts. 4 s still lets a SYN be sent again twice on a lossy link.
  std::chrono::milliseconds connectTimeout{4000};
  // The whole exchange, bodies included (layers are large).
  std::chrono::milliseconds totalTimeout{600000};
};
std::unique_ptr<Transport> makeCurlTransport(TransportOptions options);

// A transport and a client for `registry` under `policy`, its scheme settled
// by a ping: HTTPS, or HTTP where the policy allows it and HTTPS did not
// answer. The ping's error when neither did (HTTPS's, which names the cause).
struct Connection {
  std::unique_ptr<Transport> transport;
  std::unique_ptr<class Client> client;
};

struct Credentials {
  std::string username, password;
};

struct Manifest {
  std::string mediaType;
  std::string bytes;   // exactly as served: its digest is the manifest's
  std::string digest;  // sha256 of bytes
};

struct ClientOptions {
  std::string scheme = "https";  // "http" for a plain registry (insecure-registry, loopback)
  std::optional<Credentials> credentials;
  std::string userAgent = "skiff";
};

// How a registry is reached, as docker decides it: HTTPS, trusting
// <certsDir>/<host>/ca.crt when that file exists (docker's certs.d layout);
// plain HTTP only for a registry on loopback (127.0.0.0/8, localhost, ::1)
// or one listed in `insecure` ("host[:port]"), and only after HTTPS failed,
// as docker falls back for its insecure registries.
struct EndpointPolicy {
  std::string certsDir;
  std::vector<std::string> insecure;
};
bool allowsPlainHttp(const std::string& registry, const EndpointPolicy& policy);
std::string caFileFor(const std::string& registry, const EndpointPolicy& policy);  // "" when none

class Client {
 public:
  // registry: "host[:port]" as in a Reference.
  Client(Transport& transport, std::string registry, ClientOptions options);

  // GET /v2/: reachable, and the credentials (if any) accepted.
  [[nodiscard]] Status ping();

  const std::string& scheme() const { return options_.scheme; }

  // HEAD: whether the repository has the blob.
  [[nodiscard]] Result<bool> hasBlob(const std::string& repository, const std::string& digest);
  // GET, verified: a body whose sha256 is not `digest` is an error, and
  // nothing is returned.
  [[nodiscard]] Result<std::string> getBlob(const std::string& repository, const std::string& digest);
  // Uploads unless the repository has it (HEAD first); with mountFrom, asks
  // the registry to mount it from that repository first (no bytes cross
  // when it can). True when bytes were sent.
  [[nodiscard]] Result<bool> pushBlob(const std::string& repository, const std::string& digest, std::string_view bytes,
                                      const std::string& mountFrom = "");

  // GET by tag or digest. An index or manifest list is resolved to its
  // linux/amd64 entry (fetched by digest); by digest the bytes are verified.
  [[nodiscard]] Result<Manifest> getManifest(const std::string& repository, const std::string& reference);
  // PUT under a tag (or digest); returns the digest the registry names.
  [[nodiscard]] Result<std::string> putManifest(const std::string& repository, const std::string& reference,
                                                const std::string& mediaType, const std::string& bytes);

 private:
  // Sends with the cached authorization for `scope`; on 401 answers the
  // challenge once and sends again.
  Result<HttpResponse> exchange(HttpRequest request, const std::string& scope);
  Status authorize(const Challenge& challenge, const std::string& scope);
  Error failure(const HttpResponse& r, const std::string& what) const;
  std::string url(const std::string& path) const;

  Transport& transport_;
  std::string registry_;
  ClientOptions options_;
  std::map<std::string, std::string> authorization_;  // scope -> "Bearer <token>"
  std::string basic_;                                 // "Basic ..." once a Basic challenge was answered
};

[[nodiscard]] Result<Connection> connect(const std::string& registry, const EndpointPolicy& policy,
                                         std::optional<Credentials> credentials);

}  // namespace skiff::registry
