#include "skiff/netd/http_server.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/common/log.h"

namespace skiff::netd {
namespace {

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '%' && i + 2 < in.size() && hexValue(in[i + 1]) >= 0 && hexValue(in[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(in[i + 1]) * 16 + hexValue(in[i + 2]));
      i += 2;
    } else if (in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

void parseTarget(const std::string& target, std::string* path, std::map<std::string, std::string>* query) {
  auto q = target.find('?');
  *path = percentDecode(target.substr(0, q));
  if (q == std::string::npos) return;
  std::string rest = target.substr(q + 1);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t amp = rest.find('&', start);
    std::string part = rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    if (!part.empty()) {
      auto eq = part.find('=');
      if (eq == std::string::npos)
        (*query)[percentDecode(part)] = "";
      else
        (*query)[percentDecode(part.substr(0, eq))] = percentDecode(part.substr(eq + 1));
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
}

// One accepted connection. Freed in the close callback of its stream handle
// (a pipe on the API socket, a TCP socket on the cluster port).
//
// A request that cannot be served (malformed, too large, cut short) is
// answered, never just dropped: 400, 413 or 431 with a JSON message, then the
// write side is shut down and whatever the client still sends is read and
// dropped until it closes (at most kMaxLingerBytes, within the deadline), so
// the answer is not lost to the reset a close with unread data would send.
struct HttpServer::Conn {
  static constexpr size_t kMaxLingerBytes = 1 << 20;

  union {
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  };
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
  uv_timer_t deadline;  // requestTimeout, then as long again for the answer
  int handlesOpen = 0;  // the stream and the timer; freed when both are closed
  http_parser parser;
  HttpServer* server;
  size_t maxBody = kMaxBody;
  std::string url;
  HttpRequest request;
  bool started = false;   // some bytes of a request arrived
  bool complete = false;  // the whole request arrived
  int refusal = 0;        // 413 when the request is too large to read
  std::string malformed;  // what is wrong with a request http-parser lets through
  bool lingerAfterWrite = false;
  bool lingering = false;  // answered; reading and dropping until EOF
  size_t dropped = 0;
  std::string out;  // kept alive until the write completes
  bool answered = false;
  // False once the connection is closed: a late responder finds out here.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  uv_write_t write;
  uv_shutdown_t shutdown;

  static http_parser_settings settings() {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = [](http_parser* p, const char* at, size_t len) {
      static_cast<Conn*>(p->data)->url.append(at, len);
      return 0;
    };
    // http-parser lets two things through that RFC 9112 says to refuse: a
    // space between a header's name and its colon (a request smuggling
    // vector: 400, section 5.1), and a request line without a version
    // (HTTP/0.9, which has no headers to frame a body).
    s.on_header_field = [](http_parser* p, const char* at, size_t len) {
      auto* c = static_cast<Conn*>(p->data);
      if (std::memchr(at, ' ', len) != nullptr || std::memchr(at, '\t', len) != nullptr) {
        c->malformed = "white space in a header name";
        return -1;
      }
      return 0;
    };
    s.on_headers_complete = [](http_parser* p) {
      auto* c = static_cast<Conn*>(p->data);
      if (p->http_major != 1) {
        c->malformed = "HTTP version " + std::to_string(p->http_major) + "." + std::to_string(p->http_minor) +
                       " is not supported (HTTP/1.x only)";
        return -1;
      }
      // A declared length over the cap is refused before its body is sent.
      if ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > c->maxBody) {
        c->refusal = 413;
        return -1;
      }
      return 0;
    };
    s.on_body = [](http_parser* p, const char* at, size_t len) {
      auto* c = static_cast<Conn*>(p->data);
      if (c->request.body.size() + len > c->maxBody) {  // chunked bodies have no declared length
        c->refusal = 413;
        return 1;
      }
      c->request.body.append(at, len);
      return 0;
    };
    s.on_message_complete = [](http_parser* p) {
      static_cast<Conn*>(p->data)->complete = true;
      // One request per connection: whatever follows is not parsed.
      http_parser_pause(p, 1);
      return 0;
    };
    return s;
  }

  void closeSelf() {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(stream()))) return;
    auto closed = [](uv_handle_t* h) {
      auto* c = static_cast<Conn*>(h->data);
      *c->alive = false;
      if (--c->handlesOpen > 0) return;
      if (c->server != nullptr) c->server->conns_.erase(c);
      delete c;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(stream()), closed);
  }

  // Closes the connection when the time runs out (the client idled or was slow).
  void armDeadline(std::chrono::milliseconds after) {
    // A handler may have kept the loop busy: count from now, not from the
    // loop's last clock update.
    uv_update_time(deadline.loop);
    uv_timer_start(
        &deadline,
        [](uv_timer_t* t) {
          auto* c = static_cast<Conn*>(t->data);
          log::debug("api", "closing a client that did not finish in time");
          c->closeSelf();
        },
        static_cast<uint64_t>(after.count()), 0);
  }

