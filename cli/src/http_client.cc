#include "skiff/cli/http_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "skiff/common/fd.h"

namespace skiff::cli {

namespace {

// A blocking read waits at most this long: `image build` of a large context
// is the slowest call and is well below it; a wedged daemon must not hang
// the CLI forever.
constexpr int kReadTimeoutSeconds = 600;
// Responses are JSON documents; anything bigger is a broken peer.
constexpr size_t kMaxResponseBytes = 256u << 20;

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

Result<std::string> dechunk(std::string_view data) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return Error::msg("malformed chunked body: missing chunk size line");
    std::string_view sizeText = data.substr(pos, eol - pos);
    sizeText = sizeText.substr(0, sizeText.find(';'));  // chunk extensions
    sizeText = trim(sizeText);
    if (sizeText.empty()) return Error::msg("malformed chunked body: empty chunk size");
    size_t size = 0;
    for (char c : sizeText) {
      int digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else
        return Error::msg("malformed chunked body: bad chunk size \"" + std::string(sizeText) + "\"");
      if (size > (kMaxResponseBytes >> 4)) return Error::msg("malformed chunked body: chunk too large");
      size = size * 16 + static_cast<size_t>(digit);
    }
    pos = eol + 2;
    if (size == 0) return out;  // trailers, if any, are ignored
    if (pos + size + 2 > data.size() || data.substr(pos + size, 2) != "\r\n") {
      return Error::msg("malformed chunked body: truncated chunk");
    }
    out.append(data.substr(pos, size));
    pos += size + 2;
  }
}

}  // namespace

Result<std::string> parseHost(std::string_view host) {
  constexpr std::string_view kUnix = "unix://";
  std::string_view path = host;
  if (host.substr(0, kUnix.size()) == kUnix) {
    path = host.substr(kUnix.size());
  } else if (host.find("://") != std::string_view::npos) {
    return Error::msg("unsupported host \"" + std::string(host) +
                      "\": skiff talks to netd on this machine only, use unix:///path/to/netd.sock");
  }
  if (path.empty() || path.front() != '/') {
    return Error::msg("invalid host \"" + std::string(host) + "\": expected unix:///absolute/path");
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error::msg("invalid host \"" + std::string(host) + "\": socket path too long");
  }
  return std::string(path);
}

std::string buildHttpRequest(std::string_view method, std::string_view target, std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  out += "Host: skiff\r\n";
  out += "User-Agent: skiff-cli/0.1.0\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    out += "Content-Type: application/json\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  out.append(body);
  return out;
}

Result<HttpResponse> parseHttpResponse(std::string_view raw) {
  const size_t headerEnd = raw.find("\r\n\r\n");
  if (headerEnd == std::string_view::npos) {
    return Error::msg(raw.empty() ? "empty response from daemon" : "malformed response from daemon: no end of headers");
  }
  std::string_view head = raw.substr(0, headerEnd);
  std::string_view rest = raw.substr(headerEnd + 4);

  HttpResponse response;
  const size_t lineEnd = head.find("\r\n");
  std::string_view statusLine = head.substr(0, lineEnd);
  // "HTTP/1.1 200 OK"
  if (statusLine.substr(0, 5) != "HTTP/") return Error::msg("malformed response from daemon: bad status line");
  const size_t sp1 = statusLine.find(' ');
  if (sp1 == std::string_view::npos || statusLine.size() < sp1 + 4) {
    return Error::msg("malformed response from daemon: bad status line");
  }
  std::string_view code = statusLine.substr(sp1 + 1, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error::msg("malformed response from daemon: bad status code");
  }
  response.status = std::stoi(std::string(code));
  if (statusLine.size() > sp1 + 5) response.reason = std::string(statusLine.substr(sp1 + 5));

  if (lineEnd != std::string_view::npos) {
    std::string_view lines = head.substr(lineEnd + 2);
    while (!lines.empty()) {
      const size_t eol = lines.find("\r\n");
      std::string_view line = lines.substr(0, eol);
      lines = eol == std::string_view::npos ? std::string_view() : lines.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) return Error::msg("malformed response from daemon: bad header line");
      response.headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
    }
  }

  auto te = response.headers.find("transfer-encoding");
  if (te != response.headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    auto body = dechunk(rest);
    if (!body) return body.error();
    response.body = std::move(body.value());
    return response;
  }
  auto cl = response.headers.find("content-length");
  if (cl != response.headers.end()) {
    size_t length = 0;
    for (char c : cl->second) {
      if (c < '0' || c > '9') return Error::msg("malformed response from daemon: bad Content-Length");
      length = length * 10 + static_cast<size_t>(c - '0');
      if (length > kMaxResponseBytes) return Error::msg("response from daemon too large");
    }
    if (rest.size() < length) return Error::msg("truncated response from daemon");
    rest = rest.substr(0, length);
  }
  response.body = std::string(rest);
  return response;
}

std::string escapePath(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || std::strchr("-._~:@/", c) != nullptr) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                         std::string_view body) const {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::fromErrno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socketPath_.size() >= sizeof(addr.sun_path)) return Error::msg("connect " + socketPath_ + ": path too long");
  std::memcpy(addr.sun_path, socketPath_.data(), socketPath_.size());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Error::fromErrno("connect " + socketPath_);
  }
  timeval tv{};
  tv.tv_sec = kReadTimeoutSeconds;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

  const std::string request = buildHttpRequest(method, target, body);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("send request to " + socketPath_);
    }
    sent += static_cast<size_t>(n);
  }

  std::string raw;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Error::msg("timed out waiting for the daemon's answer");
      return Error::fromErrno("read response from " + socketPath_);
    }
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > kMaxResponseBytes) return Error::msg("response from daemon too large");
  }
  return parseHttpResponse(raw);
}

}  // namespace skiff::cli
