#include "skiff/netd/http_server.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace skiff::netd {
namespace {

// Sends one raw request from a thread while the loop serves it; the thread
// wakes the loop through a uv_async when it has read the whole answer, and
// the async callback closes the server so uv_run returns.
std::string roundTrip(uv_loop_t* loop, HttpServer* server, const std::string& path, const std::string& request) {
  struct Ctx {
    uv_async_t async;
    HttpServer* server;
  } ctx;
  ctx.server = server;
  uv_async_init(loop, &ctx.async, [](uv_async_t* a) {
    auto* c = static_cast<Ctx*>(a->data);
    c->server->close();
    uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
  });
  ctx.async.data = &ctx;
  std::string response;
  std::thread client([&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      (void)!::write(fd, request.data(), request.size());
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    uv_async_send(&ctx.async);
  });
  uv_run(loop, UV_RUN_DEFAULT);
  client.join();
  return response;
}

TEST(HttpServer, RoutesMethodPathQueryAndBody) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-" + std::to_string(::getpid()) + ".sock";
  HttpRequest seen;
  {
    HttpServer server(&loop, [&](const HttpRequest& r) {
      seen = r;
      return HttpResponse{201, R"({"ok":true})"};
    });
    ASSERT_TRUE(server.listen(path).ok());
    std::string body = R"({"replicas":3})";
    std::string resp = roundTrip(&loop, &server, path,
                                 "POST /v1/services/web%20x/scale?force=1&a=b HTTP/1.1\r\nHost: skiff\r\n"
                                 "Content-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(resp.rfind("HTTP/1.1 201 Created\r\n", 0), 0u) << resp;
    EXPECT_NE(resp.find("\r\n\r\n{\"ok\":true}"), std::string::npos);
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.path, "/v1/services/web x/scale");
    EXPECT_EQ(seen.query["force"], "1");
    EXPECT_EQ(seen.query["a"], "b");
    EXPECT_EQ(seen.body, body);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "socket file left behind";
}

TEST(HttpServer, MalformedRequestGets400) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-bad-" + std::to_string(::getpid()) + ".sock";
  {
    HttpServer server(&loop, [](const HttpRequest&) { return HttpResponse{200, "{}"}; });
    ASSERT_TRUE(server.listen(path).ok());
    std::string resp = roundTrip(&loop, &server, path, "NOT HTTP AT ALL\r\n\r\n");
    EXPECT_EQ(resp.rfind("HTTP/1.1 400", 0), 0u) << resp;
    EXPECT_NE(resp.find("bad HTTP request"), std::string::npos);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(ParseTarget, DecodesQuery) {
  std::string path;
  std::map<std::string, std::string> q;
  parseTarget("/v1/tasks?service=getstartedlab_web&stack=a%2Fb&flag", &path, &q);
  EXPECT_EQ(path, "/v1/tasks");
  EXPECT_EQ(q["service"], "getstartedlab_web");
  EXPECT_EQ(q["stack"], "a/b");
  EXPECT_TRUE(q.count("flag"));
}

}  // namespace
}  // namespace skiff::netd

namespace skiff::netd {
namespace {

TEST(HttpServer, RefusesASocketAnotherDaemonServes) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-twice-" + std::to_string(::getpid()) + ".sock";
  {
    HttpServer first(&loop, [](const HttpRequest&) { return HttpResponse{200, "{}"}; });
    ASSERT_TRUE(first.listen(path).ok());
    HttpServer second(&loop, [](const HttpRequest&) { return HttpResponse{200, "{}"}; });
    auto st = second.listen(path);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "another daemon is serving on " + path);
    EXPECT_EQ(::access(path.c_str(), F_OK), 0) << "the first daemon's socket must stay";
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(HttpServer, CloseAlsoClosesIdleClients) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-idle-" + std::to_string(::getpid()) + ".sock";
  HttpServer server(&loop, [](const HttpRequest&) { return HttpResponse{200, "{}"}; });
  ASSERT_TRUE(server.listen(path).ok());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // Let the server accept the idle client, then shut it down: uv_run must
  // return (no handle left) and the client must see EOF.
  uv_run(&loop, UV_RUN_NOWAIT);
  server.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  char c;
  EXPECT_EQ(::read(fd, &c, 1), 0);
  ::close(fd);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

// Issue 7.3: idle or slow clients, too many clients, and peers that are
// neither root nor in the socket's group.

int connectTo(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  // A test that would wait forever fails after 5 s instead.
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads until EOF (returns what came), the 5 s receive timeout ("TIMEOUT")
// or an error (what came and "ERROR <text>").
std::string readToEof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return out;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return "TIMEOUT";
    } else {
      return out + "ERROR " + std::strerror(errno);
    }
  }
}

// Runs the loop while work() runs on a thread; then closes the server.
void serveWhile(uv_loop_t* loop, HttpServer* server, const std::function<void()>& work) {
  struct Ctx {
    uv_async_t async;
    HttpServer* server;
  } ctx;
  ctx.server = server;
  uv_async_init(loop, &ctx.async, [](uv_async_t* a) {
    static_cast<Ctx*>(a->data)->server->close();
    uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
  });
  ctx.async.data = &ctx;
  std::thread t([&] {
    work();
    uv_async_send(&ctx.async);
  });
  uv_run(loop, UV_RUN_DEFAULT);
  t.join();
}

