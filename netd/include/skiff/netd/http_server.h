#pragma once
// HttpServer: a small HTTP/1.1 server on a libuv Unix-socket listener, for
// netd's API, or on a TCP port, for the cluster's manager-agent traffic.
// One request per connection (clients send Connection: close);
// the handler runs on the loop thread and returns the whole response, or
// (AsyncHttpHandler) answers later through a responder, so the
// server needs no per-request state beyond the parser. Bodies are capped
// (kMaxBody) so a bad client cannot make the daemon grow without bound.
// Nor can idle or slow clients hold it: a request must arrive whole within
// requestTimeout of the accept (the answer then has as long to be written),
// and beyond maxConnections open ones a new client gets 503 and is closed.
// A request that cannot be served is answered, not dropped: malformed HTTP
// (http-parser's error, a request cut short by the client's EOF) gets 400, a
// body over maxBody 413, a request line and headers over http-parser's 80 kB
// 431, each with a JSON {"message"}; the connection then closes.
// On the Unix socket the peer's credentials (SO_PEERCRED) are checked too:
// root, netd's own user, or a member of the socket file's group, even if the
// file's mode was loosened. The TCP listener (the cluster port) does not
// check them: its clients prove themselves with the join token.
//
// Thread: everything on the loop the server was created with.

#include <uv.h>

#include <chrono>
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
// A handler that may answer later: it calls the responder once, on the loop
// thread, now or when work it started elsewhere is done (an image build on
// the thread pool). While it waits, the connection has no deadline; a
// responder called after the connection closed (the server was closed) does
// nothing.
using HttpResponder = std::function<void(HttpResponse)>;
using AsyncHttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;

struct HttpServerOptions {
  std::chrono::milliseconds requestTimeout{30000};
  size_t maxConnections = 256;
  size_t maxBody = 64 << 20;  // larger bodies are answered 413
};

class HttpServer {
 public:
  static constexpr size_t kMaxBody = HttpServerOptions{}.maxBody;

  HttpServer(uv_loop_t* loop, HttpHandler handler, HttpServerOptions options = {});
  HttpServer(uv_loop_t* loop, AsyncHttpHandler handler, HttpServerOptions options = {});
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
  // The TCP port listenTcp bound (useful with port 0); 0 when not listening on TCP.
  int tcpPort() const;

 private:
  struct Conn;
  static void onConnection(uv_stream_t* server, int status);
  // "" when the Unix-socket peer may talk to netd, else why not.
  std::string refusePeer(uv_stream_t* client) const;
  uv_loop_t* loop_;
  AsyncHttpHandler handler_;
  HttpServerOptions options_;
  gid_t socketGid_ = 0;              // the group of the Unix socket file
  uv_stream_t* listener_ = nullptr;  // a uv_pipe_t or uv_tcp_t, freed in its close callback
  bool tcp_ = false;
  std::set<Conn*> conns_;  // open client connections, each freed in its close callback
  std::string path_;
};

// Splits "/a/b?x=1&y=%20" into path and decoded query.
void parseTarget(const std::string& target, std::string* path, std::map<std::string, std::string>* query);

}  // namespace skiff::netd
