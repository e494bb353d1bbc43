// ContainerLauncher::exec against real containers, as a health check uses it
// and as an admin would check it with docker: the command sees the replica's
// hostname, files, network, processes and cgroups, runs with its user,
// environment, working dir and seccomp filter, its exit code and output come
// back, a command past its timeout is killed with everything it started, and
// a command that does not exist says so in docker's words.

#include <algorithm>
#include <future>

#include "container_fixture.h"

namespace skiff::runtime::testing {
namespace {

using std::chrono::milliseconds;

ExecSpec execOf(std::vector<std::string> argv, milliseconds timeout = milliseconds(10000)) {
  ExecSpec e;
  e.argv = std::move(argv);
  e.timeout = timeout;
  return e;
}

std::string link(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? "<" + ec.message() + ">" : target.string();
}

// Processes in the container's groups that have not exited (zombies left to
// a PID 1 that does not reap are gone for every practical purpose).
std::vector<pid_t> liveProcesses(CgroupManager& cgroups, const std::string& id) {
  std::vector<pid_t> out;
  auto procs = cgroups.processes(id);
  if (!procs.ok()) return out;
  for (pid_t p : *procs) {
    const std::string stat = readText("/proc/" + std::to_string(p) + "/stat");
    const auto close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') continue;
    out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class LauncherExec : public ContainerFixture {
 protected:
  // A replica waiting for SIGTERM, as a service's task would be.
  Launched* startReplica(ContainerSpec& spec) {
    auto l = launch(spec);
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message);
    if (!l.ok()) return nullptr;
    waitForLog(spec);
    return *l;
  }

  ExecResult run(const ContainerSpec& spec, const Launched& c, const ExecSpec& e) {
    auto r = launcher_->exec(spec, c.pid, e);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : ExecResult{};
  }
};

TEST_F(LauncherExec, SeesTheContainersHostnameFilesAndPid1) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  auto r = run(spec, *c, execOf({"helper", "cat", "/etc/hostname", "/data/msg"}));
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.output, spec.id.substr(0, 12) + "\nfrom the host\n");
  // The container's /proc: its PID 1 is the replica's command.
  r = run(spec, *c, execOf({"helper", "cat", "/proc/1/comm"}));
  EXPECT_EQ(r.output, "helper\n");
  r = run(spec, *c, execOf({"/bin/helper", "readlink", "/proc/1/exe"}));
  EXPECT_EQ(r.output, "/proc/1/exe -> /bin/helper\n");
}

TEST_F(LauncherExec, RunsInEveryNamespaceAndCgroupOfTheReplica) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  const std::string proc = "/proc/" + std::to_string(c->pid);
  std::string want;
  for (const char* ns : {"ipc", "mnt", "net", "pid", "uts"}) {
    want += std::string("/proc/self/ns/") + ns + " -> " + link(proc + "/ns/" + ns) + "\n";
  }
  auto r = run(spec, *c, execOf({"helper", "ns"}));
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_EQ(r.output, want);
  // And not in ours: the test's own namespaces differ.
  EXPECT_NE(link(proc + "/ns/net"), link("/proc/self/ns/net"));

  std::string cgroups = trim(readText(proc + "/cgroup"));
  std::replace(cgroups.begin(), cgroups.end(), '\n', ';');
  r = run(spec, *c, execOf({"helper", "whoami"}));
  // stdin is /dev/null (not a pipe, not a tty); docker's default filter.
  EXPECT_EQ(r.output, "uid=0 gid=0 stdin=other seccomp=2\ncgroup=" + cgroups + "\n");
}

TEST_F(LauncherExec, TakesTheContainersUserEnvAndWorkingDirPlusItsOwnEnv) {
  auto spec = makeSpec({"helper", "wait", "0"});
  spec.user = "1000";
  spec.workingDir = "/work";
  spec.env = {"FOO=bar", "KEEP=1"};
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  auto e = execOf({"helper", "env"});
  e.env = {"FOO=override", "EXTRA=x"};
  auto r = run(spec, *c, e);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_EQ(r.output,
            "cwd=/work uid=1000 gid=1000\nFOO=override\nKEEP=1\nEXTRA=x\n"
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            "HOSTNAME=" +
                spec.id.substr(0, 12) + "\nHOME=/\n");
}

TEST_F(LauncherExec, AnUnconfinedReplicaExecsWithoutAFilter) {
  auto spec = makeSpec({"helper", "wait", "0"});
  spec.seccomp = SeccompMode::kUnconfined;
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  auto r = run(spec, *c, execOf({"helper", "seccomp"}));
  EXPECT_EQ(r.output, "seccomp=0 unshare_user=ok keyctl=ok mount=EPERM getpid=ok\n");
}