HttpResponse okHandler(const HttpRequest&) { return HttpResponse{200, "{}"}; }
const std::string kGet = "GET /v1/info HTTP/1.1\r\nConnection: close\r\n\r\n";
// A refused client may find the connection closed before it writes: no
// SIGPIPE, the answer is still there to read.
void sendRequest(int fd) { (void)!::send(fd, kGet.data(), kGet.size(), MSG_NOSIGNAL); }

TEST(HttpServer, AnIdleClientIsClosedAfterTheRequestTimeout) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-timeout-" + std::to_string(::getpid()) + ".sock";
  HttpServer server(&loop, okHandler, HttpServerOptions{std::chrono::milliseconds(100), 256});
  ASSERT_TRUE(server.listen(path).ok());
  std::string idle, slow;
  auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration took{};
  serveWhile(&loop, &server, [&] {
    int a = connectTo(path);  // sends nothing
    int b = connectTo(path);  // sends half a request
    (void)!::write(b, "GET /v1/info HTTP/1.1\r\n", 23);
    idle = readToEof(a);
    slow = readToEof(b);
    took = std::chrono::steady_clock::now() - start;
    ::close(a);
    ::close(b);
  });
  EXPECT_EQ(idle, "") << "closed without an answer";
  EXPECT_EQ(slow, "");
  EXPECT_LT(took, std::chrono::seconds(4));
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(HttpServer, BeyondTheConnectionCapANewClientGets503) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-cap-" + std::to_string(::getpid()) + ".sock";
  HttpServer server(&loop, okHandler, HttpServerOptions{std::chrono::seconds(30), 2});
  ASSERT_TRUE(server.listen(path).ok());
  int a = connectTo(path), b = connectTo(path);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  for (int i = 0; i < 5; i++) uv_run(&loop, UV_RUN_NOWAIT);  // both accepted, both idle
  std::string third, afterOneLeft;
  serveWhile(&loop, &server, [&] {
    int c = connectTo(path);
    sendRequest(c);
    third = readToEof(c);
    ::close(c);
    ::close(a);  // one slot frees up
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int d = connectTo(path);
    sendRequest(d);
    afterOneLeft = readToEof(d);
    ::close(d);
  });
  ::close(b);
  EXPECT_EQ(third.substr(0, 12), "HTTP/1.1 503") << third;
  EXPECT_NE(third.find("too many connections"), std::string::npos) << third;
  EXPECT_EQ(afterOneLeft.substr(0, 12), "HTTP/1.1 200") << afterOneLeft;
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

// A child process as uid 65534 asks the API; returns the status line it got
// ("" when it could not connect). The socket file is made 0666 as if an
// operator loosened it: the credentials check must still hold.
std::string statusAs(uv_loop_t* loop, HttpServer* server, const std::string& path, gid_t gid) {
  int pipeFds[2];
  if (::pipe(pipeFds) != 0) return "pipe failed";
  pid_t child = ::fork();
  if (child == 0) {
    ::close(pipeFds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(3);
    int fd = connectTo(path);
    std::string got;
    if (fd >= 0) {
      sendRequest(fd);
      got = readToEof(fd);
    }
    got = got.substr(0, got.find("\r\n"));
    (void)!::write(pipeFds[1], got.data(), got.size());
    ::_exit(0);
  }
  ::close(pipeFds[1]);
  std::string line;
  serveWhile(loop, server, [&] {
    char buf[256];
    ssize_t n;
    while ((n = ::read(pipeFds[0], buf, sizeof buf)) > 0) line.append(buf, static_cast<size_t>(n));
    int status = 0;
    ::waitpid(child, &status, 0);
  });
  ::close(pipeFds[0]);
  return line;
}

TEST(HttpServer, APeerThatIsNotRootAndNotInTheSocketsGroupIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-cred-" + std::to_string(::getpid()) + ".sock";
  struct stat st {};
  {
    HttpServer server(&loop, okHandler);
    ASSERT_TRUE(server.listen(path).ok());
    ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    ASSERT_NE(st.st_gid, 65534u) << "the test needs a socket group other than nogroup";
    EXPECT_EQ(statusAs(&loop, &server, path, 65534), "HTTP/1.1 403 Forbidden");
  }
  {
    // A member of the socket's group (here its primary group) may talk.
    HttpServer server(&loop, okHandler);
    ASSERT_TRUE(server.listen(path).ok());
    ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
    EXPECT_EQ(statusAs(&loop, &server, path, st.st_gid), "HTTP/1.1 200 OK");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(HttpServer, AHandlerErrorQuotingInvalidUtf8IsStillA500WithJson) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string path = "/tmp/skiff-http-test-utf8-" + std::to_string(::getpid()) + ".sock";
  HttpServer server(&loop, [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("bad name \xff"); });
  ASSERT_TRUE(server.listen(path).ok());
  std::string resp = roundTrip(&loop, &server, path, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(resp.substr(0, 12), "HTTP/1.1 500") << resp;
  std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
  EXPECT_EQ(nlohmann::json::parse(body)["message"], "bad name \xEF\xBF\xBD");
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace skiff::netd
