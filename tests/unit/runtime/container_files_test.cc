// Pure parts of the container launcher: /etc files and PATH lookup with
// docker's error text.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "container_internal.h"
#include "skiff/runtime/container.h"

namespace skiff::runtime {
namespace {

TEST(ContainerFiles, HostsHasLocalhostExtraHostsAndOwnName) {
  auto text = hostsFileText("0123456789ab", {{"10.0.1.5", "0123456789ab"}, {"10.0.1.6", "db"}});
  EXPECT_NE(text.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(text.find("10.0.1.5\t0123456789ab\n"), std::string::npos);
  EXPECT_NE(text.find("10.0.1.6\tdb\n"), std::string::npos);
  EXPECT_EQ(text.find("127.0.1.1"), std::string::npos);
  // Without an address of its own the hostname still resolves.
  EXPECT_NE(hostsFileText("abc", {}).find("127.0.1.1\tabc\n"), std::string::npos);
}

TEST(ContainerFiles, ResolvConfDropsLoopbackNameservers) {
  auto text = resolvConfText("nameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch lan\nnameserver ::1\n");
  EXPECT_EQ(text, "nameserver 10.255.255.53\nsearch lan\n");
}

class LookPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("skiff-lookpath-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root_ / "usr/bin");
    std::filesystem::create_directories(root_ / "opt/app");
    write("usr/bin/hello", 0755);
    write("opt/app/run", 0755);
    write("usr/bin/notexec", 0644);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, mode_t mode) {
    std::ofstream(root_ / rel) << "#!/bin/sh\n";
    ::chmod((root_ / rel).c_str(), mode);
  }
  std::filesystem::path root_;
};

TEST_F(LookPathTest, FindsInDefaultPath) {
  auto r = lookPath(root_.string(), "hello", {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "/usr/bin/hello");
}

TEST_F(LookPathTest, UsesPathFromEnv) {
  auto r = lookPath(root_.string(), "run", {"PATH=/opt/app:/usr/bin"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "/opt/app/run");
  EXPECT_FALSE(lookPath(root_.string(), "run", {}).ok());
}

TEST_F(LookPathTest, DockerErrorTexts) {
  auto missing = lookPath(root_.string(), "nosuchcmd", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "exec: \"nosuchcmd\": executable file not found in $PATH");
  auto notExec = lookPath(root_.string(), "notexec", {});
  ASSERT_FALSE(notExec.ok());
  auto absent = lookPath(root_.string(), "/bin/nope", {});
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().message, "exec: \"/bin/nope\": stat /bin/nope: no such file or directory");
  auto absolute = lookPath(root_.string(), "/usr/bin/hello", {});
  ASSERT_TRUE(absolute.ok());
  EXPECT_EQ(*absolute, "/usr/bin/hello");
}

TEST(FakeLauncher, ExitMakesPidfdReadableAndReapReturnsCode) {
  FakeContainerLauncher fake;
  ContainerSpec spec;
  spec.id = "abc";
  pid_t seen = 0;
  auto l = fake.launch(spec, [&](pid_t pid) {
    seen = pid;
    return okStatus();
  });
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(seen, l->pid);
  uint64_t v = 0;
  EXPECT_LT(::read(l->pidfd.get(), &v, sizeof v), 0);  // not exited yet (non-blocking)
  ASSERT_TRUE(fake.signal(l->pid, SIGTERM).ok());
  EXPECT_EQ(::read(l->pidfd.get(), &v, sizeof v), static_cast<ssize_t>(sizeof v));
  auto code = fake.reap(*l);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 143);
  fake.failNextLaunch = "exec: \"x\": executable file not found in $PATH";
  auto failed = fake.launch(spec, nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "exec: \"x\": executable file not found in $PATH");
  EXPECT_TRUE(fake.launch(spec, nullptr).ok());  // only the next launch fails
}

TEST(HealthcheckArgv, CmdCmdShellAndNone) {
  Healthcheck hc;
  hc.test = {"CMD", "/hello", "--check"};
  EXPECT_EQ(healthcheckArgv(hc), (std::vector<std::string>{"/hello", "--check"}));
  hc.test = {"CMD-SHELL", "curl -f http://localhost/ || exit 1"};
  EXPECT_EQ(healthcheckArgv(hc), (std::vector<std::string>{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}));
  // Docker joins what follows CMD-SHELL into one script.
  hc.test = {"CMD-SHELL", "test", "-f", "/ready"};
  EXPECT_EQ(healthcheckArgv(hc), (std::vector<std::string>{"/bin/sh", "-c", "test -f /ready"}));
  for (const auto& test : std::vector<std::vector<std::string>>{{"NONE"}, {}, {"CMD"}, {"CMD-SHELL"}, {"RUN", "x"}}) {
    hc.test = test;
    EXPECT_TRUE(healthcheckArgv(hc).empty()) << (test.empty() ? "" : test[0]);
  }
  hc.test = {"CMD", "/hello"};
  hc.disable = true;
  EXPECT_TRUE(healthcheckArgv(hc).empty());
}

TEST(ExecEnvironment, ContainersThenTheCommandsThenTheShimsDefaults) {
  EXPECT_EQ(detail::execEnvironment({"FOO=bar", "KEEP=1"}, {"FOO=override", "EXTRA=x"}, "abc", "/home/app"),
            (std::vector<std::string>{"FOO=override", "KEEP=1", "EXTRA=x",
                                      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                      "HOSTNAME=abc", "HOME=/home/app"}));
  EXPECT_EQ(detail::execEnvironment({"PATH=/app", "HOME=/srv"}, {"HOSTNAME=mine"}, "abc", "/"),
            (std::vector<std::string>{"PATH=/app", "HOME=/srv", "HOSTNAME=mine"}));
}

TEST(FakeLauncher, ExecRecordsCallsAndAnswersWhatTheTestScripted) {
  FakeContainerLauncher fake;
  ContainerSpec spec;
  spec.id = "abc";
  ExecSpec e;
  e.argv = {"/bin/sh", "-c", "curl -f localhost"};
  e.timeout = std::chrono::milliseconds(2000);
  auto r = fake.exec(spec, 1000, e);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exitCode, 0);  // healthy unless told otherwise
  EXPECT_FALSE(r->timedOut);
  fake.onExec = [](const ContainerSpec& s, const ExecSpec&) -> Result<ExecResult> {
    if (s.id == "gone") return Error::msg("container gone is not running");
    return ExecResult{1, false, "curl: (7) Failed to connect"};
  };
  r = fake.exec(spec, 1000, e);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (ExecResult{1, false, "curl: (7) Failed to connect"}));
  spec.id = "gone";
  r = fake.exec(spec, 1001, e);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "container gone is not running");
  const auto calls = fake.execCalls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].id, "abc");
  EXPECT_EQ(calls[0].pid, 1000);
  EXPECT_EQ(calls[0].exec, e);
  EXPECT_EQ(calls[2].id, "gone");
}

}  // namespace
}  // namespace skiff::runtime
