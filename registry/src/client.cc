// The registry client: the v2 API's exchanges and its two auth schemes.

#include <algorithm>
#include <nlohmann/json.hpp>

#include "skiff/common/base64.h"
#include "skiff/registry/registry.h"

namespace skiff::registry {
namespace {
using json = nlohmann::json;

std::string header(const HttpResponse& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// RFC 3986 unreserved characters stay, everything else is %XX.
std::string urlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string pullScope(const std::string& repo) {
  std::string s = "repository:";
  s.append(repo).append(":pull");
  return s;
}
std::string pushScope(const std::string& repo) {
  std::string s = "repository:";
  s.append(repo).append(":pull,push");
  return s;
}

// "Basic <base64 of user:password>" (RFC 7617).
std::string basicAuth(const Credentials& c) {
  std::string pair = c.username;
  pair.append(":").append(c.password);
  std::string value = "Basic ";
  value.append(base64Encode(pair));
  return value;
}

bool isIndex(std::string_view mediaType) { return mediaType == kOciIndex || mediaType == kDockerManifestList; }

}  // namespace

Client::Client(Transport& transport, std::string registry, ClientOptions options)
    : transport_(transport), registry_(std::move(registry)), options_(std::move(options)) {}

std::string Client::url(const std::string& path) const {
  std::string u = options_.scheme;
  u.append("://").append(registry_).append(path);
  return u;
}

Error Client::failure(const HttpResponse& r, const std::string& what) const {
  std::string m = registry_;
  m.append(": ").append(what).append(": ");
  // The registry's own words: {"errors": [{"code", "message", "detail"}]}.
  try {
    json j = json::parse(r.body);
    const auto& errs = j.at("errors");
    if (errs.is_array() && !errs.empty()) {
      std::string code = errs[0].value("code", "");
      for (auto& c : code) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::replace(code.begin(), code.end(), '_', ' ');
      m.append(code).append(": ").append(errs[0].value("message", ""));
      return Error::msg(m);
    }
  } catch (const std::exception&) {
  }
  if (r.status == 401) return Error::msg(m + "unauthorized: authentication required");
  if (r.status == 404) return Error::msg(m + "not found");
  m.append("HTTP ").append(std::to_string(r.status));
  return Error::msg(m);
}

Status Client::authorize(const Challenge& c, const std::string& scope) {
  if (c.scheme == "basic") {
    if (!options_.credentials) return Error::msg(registry_ + ": unauthorized: authentication required");
    basic_ = basicAuth(*options_.credentials);
    return okStatus();
  }
  if (c.scheme != "bearer") return Error::msg(registry_ + ": unsupported authentication scheme \"" + c.scheme + "\"");
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty())
    return Error::msg(registry_ + ": a Bearer challenge without a realm");
  // The token service: GET realm?service=...&scope=..., with the user's
  // credentials (Basic) when there are any; anonymous otherwise.
  HttpRequest req;
  req.method = "GET";
  req.url = realm->second;
  char sep = req.url.find('?') == std::string::npos ? '?' : '&';
  if (auto s = c.params.find("service"); s != c.params.end()) {
    req.url.push_back(sep);
    req.url.append("service=").append(urlEncode(s->second));
    sep = '&';
  }
  const std::string wanted = c.params.count("scope") ? c.params.at("scope") : scope;
  if (!wanted.empty()) {
    req.url.push_back(sep);
    req.url.append("scope=").append(urlEncode(wanted));
  }
  if (options_.credentials) req.headers.emplace_back("Authorization", basicAuth(*options_.credentials));
  req.headers.emplace_back("User-Agent", options_.userAgent);
  auto r = transport_.send(req);
  if (!r.ok()) return r.error();
  if (r->status == 401 || r->status == 403)
    return Error::msg(registry_ +
                      ": unauthorized: authentication required (the token service refused the credentials)");
  if (r->status != 200) return failure(*r, "token");
  try {
    json j = json::parse(r->body);
    std::string token = j.value("token", "");
    if (token.empty()) token = j.value("access_token", "");
    if (token.empty()) return Error::msg(registry_ + ": the token service answered without a token");
    std::string value = "Bearer ";
    value.append(token);
    authorization_[scope] = value;
    return okStatus();
  } catch (const std::exception&) {
    return Error::msg(registry_ + ": the token service answered with something that is not JSON");
  }
}

Result<HttpResponse> Client::exchange(HttpRequest request, const std::string& scope) {
  request.headers.emplace_back("User-Agent", options_.userAgent);
  for (int attempt = 0; attempt < 2; ++attempt) {
    HttpRequest sent = request;
    if (auto a = authorization_.find(scope); a != authorization_.end()) {
      sent.headers.emplace_back("Authorization", a->second);
    } else if (!basic_.empty()) {
      sent.headers.emplace_back("Authorization", basic_);  // Basic is the same for every scope
    }
    auto r = transport_.send(sent);
    if (!r.ok()) return r.error();
    if (r->status != 401 || attempt == 1) return r;
    auto challenge = parseChallenge(header(*r, "www-authenticate"));
    if (!challenge) return failure(*r, request.method + " " + request.url.substr(url("").size()));
    // Already answered with these credentials: they are wrong.
    if ((authorization_.count(scope) || !basic_.empty()) && challenge->scheme == "basic")
      return Error::msg(registry_ + ": unauthorized: authentication required");
    SKIFF_TRY(authorize(*challenge, scope));
  }
  return Error::msg(registry_ + ": unauthorized: authentication required");
}

Status Client::ping() {
  HttpRequest req{"GET", url("/v2/"), {}, {}, true};
  auto r = exchange(req, "");
  if (!r.ok()) return r.error();
  if (r->status == 401) return Error::msg(registry_ + ": unauthorized: authentication required");
  if (r->status != 200) return failure(*r, "GET /v2/");
  return okStatus();
}

Result<bool> Client::hasBlob(const std::string& repo, const std::string& digest) {
  if (!validDigest(digest)) return Error::msg("invalid digest \"" + digest + "\"");
  HttpRequest req{"HEAD", url("/v2/" + repo + "/blobs/" + digest), {}, {}, true};
  auto r = exchange(req, pullScope(repo));
  if (!r.ok()) return r.error();
  if (r->status == 200) return true;
  if (r->status == 404) return false;
  return failure(*r, "blob " + digest);
}

Result<std::string> Client::getBlob(const std::string& repo, const std::string& digest) {
  if (!validDigest(digest)) return Error::msg("invalid digest \"" + digest + "\"");
  HttpRequest req{"GET", url("/v2/" + repo + "/blobs/" + digest), {}, {}, true};
  auto r = exchange(req, pullScope(repo));
  if (!r.ok()) return r.error();
  if (r->status != 200) return failure(*r, "blob " + digest);
  std::string got = sha256Digest(r->body);
  if (got != digest) return Error::msg(registry_ + ": blob " + digest + " digest mismatch: got " + got);
  return std::move(r->body);
}

Result<bool> Client::pushBlob(const std::string& repo, const std::string& digest, std::string_view bytes,
                              const std::string& mountFrom) {
  if (sha256Digest(bytes) != digest) return Error::msg("blob " + digest + ": the bytes have another digest");
  const std::string scope = pushScope(repo);
  auto have = hasBlob(repo, digest);
  if (!have.ok()) return have.error();
  if (*have) return false;
  // Start an upload; with mount=, the registry may link the blob instead (201).
  std::string start = "/v2/" + repo + "/blobs/uploads/";
  if (!mountFrom.empty()) start.append("?mount=").append(digest).append("&from=").append(urlEncode(mountFrom));
  auto r = exchange(HttpRequest{"POST", url(start), {{"Content-Length", "0"}}, {}, false}, scope);
  if (!r.ok()) return r.error();
  if (r->status == 201 && !mountFrom.empty()) return false;  // mounted: no bytes crossed
  if (r->status != 202) return failure(*r, "upload of " + digest);
  std::string location = header(*r, "location");
  if (location.empty()) return Error::msg(registry_ + ": upload of " + digest + ": no Location in the answer");
  if (location.rfind("http", 0) != 0) location = url(location);  // relative to the registry
  // One monolithic PUT (the registry accepts the whole blob with the digest).
  location.push_back(location.find('?') == std::string::npos ? '?' : '&');
  location.append("digest=").append(urlEncode(digest));
  HttpRequest put{"PUT", location, {{"Content-Type", "application/octet-stream"}}, std::string(bytes), false};
  auto done = exchange(std::move(put), scope);
  if (!done.ok()) return done.error();
  if (done->status != 201) return failure(*done, "upload of " + digest);
  return true;
}

Result<Manifest> Client::getManifest(const std::string& repo, const std::string& reference) {
  std::string accept;
  for (auto t : {kOciIndex, kDockerManifestList, kOciManifest, kDockerManifest}) {
    if (!accept.empty()) accept.append(", ");
    accept.append(t);
  }
  HttpRequest req{"GET", url("/v2/" + repo + "/manifests/" + reference), {{"Accept", accept}}, {}, true};
  auto r = exchange(req, pullScope(repo));
  if (!r.ok()) return r.error();
  if (r->status != 200) return failure(*r, repo + ":" + reference);
  Manifest m;
  m.bytes = std::move(r->body);
  m.digest = sha256Digest(m.bytes);
  if (validDigest(reference) && m.digest != reference)
    return Error::msg(registry_ + ": manifest " + reference + " digest mismatch: got " + m.digest);
  m.mediaType = header(*r, "content-type");
  json j;
  try {
    j = json::parse(m.bytes);
  } catch (const std::exception&) {
    return Error::msg(registry_ + ": manifest " + repo + ":" + reference + " is not JSON");
  }
  if (j.contains("mediaType") && j["mediaType"].is_string()) m.mediaType = j["mediaType"].get<std::string>();
  if (!isIndex(m.mediaType)) return m;
  // An index: the linux/amd64 image.
  for (const auto& e : j.value("manifests", json::array())) {
    const json platform = e.value("platform", json::object());
    if (platform.value("os", "") == "linux" && platform.value("architecture", "") == "amd64") {
      std::string digest = e.value("digest", "");
      if (!validDigest(digest)) break;
      return getManifest(repo, digest);
    }
  }
  return Error::msg(registry_ + ": " + repo + ":" + reference + " has no linux/amd64 image");
}

Result<std::string> Client::putManifest(const std::string& repo, const std::string& reference,
                                        const std::string& mediaType, const std::string& bytes) {
  HttpRequest req{"PUT", url("/v2/" + repo + "/manifests/" + reference), {{"Content-Type", mediaType}}, bytes, false};
  auto r = exchange(std::move(req), pushScope(repo));
  if (!r.ok()) return r.error();
  if (r->status != 201) return failure(*r, repo + ":" + reference);
  std::string digest = header(*r, "docker-content-digest");
  return digest.empty() ? sha256Digest(bytes) : digest;
}

}  // namespace skiff::registry
