// The exec helper: `<netd> __skiff-exec <requestFd> <statusFd>`, a fresh
// single-threaded process that runs one command inside a running container
// (ContainerLauncher::exec, see container.h). It may use C++ freely until it
// forks; the forked child, alone in its process, may too.
//
// Order matters: everything that needs the host's view (/proc/<pid>/ns/*,
// /proc/<pid>/root, the cgroup.procs files) is opened before the first
// setns; mnt is joined last; the fork comes after the pid namespace was
// joined, as setns(CLONE_NEWPID) only places children there. The command's
// stdout and stderr are the helper's own (the caller's pipe): the helper
// never writes to them itself, so the caller reads only the command's words.

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "container_internal.h"
#include "skiff/common/fd.h"
#include "skiff/runtime/privileges.h"
#include "skiff/runtime/seccomp.h"
#include "skiff/runtime/user.h"

namespace skiff::runtime::detail {
namespace {

struct Namespace {
  const char* name;
  int type;
};

// ipc, uts and net first; pid before mnt (it takes effect at the fork);
// mnt last, since it replaces our root and cwd with the container's.
constexpr Namespace kNamespaces[] = {
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};

struct Request {
  pid_t pid = -1;
  ContainerSpec spec;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  long long timeoutMs = 0;  // <= 0: no limit
  std::vector<std::string> cgroupProcs;
};

std::string lowerErrno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

void writeAll(int fd, const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// The helper's one answer to the launcher; then it is done.
[[noreturn]] void report(int statusFd, const std::string& text) {
  writeAll(statusFd, text);
  ::_exit(0);
}

[[noreturn]] void reportError(int statusFd, const std::string& text) { report(statusFd, std::string("error ") + text); }

// In the forked child: the reason goes to the command's own output (as
// docker shows it in the health log), with docker's exit codes.
[[noreturn]] void childFail(const std::string& text, int code) {
  writeAll(2, text + "\n");
  ::_exit(code);
}

[[noreturn]] void runCommand(const Request& r, int rootFd, const std::vector<UniqueFd>& cgroupProcs,
                             const std::optional<SeccompFilterPlan>& seccomp) {
  // A session (and process group) of its own: on timeout the helper kills
  // the group, so `sh -c 'sleep 99'` leaves no sleep behind.
  if (::setsid() < 0) childFail("setsid: " + lowerErrno(errno), 126);
  // Into the replica's cgroups first, while we still have every capability:
  // "0" is the writing process.
  for (const auto& fd : cgroupProcs) {
    if (::write(fd.get(), "0", 1) != 1) childFail("join the container's cgroup: " + lowerErrno(errno), 126);
  }
  if (::fchdir(rootFd) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0) {
    childFail("enter the container's root: " + lowerErrno(errno), 126);
  }
  UserIds ids;
  if (!r.spec.user.empty()) {
    auto u = resolveUserInRoot(r.spec.user);
    if (!u.ok()) childFail(u.error().message, 126);
    ids = *u;
  }
  std::vector<std::string> env = execEnvironment(r.spec.env, r.env, effectiveHostname(r.spec), ids.home);
  const std::string cwd = r.spec.workingDir.empty() ? "/" : r.spec.workingDir;
  if (::chdir(cwd.c_str()) != 0) {
    childFail(std::string("chdir to cwd (\"") + cwd + "\") set in config.json failed: " + lowerErrno(errno), 126);
  }
  auto path = lookPath("", r.argv[0], env);
  if (!path.ok()) childFail(path.error().message, path.error().code == ENOENT ? 127 : 126);

  // The same privileges as the replica's own processes.
  if (auto s = dropBoundingSet(); !s.ok()) childFail(s.error().message, 126);
  if (!r.spec.user.empty()) {
    if (::setgroups(0, nullptr) != 0) childFail("setgroups: " + lowerErrno(errno), 126);
    if (::setgid(ids.gid) != 0) childFail("setgid " + std::to_string(ids.gid) + ": " + lowerErrno(errno), 126);
    if (::setuid(ids.uid) != 0) childFail("setuid " + std::to_string(ids.uid) + ": " + lowerErrno(errno), 126);
  }
  if (auto s = applyCapabilities(ids.uid == 0); !s.ok()) childFail(s.error().message, 126);
  // After setuid, which clears it: if the helper is killed (the launcher's
  // last resort), the command goes with it.
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);

  // netd's signal mask (libuv's workers block everything) and ignored
  // signals survive execve; the command must start with the defaults.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);

  std::vector<std::string> args = r.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& kv : env) envp.push_back(kv.data());
  envp.push_back(nullptr);
  // Last, after no_new_privs: the replica's seccomp filter.
  if (seccomp) {
    if (auto s = loadSeccompFilter(*seccomp); !s.ok()) childFail(s.error().message, 126);
  }
  ::execve(path->c_str(), argv.data(), envp.data());
  const int err = errno;
  childFail(std::string("exec: \"") + r.argv[0] + "\": " + lowerErrno(err), err == ENOENT ? 127 : 126);
}

Request parseRequest(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  Request r;
  r.pid = j.at("pid").get<pid_t>();
  r.spec = specFromJson(j.at("container"));
  r.argv = j.at("argv").get<std::vector<std::string>>();
  r.env = j.value("env", std::vector<std::string>{});
  r.timeoutMs = j.value("timeoutMs", 0LL);
  r.cgroupProcs = j.value("cgroupProcs", std::vector<std::string>{});
  return r;
}

// Waits for the command, at most timeoutMs (> 0); true when it exited.
bool waitExit(int pidfd, long long timeoutMs) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    int wait = -1;
    if (timeoutMs > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      wait = static_cast<int>(std::min<long long>(left, 60'000));
    }
    pollfd p{pidfd, POLLIN, 0};
    const int rc = ::poll(&p, 1, wait);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // cannot wait: let waitid below block
  }
}

}  // namespace

