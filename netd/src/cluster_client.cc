#include "skiff/netd/cluster_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "skiff/common/fd.h"

namespace skiff::netd {
namespace {

using Clock = std::chrono::steady_clock;

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until fd is ready for `events` or the deadline passes.
Status waitFor(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc > 0) return okStatus();
    if (rc == 0) return Error::msg(what + ": timed out", ETIMEDOUT);
    if (errno != EINTR) return Error::fromErrno(what);
  }
}

}  // namespace

Result<ClusterReply> clusterPost(const std::string& hostPort, const std::string& path, const nlohmann::json& body,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto colon = hostPort.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  int port = 0;
  if (colon != std::string::npos) port = std::atoi(hostPort.c_str() + colon + 1);
  if (colon == std::string::npos || port <= 0 || port > 65535 ||
      ::inet_pton(AF_INET, hostPort.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return Error::msg("invalid manager address \"" + hostPort + "\" (want IPv4:PORT)", EINVAL);
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::fromErrno("socket");
  const std::string where = "connect " + hostPort;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Error::fromErrno(where);
    SKIFF_TRY(waitFor(fd.get(), POLLOUT, deadline, where));
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Error::msg(where + ": " + std::strerror(err), err);
  }
  std::string payload = body.dump();
  std::string out = "POST " + path + " HTTP/1.1\r\nHost: " + hostPort +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(payload.size()) +
                    "\r\nConnection: close\r\n\r\n" + payload;
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      SKIFF_TRY(waitFor(fd.get(), POLLOUT, deadline, "send to " + hostPort));
    } else {
      return Error::fromErrno("send to " + hostPort);
    }
  }
  std::string in;
  static constexpr size_t kMaxAnswer = 64 << 20;
  for (;;) {
    char buf[16384];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      if (in.size() > kMaxAnswer) return Error::msg("answer from " + hostPort + " too large");
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      SKIFF_TRY(waitFor(fd.get(), POLLIN, deadline, "answer from " + hostPort));
    } else {
      return Error::fromErrno("read from " + hostPort);
    }
  }
  // Our server answers "HTTP/1.1 NNN Reason", Content-Length, then the body.
  auto headEnd = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.", 0) != 0 || in.size() < 12 || headEnd == std::string::npos)
    return Error::msg("bad answer from " + hostPort, EPROTO);
  ClusterReply reply;
  reply.status = std::atoi(in.c_str() + 9);
  std::string text = in.substr(headEnd + 4);
  reply.body = nlohmann::json::parse(text, nullptr, false);
  if (reply.body.is_discarded()) return Error::msg("bad JSON from " + hostPort, EPROTO);
  return reply;
}

namespace {

class PoolClient final : public ClusterClient {
 public:
  explicit PoolClient(uv_loop_t* loop) : loop_(loop) {}

  void post(std::string hostPort, std::string path, nlohmann::json body, std::chrono::milliseconds timeout,
            Done done) override {
    auto* w = new Work;
    w->req.data = w;
    w->hostPort = std::move(hostPort);
    w->path = std::move(path);
    w->body = std::move(body);
    w->timeout = timeout;
    w->done = std::move(done);
    int rc = uv_queue_work(
        loop_, &w->req,
        [](uv_work_t* r) {
          auto* self = static_cast<Work*>(r->data);
          try {
            self->result = clusterPost(self->hostPort, self->path, self->body, self->timeout);
          } catch (const std::exception& e) {
            self->result = Error::msg(std::string("cluster request: ") + e.what());
          }
        },
        [](uv_work_t* r, int status) {
          std::unique_ptr<Work> self(static_cast<Work*>(r->data));
          if (status == UV_ECANCELED) self->result = Error::msg("cluster request cancelled");
          try {
            self->done(std::move(self->result));
          } catch (const std::exception&) {
            // The callee logs its own failures; nothing may leave a loop callback.
          }
        });
    if (rc != 0) {
      std::unique_ptr<Work> self(w);
      self->done(Error::msg(std::string("queue cluster request: ") + uv_strerror(rc)));
    }
  }

  Result<ClusterReply> postNow(const std::string& hostPort, const std::string& path, const nlohmann::json& body,
                               std::chrono::milliseconds timeout) override {
    return clusterPost(hostPort, path, body, timeout);
  }

 private:
  struct Work {
    uv_work_t req;
    std::string hostPort, path;
    nlohmann::json body;
    std::chrono::milliseconds timeout{0};
    Done done;
    Result<ClusterReply> result = Error::msg("not run");
  };
  uv_loop_t* loop_;
};

}  // namespace

std::unique_ptr<ClusterClient> makeClusterClient(uv_loop_t* loop) { return std::make_unique<PoolClient>(loop); }

}  // namespace skiff::netd
