// The real Transport: one libcurl easy handle per exchange.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "skiff/registry/registry.h"

namespace skiff::registry {
namespace {

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Exchange {
  HttpResponse response;
  const std::string* body = nullptr;
  size_t sent = 0;
};

size_t onBody(char* data, size_t size, size_t n, void* user) {
  static_cast<Exchange*>(user)->response.body.append(data, size * n);
  return size * n;
}

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string_view line(data, size * n);
  // A new status line (a redirect followed, a 100 Continue): headers restart.
  if (line.rfind("HTTP/", 0) == 0) {
    ex->response.headers.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  ex->response.headers[name] = std::string(value);
  return size * n;
}

size_t onRead(char* buffer, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t left = ex->body->size() - ex->sent;
  size_t chunk = std::min(left, size * n);
  std::copy_n(ex->body->data() + ex->sent, chunk, buffer);
  ex->sent += chunk;
  return chunk;
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(TransportOptions o) : options_(std::move(o)) { globalInit(); }

  Result<HttpResponse> send(const HttpRequest& req) override {
    std::unique_ptr<CURL, EasyDeleter> curl(curl_easy_init());
    if (!curl) return Error::msg("libcurl: cannot make a handle");
    CURL* c = curl.get();
    Exchange ex;
    ex.body = &req.body;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connectTimeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.totalTimeout.count()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
    if (req.followRedirects) {
      curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    }
    if (!options_.caFile.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.caFile.c_str());
    if (req.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT") {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, onRead);
      curl_easy_setopt(c, CURLOPT_READDATA, &ex);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    curl_slist* raw = nullptr;
    for (const auto& [k, v] : req.headers) {
      std::string line = k;
      line.append(": ").append(v);
      raw = curl_slist_append(raw, line.c_str());
    }
    raw = curl_slist_append(raw, "Expect:");  // no 100-continue round trip on uploads
    std::unique_ptr<curl_slist, ListDeleter> headers(raw);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
      char* host = nullptr;
      std::string where = req.url;
      CURLU* u = curl_url();
      if (u != nullptr && curl_url_set(u, CURLUPART_URL, req.url.c_str(), 0) == CURLUE_OK &&
          curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        char* port = nullptr;
        where = host;
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) where.append(":").append(port);
        curl_free(port);
        curl_free(host);
      }
      curl_url_cleanup(u);
      std::string m = where;
      m.append(": ").append(errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc));
      const bool untrusted = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                             rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
      return Error::msg(m, untrusted ? kUntrustedCertificate : 0);
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    ex.response.status = static_cast<int>(status);
    char* effective = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective != nullptr)
      ex.response.effectiveUrl = effective;
    return std::move(ex.response);
  }

 private:
  TransportOptions options_;
};

}  // namespace

std::unique_ptr<Transport> makeCurlTransport(TransportOptions options) {
  return std::make_unique<CurlTransport>(std::move(options));
}

}  // namespace skiff::registry
