// skiff-proxy, the binary: each flag as a user would check it, with the
// binary run as a subprocess inside the test's own network namespace (see
// netns_main.cc) against real loopback backends; bad flags give a clear error
// and a non-zero exit. Every process is stopped by its pid (SIGTERM, then
// SIGKILL when it lingers) and reaped, also when a test fails; it dies with
// the test process too (PDEATHSIG).

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "netns_testing.h"
#include "skiff/common/fd.h"
#include "test_servers.h"

#ifndef SKIFF_PROXY_BINARY
#error "SKIFF_PROXY_BINARY (the path of skiff-proxy) must be defined by the build"
#endif

namespace skiff::proxy {
namespace {

using namespace std::chrono_literals;
using testing::connectTo;
using testing::Eof;
using testing::Line;
using testing::readAll;
using testing::readLine;
using testing::ServerMode;
using testing::TestServer;

// One skiff-proxy process. Its stdout and stderr go to a memfd, which never
// fills up (a pipe nobody drains would block the proxy's logging).
class ProxyProcess {
 public:
  explicit ProxyProcess(const std::vector<std::string>& args) {
    out_ = UniqueFd(::memfd_create("skiff-proxy-output", MFD_CLOEXEC));
    if (!out_.valid()) return;
    std::vector<std::string> argv{SKIFF_PROXY_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const int out = out_.get();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls here: the test process has threads.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
  }
  ~ProxyProcess() {
    if (pid_ > 0 && status_ < 0) (void)stop(2000);
  }
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  bool running() { return reap(false); }

  // Waits up to timeoutMs for the process to exit by itself. Returns its exit
  // code (128 + the signal that ended it), or -1 when it is still running.
  int wait(int timeoutMs) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (reap(false) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    return status_;
  }
  // SIGTERM, up to timeoutMs for it to exit, else SIGKILL. Returns the exit
  // code seen after the SIGTERM (-1 when it had to be killed).
  int stop(int timeoutMs) {
    if (pid_ <= 0 || status_ >= 0) return status_;
    ::kill(pid_, SIGTERM);
    int code = wait(timeoutMs);
    if (code < 0) {
      ::kill(pid_, SIGKILL);
      reap(true);
      return -1;
    }
    return code;
  }
  // Everything it printed so far (stdout and stderr, interleaved).
  std::string output() const {
    std::string s;
    char buf[4096];
    off_t off = 0;
    for (;;) {
      ssize_t r = ::pread(out_.get(), buf, sizeof buf, off);
      if (r <= 0) break;
      s.append(buf, static_cast<size_t>(r));
      off += r;
    }
    return s;
  }
  // Polls (bounded) until pred() holds; false when the process exited first
  // or the time ran out.
  template <typename Pred>
  bool waitFor(Pred pred, int timeoutMs = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (!pred()) {
      if (!running() || std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }
  // The pipes among its open fds (splice() moves bytes through pipes).
  int pipeCount() const {
    int n = 0;
    std::string dir = "/proc/" + std::to_string(pid_) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return -1;
    while (dirent* e = ::readdir(d)) {
      char target[256];
      ssize_t len = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
      if (len > 0 && std::string(target, static_cast<size_t>(len)).rfind("pipe:", 0) == 0) ++n;
    }
    ::closedir(d);
    return n;
  }

 private:
  // True while the process runs; records its exit code once it has ended.
  bool reap(bool block) {
    if (pid_ <= 0 || status_ >= 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
    if (r == 0) return true;
    if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0) status_ = 255;  // not our child any more: nothing left to wait for
    return false;
  }

  UniqueFd out_;
  pid_t pid_ = -1;
  int status_ = -1;
};

std::string loopbackAddr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Starts skiff-proxy on a free port with the given flags and waits until it
// listens (read from /proc/net, so no connection takes a turn of the round
// robin). Returns the published port via *port.
void startProxy(std::unique_ptr<ProxyProcess>* proc, uint16_t* port, std::vector<std::string> flags, bool udp = false) {
  *port = testing::deadPort();  // free: bound once, then released
  std::vector<std::string> args{"--listen", loopbackAddr(*port)};
  args.insert(args.end(), flags.begin(), flags.end());
  *proc = std::make_unique<ProxyProcess>(args);
  ASSERT_TRUE((*proc)->started());
  const uint16_t p = *port;
  ASSERT_TRUE((*proc)->waitFor([&] { return udp ? testing::udpBound(p) : testing::tcpListening(p); }))
      << "skiff-proxy did not come up on " << p << "; it printed:\n"
      << (*proc)->output();
}

std::string greetingVia(uint16_t port) {
  int fd = connectTo(port);
  if (fd < 0) return "connect failed";
  testing::Read r = readLine(fd);
  ::close(fd);
  return r.ending == testing::Ending::kLine ? r.bytes : testing::describe(r);
}

TEST(ProxyBinary, APublishedPortAnswersRoundRobinAndSigtermStopsIt) {
  SKIFF_REQUIRE_ISOLATED();
  std::vector<std::unique_ptr<TestServer>> servers;
  std::vector<std::string> flags{"--threads", "2"};
  for (int i = 0; i < 3; ++i) {
    servers.push_back(std::make_unique<TestServer>(std::string("r") + static_cast<char>('0' + i), ServerMode{}));
    flags.push_back("--backend");
    flags.push_back(loopbackAddr(servers.back()->port()));
  }
  std::unique_ptr<ProxyProcess> proc;
  uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(startProxy(&proc, &port, flags));
  std::vector<std::string> got;
  for (int i = 0; i < 9; ++i) got.push_back(greetingVia(port));
  EXPECT_EQ(got, (std::vector<std::string>{"r0", "r1", "r2", "r0", "r1", "r2", "r0", "r1", "r2"}));
  EXPECT_NE(
      proc->output().find("listening on " + loopbackAddr(port) + "/tcp (" + loopbackAddr(port) + "/tcp, 2 loop(s))"),
      std::string::npos)
      << proc->output();
  EXPECT_EQ(proc->stop(5000), 0) << "SIGTERM must end it cleanly; it printed:\n" << proc->output();
  EXPECT_NE(proc->output().find("signal 15: shutting down"), std::string::npos) << proc->output();
  EXPECT_FALSE(testing::tcpListening(port)) << "the port is still open after the proxy exited";
  EXPECT_LT(connectTo(port, 1000), 0);
}

// --udp: each client address is a flow pinned to one backend, and new flows
// go round robin.
TEST(ProxyBinary, UdpBalancesFlows) {
  SKIFF_REQUIRE_ISOLATED();
  testing::UdpIdServer u0("u0"), u1("u1");
  std::unique_ptr<ProxyProcess> proc;
  uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(startProxy(
      &proc, &port, {"--udp", "--backend", loopbackAddr(u0.port()), "--backend", loopbackAddr(u1.port())}, true));
  std::vector<std::string> replies;
  for (int client = 0; client < 2; ++client) {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    for (int i = 0; i < 2; ++i) {
      // Appended in place: "c" + std::string trips GCC 12's false -Wrestrict at -O3.
      std::string msg = "c";
      msg += std::to_string(client);
      msg += 'q';
      msg += std::to_string(i);
      ASSERT_EQ(::sendto(fd.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
                static_cast<ssize_t>(msg.size()));
      pollfd p{fd.get(), POLLIN, 0};
      char buf[128];
      ssize_t r = ::poll(&p, 1, 3000) == 1 ? ::recv(fd.get(), buf, sizeof buf, 0) : -1;
      replies.push_back(r > 0 ? std::string(buf, static_cast<size_t>(r)) : "no reply");
    }
  }
  EXPECT_EQ(replies, (std::vector<std::string>{"u0:c0q0", "u0:c0q1", "u1:c1q0", "u1:c1q1"}));
  EXPECT_EQ(proc->stop(5000), 0) << proc->output();
}

// --udp-max-flows 1: a second client address is refused while the first
// flow is open, and the proxy says so in its log.
TEST(ProxyBinary, UdpMaxFlowsBoundsTheFlows) {
  SKIFF_REQUIRE_ISOLATED();
  testing::UdpIdServer u0("u0");
  std::unique_ptr<ProxyProcess> proc;
  uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(
      startProxy(&proc, &port, {"--udp", "--udp-max-flows", "1", "--backend", loopbackAddr(u0.port())}, true));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  UniqueFd first(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)),
      second(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::sendto(first.get(), "a", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
  pollfd p{first.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1) << "the first flow got no reply";
  char buf[64];
  ASSERT_EQ(::recv(first.get(), buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "u0:a");
  ASSERT_EQ(::sendto(second.get(), "b", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
  EXPECT_TRUE(proc->waitFor([&] { return proc->output().find("1 UDP flows open (the bound)") != std::string::npos; }))
      << proc->output();
  pollfd q{second.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&q, 1, 0), 0) << "the second client got a flow over the bound";
  EXPECT_EQ(proc->stop(5000), 0) << proc->output();
}

// --proxy-protocol v1 and --idle-timeout: the backend (an echo server) gets
// the header first, and an idle connection is closed.
TEST(ProxyBinary, ProxyProtocolAndIdleTimeout) {
  SKIFF_REQUIRE_ISOLATED();
  TestServer echo("e", ServerMode{.greet = false, .echo = true});
  std::unique_ptr<ProxyProcess> proc;
  uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(startProxy(
      &proc, &port, {"--proxy-protocol", "v1", "--idle-timeout", "300ms", "--backend", loopbackAddr(echo.port())}));
  int fd = connectTo(port);
  ASSERT_GE(fd, 0);
  sockaddr_in me{};
  socklen_t len = sizeof me;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
  ASSERT_TRUE(testing::writeAll(fd, "hello\n", 6));
  EXPECT_EQ(readLine(fd), Line("PROXY TCP4 127.0.0.1 127.0.0.1 " + std::to_string(ntohs(me.sin_port)) + " " +
                               std::to_string(port) + "\r"));
  EXPECT_EQ(readLine(fd), Line("hello"));
  EXPECT_EQ(readAll(fd, 5000), Eof("")) << "the idle connection was not closed";
  ::close(fd);
  EXPECT_EQ(proc->stop(5000), 0) << proc->output();
}

// --connect-timeout: a backend that never answers the SYN costs the client
// 300 ms, not the default 2 s, then the next backend answers.
TEST(ProxyBinary, ConnectTimeoutMovesToTheNextBackend) {
  SKIFF_REQUIRE_ISOLATED();
  testing::Blackhole hole;
  TestServer r1("r1", ServerMode{});
  std::unique_ptr<ProxyProcess> proc;
  uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(startProxy(&proc, &port,
                                     {"--connect-timeout", "300ms", "--log-level", "debug", "--backend",
                                      loopbackAddr(hole.port()), "--backend", loopbackAddr(r1.port())}));
  int fd = connectTo(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(readLine(fd, 1500), Line("r1")) << "within 1.5 s: the 300 ms timeout, not the default 2 s";
  ::close(fd);
  EXPECT_NE(proc->output().find("connect to " + loopbackAddr(hole.port()) + " failed; trying the next"),
            std::string::npos)
      << proc->output();
  EXPECT_EQ(proc->stop(5000), 0) << proc->output();
}

// splice() is on by default and --no-splice turns it off: a bulk download
// through the proxy leaves pooled pipes only when it was spliced. Either
// way every byte arrives.
TEST(ProxyBinary, NoSpliceCopiesInsteadOfSplicing) {
  SKIFF_REQUIRE_ISOLATED();
  constexpr uint64_t kBytes = 8ull << 20;
  TestServer blaster("b", ServerMode{.greet = false, .blastBytes = kBytes});
  for (bool noSplice : {false, true}) {
    SCOPED_TRACE(noSplice ? "--no-splice" : "default (splice)");
    std::unique_ptr<ProxyProcess> proc;
    uint16_t port = 0;
    std::vector<std::string> flags{"--threads", "1", "--backend", loopbackAddr(blaster.port())};
    if (noSplice) flags.push_back("--no-splice");
    ASSERT_NO_FATAL_FAILURE(startProxy(&proc, &port, flags));
    const int pipesBefore = proc->pipeCount();
    int fd = connectTo(port);
    ASSERT_GE(fd, 0);
    ::shutdown(fd, SHUT_WR);
    testing::Read got = readAll(fd, 20000);
    ::close(fd);
    ASSERT_EQ(got.ending, testing::Ending::kEof) << testing::describe(got);
    ASSERT_EQ(got.bytes.size(), kBytes);
    uint64_t mismatches = 0;
    for (uint64_t i = 0; i < kBytes; ++i) mismatches += got.bytes[i] != testing::patternByte(i);
    EXPECT_EQ(mismatches, 0u);
    const int pipesAfter = proc->pipeCount();
    if (noSplice) {
      EXPECT_EQ(pipesAfter, pipesBefore) << "--no-splice made pipes";
    } else {
      EXPECT_GT(pipesAfter, pipesBefore) << "no pipe: the download was not spliced";
    }
    EXPECT_EQ(proc->stop(5000), 0) << proc->output();
  }
}

// --log-level warn hides the info lines; debug shows the loop threads.
TEST(ProxyBinary, LogLevel) {
  SKIFF_REQUIRE_ISOLATED();
  TestServer r0("r0", ServerMode{});
  for (const char* level : {"warn", "debug"}) {
    SCOPED_TRACE(level);
    std::unique_ptr<ProxyProcess> proc;
    uint16_t port = 0;
    ASSERT_NO_FATAL_FAILURE(
        startProxy(&proc, &port, {"--threads", "3", "--log-level", level, "--backend", loopbackAddr(r0.port())}));
    EXPECT_EQ(greetingVia(port), "r0");
    EXPECT_EQ(proc->stop(5000), 0);
    std::string out = proc->output();
    bool debug = std::string(level) == "debug";
    EXPECT_EQ(out.find("listening on ") != std::string::npos, debug) << out;
    EXPECT_EQ(out.find("started 3 loop thread(s)") != std::string::npos, debug) << out;
  }
}

// A port already taken: exit 1 naming the owner.
TEST(ProxyBinary, APortInUseIsRefusedNamingItsOwner) {
  SKIFF_REQUIRE_ISOLATED();
  UniqueFd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  ProxyProcess proc({"--listen", loopbackAddr(port), "--backend", "127.0.0.1:9"});
  ASSERT_TRUE(proc.started());
  EXPECT_EQ(proc.wait(10000), 1) << proc.output();
  EXPECT_EQ(proc.output(), "skiff-proxy: port " + std::to_string(port) + "/tcp is already in use by pid " +
                               std::to_string(::getpid()) + " (proxy_binary_te)\n");
}

// Bad flags: a non-zero exit and a message naming the flag and what it wants.
struct BadFlags {
  std::string name;
  std::vector<std::string> args;
  int exitCode;
  std::string message;  // a line of the output
};
void PrintTo(const BadFlags& c, std::ostream* os) {
  *os << "skiff-proxy";
  for (const auto& a : c.args) *os << " " << a;
}

class ProxyBinaryBadFlags : public ::testing::TestWithParam<BadFlags> {};

TEST_P(ProxyBinaryBadFlags, ExitNonZeroWithAClearError) {
  SKIFF_REQUIRE_ISOLATED();
  const BadFlags& c = GetParam();
  ProxyProcess proc(c.args);
  ASSERT_TRUE(proc.started());
  int code = proc.wait(10000);
  std::string out = proc.output();
  EXPECT_EQ(code, c.exitCode) << out;
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find(c.message + "\n"), std::string::npos) << "expected the line \"" << c.message << "\" in:\n" << out;
}

const std::string kBackend = "127.0.0.1:9";

INSTANTIATE_TEST_SUITE_P(
    ProxyBinary, ProxyBinaryBadFlags,
    ::testing::Values(BadFlags{"NoFlags", {}, 106, "--listen is required"},
                      BadFlags{"NoBackend", {"--listen", "127.0.0.1:4000"}, 106, "--backend is required"},
                      BadFlags{"ListenWithoutPort",
                               {"--listen", "127.0.0.1", "--backend", kBackend},
                               2,
                               "skiff-proxy: --listen 127.0.0.1: expected HOST:PORT"},
                      BadFlags{"ListenPortOver65535",
                               {"--listen", "127.0.0.1:70000", "--backend", kBackend},
                               2,
                               "skiff-proxy: --listen 127.0.0.1:70000: expected HOST:PORT"},
                      BadFlags{"BackendWithoutPort",
                               {"--listen", "127.0.0.1:4000", "--backend", "web"},
                               2,
                               "skiff-proxy: --backend web: expected HOST:PORT"},
                      BadFlags{"IdleTimeoutUnit",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--idle-timeout", "5x"},
                               2,
                               "skiff-proxy: --idle-timeout 5x: expected a duration like 30s"},
                      BadFlags{"ZeroConnectTimeout",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--connect-timeout", "0"},
                               2,
                               "skiff-proxy: --connect-timeout 0: expected a duration like 2s"},
                      BadFlags{"LogLevel",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--log-level", "loud"},
                               2,
                               "skiff-proxy: invalid --log-level loud"},
                      BadFlags{"ProxyProtocolV3",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--proxy-protocol", "v3"},
                               105,
                               "--proxy-protocol: v3 not in {none,v1,v2}"},
                      BadFlags{"ZeroUdpMaxFlows",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--udp-max-flows", "0"},
                               105,
                               "--udp-max-flows: Value 0 not in range 1 to 1048576"},
                      BadFlags{"ThreadsNotANumber",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--threads", "many"},
                               104,
                               "Could not convert: --threads = many"},
                      BadFlags{"UnknownFlag",
                               {"--listen", "127.0.0.1:4000", "--backend", kBackend, "--bogus"},
                               109,
                               "The following argument was not expected: --bogus"}),
    [](const ::testing::TestParamInfo<BadFlags>& p) { return p.param.name; });

}  // namespace
}  // namespace skiff::proxy
