// An image build does not stop netd (issue 7, point 3): the API runs it on
// libuv's thread pool, and the loop answers other requests meanwhile. The
// build copies and hashes a 128 MiB context (most of a second here); a
// request sent while it runs must be answered before the build's own answer.
// The fixture is the orchestrator's (fake launcher, fake netlink, real
// stores, a real loop) with the HTTP server on a Unix socket, as netd runs it.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <thread>

#include "orchestrator_fixture.h"
#include "skiff/netd/api.h"
#include "skiff/netd/http_server.h"

namespace skiff::netd {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

class ApiAsyncTest : public testing::OrchestratorFixture {
 protected:
  // Opens a connection and sends one request; the answer is read later.
  int send(const std::string& method, const std::string& path, const std::string& body = "") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "connect " << socket_ << ": " << std::strerror(errno);
      ::close(fd);
      return -1;
    }
    std::string req = method + " " + path +
                      " HTTP/1.1\r\nHost: netd\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    EXPECT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    return fd;
  }
  // Reads the whole answer (the server closes after it); "" on a 60 s timeout.
  static std::string answer(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 60000) != 1) return "";
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }
  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  // netd as main() runs it: the API on a Unix socket, its loop on a thread.
  void serve() {
    api_ = std::make_unique<Api>(*orch_, *images_, &loop_);
    server_ = std::make_unique<HttpServer>(
        &loop_, [this](const HttpRequest& r, HttpResponder reply) { api_->handleAsync(r, std::move(reply)); });
    socket_ = (dir_ / "netd.sock").string();
    ASSERT_TRUE(server_->listen(socket_).ok());
    loopThread_ = std::thread([this] {
      while (!stop_) uv_run(&loop_, UV_RUN_ONCE);
    });
  }
  // Also when an assertion ended the test early: the fixture's teardown
  // needs the loop back.
  void TearDown() override {
    if (loopThread_.joinable()) {
      stop_ = true;
      ::close(send("GET", "/v1/info"));  // wakes the loop so that it sees stop_
      loopThread_.join();
    }
    if (server_) server_->close();
    uv_run(&loop_, UV_RUN_NOWAIT);
    server_.reset();
    api_.reset();
    OrchestratorFixture::TearDown();
  }

  std::string socket_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  std::thread loopThread_;
  std::atomic<bool> stop_{false};
};

TEST_F(ApiAsyncTest, TheLoopAnswersWhileAnImageBuilds) {
  fs::create_directories(dir_ / "big");
  {
    std::ofstream big(dir_ / "big" / "blob", std::ios::binary);
    std::string mib(1 << 20, 'x');
    for (int i = 0; i < 128; i++) big << mib;
  }
  std::ofstream(dir_ / "big" / "Dockerfile") << "FROM scratch\nCOPY blob /blob\nCMD [\"/blob\"]\n";

  ASSERT_NO_FATAL_FAILURE(serve());
  json body{{"context", (dir_ / "big").string()}, {"tag", "big:1"}};
  int build = send("POST", "/v1/images/build", body.dump());
  // The build has begun once its work dir exists under images/tmp.
  auto building = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ / "images" / "tmp", ec)) {
      if (e.path().filename().string().rfind("build-", 0) == 0) return true;
    }
    return false;
  };
  for (int i = 0; i < 10000 && !building() && !readable(build); i++) ::usleep(1000);
  ASSERT_TRUE(building()) << "the build did not start";
  std::string info = answer(send("GET", "/v1/info"));
  bool buildStillRunning = !readable(build);
  std::string built = answer(build);
  EXPECT_EQ(info.rfind("HTTP/1.1 200", 0), 0u) << info;
  EXPECT_TRUE(buildStillRunning) << "GET /v1/info was answered only after the build";
  ASSERT_EQ(built.rfind("HTTP/1.1 200", 0), 0u) << built.substr(0, 300);
  EXPECT_NE(built.find("Successfully tagged big:1"), std::string::npos);
  EXPECT_TRUE(images_->resolve("big:1").ok());
}

// A build that throws on its pool thread (a label that is not UTF-8 makes
// the config's JSON throw) is answered, and netd goes on.
TEST_F(ApiAsyncTest, ABuildThatThrowsIsAnsweredAndNetdGoesOn) {
  fs::create_directories(dir_ / "bad");
  std::ofstream(dir_ / "bad" / "hello") << "x";
  std::ofstream(dir_ / "bad" / "Dockerfile") << "FROM scratch\nLABEL a=\xff\xfe\nCOPY hello /hello\nCMD [\"/hello\"]\n";
  ASSERT_NO_FATAL_FAILURE(serve());
  json body{{"context", (dir_ / "bad").string()}, {"tag", "bad:1"}};
  std::string built = answer(send("POST", "/v1/images/build", body.dump()));
  std::string info = answer(send("GET", "/v1/info"));
  EXPECT_EQ(built.rfind("HTTP/1.1 400", 0), 0u) << built;
  EXPECT_NE(built.find("build failed: "), std::string::npos) << built;
  EXPECT_EQ(info.rfind("HTTP/1.1 200", 0), 0u) << info;
}

}  // namespace
}  // namespace skiff::netd
