// Pure parts of the container launcher: /etc files and PATH lookup with
// docker's error text.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace skiff::runtime
