#pragma once
// The CLI's side of the netd API (netd/API.md): HTTP/1.1 + JSON over a Unix
// socket, one blocking request per connection (`Connection: close`, read to
// EOF). Building the request and parsing the response are pure functions so
// they are tested byte for byte; HttpClient only adds the socket. Used from
// the CLI's single thread.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "skiff/common/result.h"

namespace skiff::cli {

// The default daemon address, and the environment variable overriding it.
inline constexpr std::string_view kDefaultHost = "unix:///run/skiff/netd.sock";
inline constexpr std::string_view kHostEnv = "SKIFF_HOST";

// `-H unix:///path` (or a bare absolute path) -> the socket path. Anything
// else (tcp://, ssh://, relative paths) is an error naming the value.
[[nodiscard]] Result<std::string> parseHost(std::string_view host);

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
};

// "POST /v1/stacks/x HTTP/1.1\r\nHost: skiff\r\nContent-Type: application/json\r\n
// Content-Length: N\r\nConnection: close\r\n\r\n<body>"; Content-Type and
// Content-Length are always sent for POST/PUT, also with an empty body.
std::string buildHttpRequest(std::string_view method, std::string_view target, std::string_view body);

// Parses a whole response read to EOF: status line, headers, body honouring
// Content-Length and Transfer-Encoding: chunked.
[[nodiscard]] Result<HttpResponse> parseHttpResponse(std::string_view raw);

// Percent-encodes one path segment argument (an image ref, a name), keeping
// the characters docker's client leaves as they are (letters, digits,
// "-._~:@/").
std::string escapePath(std::string_view text);

class HttpClient {
 public:
  explicit HttpClient(std::string socketPath) : socketPath_(std::move(socketPath)) {}

  // When the daemon cannot be reached the error carries connect's errno
  // (ENOENT, ECONNREFUSED, EACCES...) and isConnectError() is true for it, so
  // the CLI prints docker's "Cannot connect to the ... daemon" line.
  [[nodiscard]] Result<HttpResponse> request(std::string_view method, std::string_view target,
                                             std::string_view body = {}) const;

  static bool isConnectError(const Error& error) { return error.message.rfind("connect ", 0) == 0; }

 private:
  std::string socketPath_;
};

}  // namespace skiff::cli