  void respond(const HttpResponse& resp) {
    if (answered) return;
    answered = true;
    uv_read_stop(stream());
    if (server != nullptr) armDeadline(server->options_.requestTimeout);
    out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reasonPhrase(resp.status) +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(resp.body.size()) +
          "\r\nConnection: close\r\n\r\n" + resp.body;
    uv_buf_t buf = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    write.data = this;
    int rc = uv_write(&write, stream(), &buf, 1, [](uv_write_t* w, int status) {
      auto* c = static_cast<Conn*>(w->data);
      if (status == 0 && c->lingerAfterWrite) {
        c->linger();
      } else {
        c->closeSelf();
      }
    });
    if (rc != 0) closeSelf();
  }

  // Answers a request that cannot be served; the client gets to read it.
  void refuse(int status, const std::string& message) {
    log::debug("api", "refused a request: ", status, " ", message);
    lingerAfterWrite = true;
    respond(
        {status, nlohmann::json{{"message", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  }

  void linger() {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(stream()))) return;
    lingering = true;
    shutdown.data = this;
    if (uv_shutdown(&shutdown, stream(), [](uv_shutdown_t*, int) {}) != 0 ||
        uv_read_start(stream(), &HttpServer::Conn::allocate, &HttpServer::Conn::onRead) != 0) {
      closeSelf();
    }
  }

  static void allocate(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
    buf->base = new char[suggested];
    buf->len = suggested;
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(stream->data);
    if (nread > 0) {
      c->onData(buf->base, static_cast<size_t>(nread));
    } else if (nread < 0) {
      c->onEnd(nread);
    }
    delete[] buf->base;
  }

  // The client closed its side (or the connection failed).
  void onEnd(ssize_t why) {
    if (why == UV_EOF && started && !complete && !lingering) {
      // A request cut short: tell the client, who may still read.
      static const http_parser_settings kSettings = settings();
      http_parser_execute(&parser, &kSettings, nullptr, 0);
      if (!complete) {
        refuse(400, "bad HTTP request: the connection ended before the request was complete");
        return;
      }
      serve();
      return;
    }
    closeSelf();
  }

  void onData(const char* data, size_t len) {
    if (lingering) {
      dropped += len;
      if (dropped > kMaxLingerBytes) closeSelf();
      return;
    }
    started = true;
    static const http_parser_settings kSettings = settings();
    http_parser_execute(&parser, &kSettings, data, len);
    if (complete) {
      serve();
      return;
    }
    const auto err = static_cast<http_errno>(parser.http_errno);
    if (!malformed.empty()) {
      refuse(400, "bad HTTP request: " + malformed);
    } else if (refusal == 413) {
      refuse(413, "request body too large (at most " + std::to_string(maxBody) + " bytes)");
    } else if (err == HPE_HEADER_OVERFLOW) {
      refuse(431, "request header fields too large (at most " + std::to_string(HTTP_MAX_HEADER_SIZE) +
                      " bytes with the request line)");
    } else if (err != HPE_OK) {
      refuse(400, std::string("bad HTTP request: ") + http_errno_description(err));
    }
  }

  void serve() {
    request.method = http_method_str(static_cast<http_method>(parser.method));
    parseTarget(url, &request.path, &request.query);
    // Until the answer: nothing more is read, and no deadline runs (the
    // handler may wait for work elsewhere, as long as that takes).
    uv_read_stop(stream());
    uv_timer_stop(&deadline);
    HttpResponder reply = [this, alive = alive](HttpResponse resp) {
      if (*alive) respond(resp);
    };
    // The handler is ours and does not throw by contract; guard anyway so a
    // bug turns into a 500 for one request instead of ending the daemon.
    try {
      server->handler_(request, reply);
    } catch (const std::exception& e) {
      log::error("api", "handler for ", request.method, " ", request.path, " threw: ", e.what());
      // The text may quote the request's bytes: never let them make dump() throw.
      reply(
          {500, nlohmann::json{{"message", e.what()}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    }
  }
};

HttpServer::HttpServer(uv_loop_t* loop, HttpHandler handler, HttpServerOptions options)
    : HttpServer(
          loop, [h = std::move(handler)](const HttpRequest& r, const HttpResponder& reply) { reply(h(r)); }, options) {}

HttpServer::HttpServer(uv_loop_t* loop, AsyncHttpHandler handler, HttpServerOptions options)
    : loop_(loop), handler_(std::move(handler)), options_(options) {}

HttpServer::~HttpServer() { close(); }

Status HttpServer::listen(const std::string& socketPath) {
  // A socket file left by a previous netd that died: refuse if something
  // still answers on it, else remove it.
  struct stat st {};
  if (::lstat(socketPath.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error::msg(socketPath + " exists and is not a socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socketPath.size() >= sizeof addr.sun_path) return Error::msg(socketPath + ": path too long");
    std::memcpy(addr.sun_path, socketPath.c_str(), socketPath.size() + 1);
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return Error::msg("another daemon is serving on " + socketPath, EADDRINUSE);
    }
    ::unlink(socketPath.c_str());
  }
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop_, pipe, 0);
  pipe->data = this;
  listener_ = reinterpret_cast<uv_stream_t*>(pipe);
  int rc = uv_pipe_bind(pipe, socketPath.c_str());
  if (rc == 0) rc = uv_listen(listener_, 128, &HttpServer::onConnection);
  if (rc != 0) {
    close();
    return Error::msg("listen on " + socketPath + ": " + uv_strerror(rc), -rc);
  }
  ::chmod(socketPath.c_str(), 0660);
  struct stat sock {};
  socketGid_ = ::stat(socketPath.c_str(), &sock) == 0 ? sock.st_gid : 0;
  path_ = socketPath;
  return okStatus();
}

Status HttpServer::listenTcp(const std::string& hostPort) {
  auto colon = hostPort.rfind(':');
  sockaddr_in addr{};
  int port = -1;
  if (colon != std::string::npos) {
    try {
      size_t used = 0;
      port = std::stoi(hostPort.substr(colon + 1), &used);
      if (used != hostPort.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0 || port > 65535 || uv_ip4_addr(hostPort.substr(0, colon).c_str(), port, &addr) != 0) {
    return Error::msg("invalid listen address \"" + hostPort + "\" (want IPv4:PORT)", EINVAL);
  }
  auto* tcp = new uv_tcp_t;
  uv_tcp_init(loop_, tcp);
  tcp->data = this;
  listener_ = reinterpret_cast<uv_stream_t*>(tcp);
  tcp_ = true;
  int rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(listener_, 128, &HttpServer::onConnection);
  if (rc != 0) {
    close();
    return Error::msg("listen on " + hostPort + ": " + uv_strerror(rc), -rc);
  }
  return okStatus();
}

int HttpServer::tcpPort() const {
  if (!tcp_ || listener_ == nullptr) return 0;
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getsockname(reinterpret_cast<const uv_tcp_t*>(listener_), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return 0;
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

void HttpServer::close() {
  // Open client connections go too, or an idle client would keep the loop
  // (and so netd's shutdown) alive.
  for (Conn* c : conns_) {
    c->server = nullptr;
    c->closeSelf();
  }
  conns_.clear();
  if (listener_ != nullptr) {
    if (tcp_) {
      uv_close(reinterpret_cast<uv_handle_t*>(listener_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    } else {
      uv_close(reinterpret_cast<uv_handle_t*>(listener_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    }
    listener_ = nullptr;
  }
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
}

std::string HttpServer::refusePeer(uv_stream_t* client) const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(client), &fd) != 0) return "cannot read the peer's credentials";
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return std::string("cannot read the peer's credentials: ") + std::strerror(errno);
  if (cred.uid == 0 || cred.uid == ::geteuid() || cred.gid == socketGid_) return "";
  // Supplementary groups (SO_PEERGROUPS, Linux 4.13+).
  std::vector<gid_t> groups(64);
  for (int tries = 0; tries < 2; tries++) {
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      for (gid_t g : groups) {
        if (g == socketGid_) return "";
      }
      break;
    }
    if (errno != ERANGE) break;
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return "permission denied: uid " + std::to_string(cred.uid) + " is not root and not in group " +
         std::to_string(socketGid_) + " of " + path_;
}

void HttpServer::onConnection(uv_stream_t* server, int status) {
  if (status < 0) {
    log::warn("api", "accept: ", uv_strerror(status));
    return;
  }
  auto* self = static_cast<HttpServer*>(server->data);
  auto* conn = new Conn;
  conn->server = self;
  self->conns_.insert(conn);
  if (self->tcp_) {
    uv_tcp_init(self->loop_, &conn->tcp);
  } else {
    uv_pipe_init(self->loop_, &conn->pipe, 0);
  }
  conn->stream()->data = conn;
  uv_timer_init(self->loop_, &conn->deadline);
  conn->deadline.data = conn;
  conn->handlesOpen = 2;
  conn->maxBody = self->options_.maxBody;
  http_parser_init(&conn->parser, HTTP_REQUEST);
  conn->parser.data = conn;
  if (uv_accept(server, conn->stream()) != 0) {
    conn->closeSelf();
    return;
  }
  if (self->conns_.size() > self->options_.maxConnections) {
    log::warn("api", "more than ", self->options_.maxConnections, " open connections: refusing a new client");
    conn->respond({503, R"({"message":"too many connections; try again later"})"});
    return;
  }
  if (!self->tcp_) {
    std::string why = self->refusePeer(conn->stream());
    if (!why.empty()) {
      log::warn("api", "refused a client: ", why);
      conn->respond({403, nlohmann::json{{"message", why}}.dump()});
      return;
    }
  }
  conn->armDeadline(self->options_.requestTimeout);
  if (self->tcp_) {
    sockaddr_storage peer{};
    int len = sizeof peer;
    char ip[INET6_ADDRSTRLEN] = "";
    if (uv_tcp_getpeername(&conn->tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0 && peer.ss_family == AF_INET) {
      uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&peer), ip, sizeof ip);
    }
    conn->request.peer = ip;
  }
  uv_read_start(conn->stream(), &Conn::allocate, &Conn::onRead);
}

}  // namespace skiff::netd