TEST_F(LauncherExec, ExitCodesAndStderrComeBack) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  auto r = run(spec, *c, execOf({"helper", "exit", "3"}));
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.output, "exit 3\n");
  r = run(spec, *c, execOf({"helper", "cat", "/nonexistent"}));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.output, "cat: /nonexistent: No such file or directory\n");
}

TEST_F(LauncherExec, AMissingCommandSaysSoInDockersWords) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  auto r = run(spec, *c, execOf({"nosuch", "arg"}));
  EXPECT_EQ(r.exitCode, 127);
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.output, "exec: \"nosuch\": executable file not found in $PATH\n");
  r = run(spec, *c, execOf({"/bin/nope"}));
  EXPECT_EQ(r.exitCode, 127);
  EXPECT_EQ(r.output, "exec: \"/bin/nope\": stat /bin/nope: no such file or directory\n");
  // A shell-form health check in an image without a shell.
  Healthcheck hc;
  hc.test = {"CMD-SHELL", "exit 0"};
  r = run(spec, *c, execOf(healthcheckArgv(hc)));
  EXPECT_EQ(r.exitCode, 127);
  EXPECT_EQ(r.output, "exec: \"/bin/sh\": stat /bin/sh: no such file or directory\n");
}

TEST_F(LauncherExec, ACommandPastItsTimeoutIsKilledWithWhatItStarted) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  const auto start = std::chrono::steady_clock::now();
  // The helper prints "sleeping" once both sleepers run; 2 s leaves room
  // for its start under a sanitizer (they would sleep 60 s).
  auto r = run(spec, *c, execOf({"helper", "sleepers"}, milliseconds(2000)));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timedOut);
  EXPECT_EQ(r.exitCode, -1);
  EXPECT_EQ(r.output, "sleeping\n");
  // Both sleepers would run for 60 s; a generous bound, not a benchmark.
  EXPECT_LT(took, std::chrono::seconds(10));
  // Nothing of the exec is left in the replica's cgroups (bounded wait: the
  // kill is asynchronous for the child it forked).
  std::vector<pid_t> left;
  for (int i = 0; i < 100; ++i) {
    left = liveProcesses(*cgroups_, spec.id);
    if (left == std::vector<pid_t>{c->pid}) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(left, std::vector<pid_t>{c->pid});
  // The replica itself is untouched and still answers.
  r = run(spec, *c, execOf({"helper", "exit", "0"}));
  EXPECT_EQ(r.exitCode, 0);
}

TEST_F(LauncherExec, OutputKeepsItsLastMaxOutputBytes) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  auto e = execOf({"helper", "spam", "200000"});
  e.maxOutput = 100;
  auto r = run(spec, *c, e);
  EXPECT_EQ(r.exitCode, 0);
  std::string want;
  for (long i = 200000 - 100; i < 200000; ++i) want += static_cast<char>('a' + i % 26);
  EXPECT_EQ(r.output, want);
}

TEST_F(LauncherExec, SeveralExecsAtOnceFromWorkerThreads) {
  auto spec = makeSpec({"helper", "wait", "0"});
  Launched* c = startReplica(spec);
  ASSERT_NE(c, nullptr);
  std::vector<std::future<Result<ExecResult>>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::async(std::launch::async, [&, i] {
      return launcher_->exec(spec, c->pid, execOf({"helper", "exit", std::to_string(10 + i)}));
    }));
  }
  for (int i = 0; i < 4; ++i) {
    auto r = runs[static_cast<size_t>(i)].get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->exitCode, 10 + i);
    EXPECT_EQ(r->output, "exit " + std::to_string(10 + i) + "\n");
  }
}

TEST_F(LauncherExec, AnExitedContainerIsNotRunning) {
  auto spec = makeSpec({"helper"});  // prints and exits
  auto l = launch(spec);
  ASSERT_TRUE(l.ok()) << l.error().message;
  Launched* c = *l;
  ASSERT_TRUE(waitReadable(c->pidfd.get(), 5000));  // exited, not reaped yet
  auto r = launcher_->exec(spec, c->pid, execOf({"helper", "exit", "0"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "container " + spec.id.substr(0, 12) + " is not running");
}

TEST_F(LauncherExec, AProcessOutsideAnyContainerIsRefused) {
  auto spec = makeSpec({"helper", "wait", "0"});
  auto r = launcher_->exec(spec, ::getpid(), execOf({"helper"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "process " + std::to_string(::getpid()) + " is not in container " + spec.id.substr(0, 12));
}

}  // namespace
}  // namespace skiff::runtime::testing
