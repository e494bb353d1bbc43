// `skiff container exec` (cli/src/exec.cc) against real containers, as an
// admin would check it: the command runs as the user asked for (the
// service's, or -u), inside every cgroup of the replica, under its seccomp
// filter, with pipes (not the caller's terminal) as stdio unless -t asks for
// a pseudo-terminal, and stdin relayed only with -i.
//
// execInContainer moves the calling process into the container, so each call
// runs in a forked child whose stdio are pipes this test holds.

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>

#include "container_fixture.h"
#include "exec.h"

namespace skiff::runtime::testing {
namespace {

struct ExecResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string readUntilEof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    if (!waitReadable(fd, 10000)) {
      ADD_FAILURE() << "exec output did not end within 10 s";
      break;
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

ExecResult runExec(pid_t pid, const cli::ExecOptions& options, const std::string& input = "") {
  int in[2], out[2], err[2];
  EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    // No exec happens here, so close-on-exec does not apply: drop our copies,
    // or our own stdin never reaches EOF.
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    auto code = cli::execInContainer(pid, options);
    if (!code.ok()) {
      std::fprintf(stderr, "exec failed: %s\n", code.error().message.c_str());
      std::fflush(stderr);
      ::_exit(200);
    }
    std::fflush(stdout);
    ::_exit(*code);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!input.empty()) {
    EXPECT_EQ(::write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  }
  ::close(in[1]);
  ExecResult r;
  r.out = readUntilEof(out[0]);
  r.err = readUntilEof(err[0]);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string oneLine(std::string text) {
  text = trim(text);
  for (auto& c : text) {
    if (c == '\n') c = ';';
  }
  return text;
}

class ContainerExec : public ContainerFixture {
 protected:
  // A replica whose `user:` is 1000, waiting for SIGTERM.
  Launched* startReplica(const std::string& user = "1000") {
    auto spec = makeSpec({"helper", "wait", "0"});
    spec.user = user;
    auto l = launch(spec);
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message);
    if (!l.ok()) return nullptr;
    waitForLog(spec);
    return *l;
  }
  std::string replicaCgroups(pid_t pid) {
    return "cgroup=" + oneLine(readText("/proc/" + std::to_string(pid) + "/cgroup"));
  }
};

TEST_F(ContainerExec, RunsAsTheServicesUserInTheReplicasCgroupsWithPipesAndItsFilter) {
  Launched* c = startReplica("1000");
  ASSERT_NE(c, nullptr);
  cli::ExecOptions o;
  o.argv = {"helper", "whoami"};
  o.user = "1000";  // what the CLI takes from the container's Config.User
  auto r = runExec(c->pid, o);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "uid=1000 gid=1000 stdin=pipe seccomp=2\n" + replicaCgroups(c->pid) + "\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(ContainerExec, UserZeroOverridesTheServicesUser) {
  Launched* c = startReplica("1000");
  ASSERT_NE(c, nullptr);
  cli::ExecOptions o;
  o.argv = {"helper", "whoami"};
  o.user = "0";
  auto r = runExec(c->pid, o);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "uid=0 gid=0 stdin=pipe seccomp=2");
}

TEST_F(ContainerExec, UnconfinedReplicaGetsNoFilterInExecEither) {
  Launched* c = startReplica("");
  ASSERT_NE(c, nullptr);
  cli::ExecOptions o;
  o.argv = {"helper", "seccomp"};
  o.seccomp = SeccompMode::kUnconfined;
  auto r = runExec(c->pid, o);
  ASSERT_EQ(r.code, 0) << r.err;
  // mount stays refused: CAP_SYS_ADMIN is not among the kept capabilities.
  EXPECT_EQ(r.out, "seccomp=0 unshare_user=ok keyctl=ok mount=EPERM getpid=ok\n");
  o.seccomp = SeccompMode::kDefault;
  r = runExec(c->pid, o);
  EXPECT_EQ(r.out, "seccomp=2 unshare_user=EPERM keyctl=EPERM mount=EPERM getpid=ok\n");
}

TEST_F(ContainerExec, StdinIsRelayedOnlyWithInteractive) {
  Launched* c = startReplica();
  ASSERT_NE(c, nullptr);
  cli::ExecOptions o;
  o.argv = {"helper", "cat"};
  o.interactive = true;
  auto r = runExec(c->pid, o, "through the pipe\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "through the pipe\n");
  // Without -i the command reads EOF at once, not the caller's input.
  o.interactive = false;
  r = runExec(c->pid, o, "not for the container\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(ContainerExec, TtyGivesTheCommandAPseudoTerminalOfTheContainer) {
  Launched* c = startReplica();
  ASSERT_NE(c, nullptr);
  cli::ExecOptions o;
  o.argv = {"helper", "whoami"};
  o.user = "1000";
  o.tty = true;
  auto r = runExec(c->pid, o);
  ASSERT_EQ(r.code, 0) << r.err;
  // Output comes through the pty, whose line discipline turns \n into \r\n.
  EXPECT_EQ(r.out.substr(0, r.out.find('\r')), "uid=1000 gid=1000 stdin=tty seccomp=2");
}

TEST_F(ContainerExec, MissingCommandAndUnknownUserSayWhy) {
  Launched* c = startReplica();
  ASSERT_NE(c, nullptr);
  cli::ExecOptions o;
  o.argv = {"nosuch"};
  auto r = runExec(c->pid, o);
  EXPECT_EQ(r.code, 127);
  EXPECT_EQ(r.err, "skiff exec: exec: \"nosuch\": executable file not found in $PATH\n");
  o.argv = {"helper"};
  o.user = "nobody";
  r = runExec(c->pid, o);
  EXPECT_EQ(r.code, 126);
  EXPECT_EQ(r.err, "skiff exec: unable to find user nobody: no matching entries in passwd file\n");
}

}  // namespace
}  // namespace skiff::runtime::testing
