#pragma once
// HttpServer: a small HTTP/1.1 server on a libuv Unix-socket listener, for
// netd's API, or on a TCP port, for the cluster's manager-agent traffic.
// One request per connection (clients send Connection: close);
// the handler runs on the loop thread and returns the whole response, so the
// server needs no per-request state beyond the parser. Bodies are capped
// (kMaxBody) so a bad client cannot make the daemon grow without bound.
//
// Thread: everything on the loop the server was created with.

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "skiff/common/result.h"

namespace skiff::netd {

struct HttpRequest {
  std::string method;                        // "GET", "POST", "DELETE"
  std::string path;                          // "/v1/stacks/web" (no query)
  std::map<std::string, std::string> query;  // decoded ?a=b&c=d
  std::string body;
  std::string peer;  // the client's IPv4 address on a TCP listener ("" on the Unix socket)
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  static constexpr size_t kMaxBody = 64 << 20;

  HttpServer(uv_loop_t* loop, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the socket, chmod 0660, listens. A socket file left by a dead
  // daemon is replaced; one that still answers is an error (EADDRINUSE).
  Status listen(const std::string& socketPath);
  // Or: listens on TCP "IPv4:PORT" (the cluster port, 2377). One of the two
  // per server.
  Status listenTcp(const std::string& hostPort);
  // Stops accepting and closes open client connections; the loop finishes
  // the closes.
  void close();

 private:
  struct Conn;
  static void onConnection(uv_stream_t* server, int status);
  uv_loop_t* loop_;
  HttpHandler handler_;
  uv_stream_t* listener_ = nullptr;  // a uv_pipe_t or uv_tcp_t, freed in its close callback
  bool tcp_ = false;
  std::set<Conn*> conns_;      // open client connections, each freed in its close callback
  std::string path_;
};

// Splits "/a/b?x=1&y=%20" into path and decoded query.
void parseTarget(const std::string& target, std::string* path,
                 std::map<std::string, std::string>* query);

}  // namespace skiff::netd
