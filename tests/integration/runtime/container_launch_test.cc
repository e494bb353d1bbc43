// Real containers: what a user would check with docker — the process is PID 1
// with the container's hostname, limits are in the kernel, a bad command says
// why, SIGTERM stops it with its exit code, and cleanup leaves nothing behind.

#include <sys/syscall.h>

#include "container_fixture.h"

namespace skiff::runtime::testing {
namespace {

bool mountinfoMentions(const std::string& needle) {
  return readText("/proc/self/mountinfo").find(needle) != std::string::npos;
}

std::string limitFile(CgroupManager& m, const std::string& id, const std::string& file) {
  for (const auto& dir : m.groupDirs(id)) {
    if (std::filesystem::exists(dir + "/" + file)) return trim(readText(dir + "/" + file));
  }
  return "<no " + file + ">";
}

TEST_F(ContainerFixture, RunsAsPid1WithHostnameLimitsAndMounts) {
  auto spec = makeSpec({"helper", "wait", "42"});
  spec.workingDir = "/work";
  pid_t seenBeforeExec = 0;
  auto l = launch(spec, [&](pid_t pid) {
    seenBeforeExec = pid;
    // Like netd moving a veth: the child's netns is there and not ours.
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/net") !=
                   std::filesystem::read_symlink("/proc/self/ns/net")
               ? okStatus()
               : Status(Error::msg("child shares our netns"));
  });
  ASSERT_TRUE(l.ok()) << l.error().message;
  Launched& c = **l;
  EXPECT_EQ(seenBeforeExec, c.pid);

  std::string line = waitForLog(spec);
  const std::string hostname = spec.id.substr(0, 12);
  EXPECT_NE(line.find("pid=1 "), std::string::npos) << line;
  EXPECT_NE(line.find("hostname=" + hostname + " "), std::string::npos) << line;
  EXPECT_NE(line.find("etc_hostname=" + hostname + " "), std::string::npos) << line;
  EXPECT_NE(line.find("devnull=1 proc1=1 "), std::string::npos) << line;
  EXPECT_NE(line.find("data=from the host data_ro=1 "), std::string::npos) << line;
  EXPECT_NE(line.find("cwd=/work uid=0 env_foo=bar"), std::string::npos) << line;

  // The limits, as the kernel reports them.
  if (cgroups_->version() == CgroupVersion::kV1) {
    EXPECT_EQ(limitFile(*cgroups_, spec.id, "memory.limit_in_bytes"), "52428800");
    EXPECT_EQ(limitFile(*cgroups_, spec.id, "cpu.cfs_quota_us"), "10000");
    EXPECT_EQ(limitFile(*cgroups_, spec.id, "cpu.cfs_period_us"), "100000");
  } else {
    EXPECT_EQ(limitFile(*cgroups_, spec.id, "memory.max"), "52428800");
    EXPECT_EQ(limitFile(*cgroups_, spec.id, "cpu.max"), "10000 100000");
  }
  auto procs = cgroups_->processes(spec.id);
  ASSERT_TRUE(procs.ok());
  EXPECT_EQ(*procs, std::vector<pid_t>{c.pid});

  // Stop: SIGTERM, the pidfd becomes readable, reap gives the exit code.
  ASSERT_TRUE(launcher_->signal(c.pid, SIGTERM).ok());
  ASSERT_TRUE(waitReadable(c.pidfd.get(), 5000)) << "container did not exit on SIGTERM";
  auto code = launcher_->reap(c);
  ASSERT_TRUE(code.ok()) << code.error().message;
  EXPECT_EQ(*code, 42);
  const pid_t pid = std::exchange(c.pid, -1);

  ASSERT_TRUE(launcher_->cleanup(spec, false).ok());
  EXPECT_FALSE(mountinfoMentions(spec.id));
  for (const auto& dir : cgroups_->groupDirs(spec.id))
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  // The log outlives the container unless asked.
  EXPECT_TRUE(std::filesystem::exists(spec.logPath));
  EXPECT_FALSE(std::filesystem::exists(spec.stateDir + "/upper"));
}

TEST_F(ContainerFixture, SigkillIsReportedAs137) {
  auto spec = makeSpec({"/bin/helper", "wait", "0"});
  auto l = launch(spec);
  ASSERT_TRUE(l.ok()) << l.error().message;
  Launched& c = **l;
  waitForLog(spec);
  ASSERT_TRUE(launcher_->signal(c.pid, SIGKILL).ok());
  ASSERT_TRUE(waitReadable(c.pidfd.get(), 5000));
  auto code = launcher_->reap(c);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 137);
  c.pid = -1;
}

TEST_F(ContainerFixture, MissingCommandFailsWithDockersWordsAndUndoesEverything) {
  auto spec = makeSpec({"nosuchcmd"});
  auto l = launch(spec);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().message, "exec: \"nosuchcmd\": executable file not found in $PATH");
  for (const auto& dir : cgroups_->groupDirs(spec.id))
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  EXPECT_FALSE(std::filesystem::exists(spec.stateDir + "/upper"));
  // The shim was reaped: no child of ours is left.
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(ContainerFixture, FailingBeforeExecAbortsTheLaunch) {
  auto spec = makeSpec({"helper"});
  auto l = launch(spec, [](pid_t) { return Status(Error::msg("no veth for you")); });
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().message, "no veth for you");
  for (const auto& dir : cgroups_->groupDirs(spec.id))
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(ContainerFixture, UnknownUserFails) {
  auto spec = makeSpec({"helper"});
  spec.user = "nobody";
  auto l = launch(spec);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().message, "unable to find user nobody: no matching entries in passwd file");
}

TEST_F(ContainerFixture, NumericUserRunsAsThatUid) {
  auto spec = makeSpec({"helper"});
  spec.user = "1234:1234";
  auto l = launch(spec);
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::string line = waitForLog(spec);
  EXPECT_NE(line.find("uid=1234 "), std::string::npos) << line;
  ASSERT_TRUE(waitReadable((*l)->pidfd.get(), 5000));
  auto code = launcher_->reap(**l);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  (*l)->pid = -1;
}

}  // namespace
}  // namespace skiff::runtime::testing