void runExecHelper(int requestFd, int statusFd) {
  ::fcntl(statusFd, F_SETFD, FD_CLOEXEC);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(requestFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      reportError(statusFd, std::string("exec helper: read request: ") + lowerErrno(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(requestFd);
  if (text.empty()) ::_exit(1);  // the launcher gave up
  Request r;
  try {
    r = parseRequest(text);
  } catch (const std::exception& e) {
    reportError(statusFd, std::string("exec helper: bad request: ") + e.what());
  }
  if (r.argv.empty()) reportError(statusFd, "no command specified");
  const std::string proc = "/proc/" + std::to_string(r.pid);
  const std::string notRunning = "container " + r.spec.id.substr(0, 12) + " is not running";

  // Says why an open failed; a process that exited (a zombie, before netd
  // reaps it) has no namespaces or root left.
  auto openFailed = [&](const std::string& what) {
    const int err = errno;
    if (err == ENOENT || err == ESRCH) reportError(statusFd, notRunning);
    std::string message = what;
    message.append(": ").append(lowerErrno(err));
    reportError(statusFd, message);
  };
  std::vector<std::pair<UniqueFd, int>> nsFds;
  for (const auto& ns : kNamespaces) {
    const std::string path = proc + "/ns/" + ns.name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) openFailed(std::string("open ") + path);
    nsFds.emplace_back(std::move(fd), ns.type);
  }
  // Never run "inside" a process that shares our namespaces: that would be
  // the host. (A container is a child of netd, so its pid cannot have been
  // reused before netd reaped it; this guards against a wrong pid.)
  struct stat theirs {
  }, ours{};
  if (::fstat(nsFds[3].first.get(), &theirs) != 0 || ::stat("/proc/self/ns/pid", &ours) != 0 ||
      (theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev)) {
    reportError(statusFd,
                std::string("process ") + std::to_string(r.pid) + " is not in container " + r.spec.id.substr(0, 12));
  }
  UniqueFd rootFd(::open((proc + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd) openFailed(std::string("open ") + proc + "/root");
  std::vector<UniqueFd> cgroupProcs;
  for (const auto& file : r.cgroupProcs) {
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) openFailed(std::string("open ") + file + " to join the container's cgroup");
    cgroupProcs.push_back(std::move(fd));
  }
  // Planned before any namespace is joined, so a bad profile fails early.
  auto seccomp = seccompPlanFor(r.spec.seccomp, r.spec.seccompProfile);
  if (!seccomp.ok()) reportError(statusFd, seccomp.error().message);

  for (const auto& [fd, type] : nsFds) {
    if (::setns(fd.get(), type) != 0) {
      const int err = errno;
      reportError(statusFd,
                  std::string("setns ") + proc + " namespace " + std::to_string(type) + ": " + lowerErrno(err));
    }
  }
  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    reportError(statusFd, std::string("fork into the container: ") + lowerErrno(err));
  }
  if (child == 0) runCommand(r, rootFd.get(), cgroupProcs, *seccomp);
  cgroupProcs.clear();

  bool exited = true;
  const long pidfd = ::syscall(SYS_pidfd_open, child, 0);
  if (pidfd >= 0) {
    exited = r.timeoutMs <= 0 || waitExit(static_cast<int>(pidfd), r.timeoutMs);
    ::close(static_cast<int>(pidfd));
  } else if (r.timeoutMs > 0) {
    // No way to wait with a timeout (pidfds came with Linux 5.3, as did
    // the launcher's clone3): refuse rather than block a worker forever.
    const int err = errno;
    ::kill(-child, SIGKILL);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    reportError(statusFd, std::string("pidfd_open: ") + lowerErrno(err));
  }
  if (!exited) {
    // The whole session, then the leader (in case it left its group).
    ::kill(-child, SIGKILL);
    ::kill(child, SIGKILL);
  }
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED) != 0) {
    if (errno != EINTR) {
      const int err = errno;
      reportError(statusFd, std::string("wait for the exec'd command: ") + lowerErrno(err));
    }
  }
  if (!exited) report(statusFd, "timeout");
  const int code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  report(statusFd, "exit " + std::to_string(code));
}

}  // namespace skiff::runtime::detail
