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
  for (const auto& dir : cgroups_->groupDirs(spec.id)) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
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
  for (const auto& dir : cgroups_->groupDirs(spec.id)) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
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
  for (const auto& dir : cgroups_->groupDirs(spec.id)) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
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

// What `docker run --rm busybox grep Cap /proc/self/status` shows, minus MKNOD.
constexpr uint64_t kDockerDefaultCaps = 0x00000000a80425fbULL;
constexpr uint64_t kKeptCaps = kDockerDefaultCaps & ~(1ULL << 27 /* CAP_MKNOD */);

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

TEST_F(ContainerFixture, RootInTheContainerHasOnlyDockersCapabilitiesWithoutMknod) {
  ASSERT_EQ(kKeptCaps, 0x00000000a00425fbULL);
  auto spec = makeSpec({"helper", "caps"});
  auto l = launch(spec);
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::string line = waitForLog(spec);
  ASSERT_TRUE(waitReadable((*l)->pidfd.get(), 5000));
  EXPECT_NE(line.find("capeff=" + hex16(kKeptCaps) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("capbnd=" + hex16(kKeptCaps) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("capprm=" + hex16(kKeptCaps) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("capinh=" + hex16(0) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("capamb=" + hex16(0) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("nnp=1 "), std::string::npos) << line;
  // /proc/sys is a read-only bind: not even root may open a knob for writing.
  EXPECT_TRUE(line.find("sys_write=EROFS ") != std::string::npos || line.find("sys_write=EACCES ") != std::string::npos)
      << line;
  // No CAP_SYS_ADMIN: mount(2) is refused.
  EXPECT_NE(line.find("mount=EPERM"), std::string::npos) << line;
  auto code = launcher_->reap(**l);
  ASSERT_TRUE(code.ok()) << code.error().message;
  EXPECT_EQ(*code, 0);
  (*l)->pid = -1;
}

TEST_F(ContainerFixture, NonRootUserHasNoCapabilitiesAndTheSameBoundingSet) {
  auto spec = makeSpec({"helper", "caps"});
  spec.user = "1234:1234";
  auto l = launch(spec);
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::string line = waitForLog(spec);
  ASSERT_TRUE(waitReadable((*l)->pidfd.get(), 5000));
  EXPECT_NE(line.find("capeff=" + hex16(0) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("capprm=" + hex16(0) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("capbnd=" + hex16(kKeptCaps) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("nnp=1 "), std::string::npos) << line;
  EXPECT_NE(line.find("mount=EPERM"), std::string::npos) << line;
  auto code = launcher_->reap(**l);
  ASSERT_TRUE(code.ok()) << code.error().message;
  EXPECT_EQ(*code, 0);
  (*l)->pid = -1;
}

TEST_F(ContainerFixture, HostStateUnderProcIsMaskedOrReadOnly) {
  auto spec = makeSpec({"helper", "wait", "0"});
  auto l = launch(spec);
  ASSERT_TRUE(l.ok()) << l.error().message;
  waitForLog(spec);
  // The container's mounts, seen from the host through its pid.
  const std::string mounts = readText("/proc/" + std::to_string((*l)->pid) + "/mountinfo");
  auto mountLine = [&](const std::string& point) {
    std::istringstream in(mounts);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(" " + point + " ") != std::string::npos) return line;
    }
    return std::string("<not mounted>");
  };
  // Same kernel inside and out: what the host's /proc lacks, the container's does too.
  ASSERT_TRUE(std::filesystem::exists("/proc/sys"));
  for (const char* path : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"}) {
    if (std::filesystem::exists(path)) {
      EXPECT_NE(mountLine(path).find(" ro,"), std::string::npos) << path << ": " << mountLine(path);
    }
  }
  int masked = 0;
  for (const char* path : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"}) {
    if (std::filesystem::exists(path)) {
      ++masked;
      EXPECT_NE(mountLine(path), "<not mounted>") << path << " is not masked";
    }
  }
  EXPECT_GT(masked, 0) << "this kernel has none of the masked files; the check above tested nothing";
  // A masked file reads as /dev/null: empty.
  const std::string root = "/proc/" + std::to_string((*l)->pid) + "/root";
  EXPECT_EQ(readText(root + "/proc/keys"), "");
  ASSERT_TRUE(launcher_->signal((*l)->pid, SIGTERM).ok());
  ASSERT_TRUE(waitReadable((*l)->pidfd.get(), 5000));
  auto code = launcher_->reap(**l);
  ASSERT_TRUE(code.ok());
  (*l)->pid = -1;
}

// An image's symlinks are the image's: /etc and /data pointing at absolute host
// paths, or climbing out with "..", resolve inside the rootfs (as they will
// once the container runs) and netd, root on the host, creates and mounts
// nothing outside it.
TEST_F(ContainerFixture, ImageSymlinksNeverReachTheHost) {
  const std::filesystem::path outside = base_ / "outside";
  std::filesystem::create_directories(outside);
  std::filesystem::create_directory_symlink(outside, base_ / "layer/etc");
  std::filesystem::create_directory_symlink(outside / "data", base_ / "layer/data");
  std::filesystem::create_directory_symlink("../../../../../../../../.." + outside.string(), base_ / "layer/up");
  auto spec = makeSpec({"helper", "wait", "0"});
  spec.mounts.push_back(BindMount{(base_ / "msg").string(), "/up/msg", false});
  auto l = launch(spec);
  EXPECT_TRUE(std::filesystem::is_empty(outside)) << "netd wrote into a host directory";
  ASSERT_TRUE(l.ok()) << l.error().message;

  // The container still sees its files, through its own symlinks.
  std::string line = waitForLog(spec);
  EXPECT_NE(line.find("etc_hostname=" + spec.id.substr(0, 12) + " "), std::string::npos) << line;
  EXPECT_NE(line.find("data=from the host data_ro=1 "), std::string::npos) << line;
  // They landed inside the rootfs, at the in-root resolution of the links.
  const std::string root = "/proc/" + std::to_string((*l)->pid) + "/root";
  EXPECT_TRUE(std::filesystem::exists(spec.stateDir + "/upper" + outside.string() + "/hostname"));
  EXPECT_EQ(readText(root + outside.string() + "/msg"), "from the host\n");
  EXPECT_EQ(readText(root + outside.string() + "/data/msg"), "from the host\n");
  EXPECT_TRUE(std::filesystem::is_empty(outside)) << "netd wrote into a host directory";

  ASSERT_TRUE(launcher_->signal((*l)->pid, SIGTERM).ok());
  ASSERT_TRUE(waitReadable((*l)->pidfd.get(), 5000));
  auto code = launcher_->reap(**l);
  ASSERT_TRUE(code.ok());
  (*l)->pid = -1;
  ASSERT_TRUE(launcher_->cleanup(spec, false).ok());
  EXPECT_TRUE(std::filesystem::is_empty(outside)) << "netd wrote into a host directory";
  EXPECT_FALSE(mountinfoMentions(outside.string()));
}

}  // namespace
}  // namespace skiff::runtime::testing
