#include "skiff/netd/http_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

namespace skiff::netd {
namespace {

// Sends one raw request from a thread while the loop serves it; the thread
// wakes the loop through a uv_async when it has read the whole answer, and
// the async callback closes the server so uv_run returns.
std::string roundTrip(uv_loop_t* loop, HttpServer* server, const std::string& path,
                      const std::string& request) {
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
    std::string resp =
        roundTrip(&loop, &server, path,
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

}  // namespace
}  // namespace skiff::netd
