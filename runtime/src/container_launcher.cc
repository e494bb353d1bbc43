// The real ContainerLauncher: clone3 into new namespaces, cgroups, then the
// in-container shim (container_init.cc) does the rest. See container.h.

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "container_internal.h"
#include "skiff/common/log.h"
#include "skiff/runtime/cgroup.h"

namespace skiff::runtime {

ContainerLauncher::~ContainerLauncher() = default;

Result<Launched> ContainerLauncher::launch(const ContainerSpec& spec, const std::function<Status(pid_t)>& beforeExec) {
  auto starting = begin(spec, beforeExec);
  if (!starting.ok()) return starting.error();
  return finish(spec, std::move(*starting));
}

namespace {

constexpr int kSpecFd = 3;   // the shim reads the spec here, EOF = go
constexpr int kErrorFd = 4;  // the shim writes why exec failed here (close-on-exec)

Status writeFileText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Error::fromErrno("write " + path);
  return okStatus();
}

std::string readHostResolvConf() {
  std::ifstream in("/etc/resolv.conf");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Reads fd to EOF (the shim's error text).
std::string readToEof(int fd) {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status sendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("send container spec");
    off += static_cast<size_t>(n);
  }
  return okStatus();
}

// Runs in the clone()d child of a possibly multi-threaded parent: only
// async-signal-safe calls (fcntl, dup2, open, write, execve, _exit).
[[noreturn]] void childExec(const char* exe, char* const* argv, int specFd, int errFd, int logFd, uint64_t nofile) {
  // Move the fds above the targets first so dup2 cannot clobber one with another.
  int spec = ::fcntl(specFd, F_DUPFD_CLOEXEC, 10);
  int err = ::fcntl(errFd, F_DUPFD_CLOEXEC, 10);
  int log = ::fcntl(logFd, F_DUPFD_CLOEXEC, 10);
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (spec < 0 || err < 0 || log < 0 || null < 0 || ::dup2(null, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0 ||
      ::dup2(spec, kSpecFd) < 0 || ::dup2(err, kErrorFd) < 0) {
    static const char kMsg[] = "container init: cannot set up file descriptors";
    (void)!::write(errFd, kMsg, sizeof kMsg - 1);
    ::_exit(127);
  }
  // Nothing else may leak into the container: every other fd is CLOEXEC or
  // closed here (close_range exists on every kernel with pidfds).
  ::syscall(SYS_close_range, kErrorFd + 1, ~0U, CLOSE_RANGE_CLOEXEC);
  // Last, once no new fd is needed: netd's fd table (copied into this child)
  // may use numbers above the container's limit; open ones do not count
  // against it, and the CLOEXEC ones close at exec.
  if (nofile != 0) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && nofile <= rl.rlim_max) {
      rl.rlim_cur = static_cast<rlim_t>(nofile);
      (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  ::execve(exe, argv, environ);
  static const char kMsg[] = "container init: cannot exec the skiff binary";
  (void)!::write(kErrorFd, kMsg, sizeof kMsg - 1);
  ::_exit(127);
}

class LinuxLauncher : public ContainerLauncher {
 public:
  LinuxLauncher(std::shared_ptr<CgroupManager> cgroups, std::string selfExe, uint64_t nofile)
      : cgroups_(std::move(cgroups)), selfExe_(std::move(selfExe)), nofile_(nofile) {}

  Result<Starting> begin(const ContainerSpec& spec, const std::function<Status(pid_t)>& beforeExec) override {
    if (spec.argv.empty()) return Error::msg("no command specified");
    if (auto s = prepareState(spec); !s.ok()) {
      (void)cleanup(spec, false);
      return s.error();
    }
    const std::string logPath = spec.logPath.empty() ? "/dev/null" : spec.logPath;
    UniqueFd logFd(::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!logFd) return Error::fromErrno("open log " + logPath);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Error::fromErrno("socketpair");
    UniqueFd specParent(sv[0]);
    UniqueFd specChild(sv[1]);
    int ep[2];
    if (::pipe2(ep, O_CLOEXEC) != 0) return Error::fromErrno("pipe2");
    UniqueFd errRead(ep[0]);
    UniqueFd errWrite(ep[1]);

    // Everything the child needs is built before clone: no allocation after.
    std::string specFdText = std::to_string(kSpecFd);
    std::string errFdText = std::to_string(kErrorFd);
    std::string arg0 = "skiff-init";
    std::string arg1 = "__skiff-init";
    char* argv[] = {arg0.data(), arg1.data(), specFdText.data(), errFdText.data(), nullptr};

    int pidfd = -1;
    clone_args args{};
    args.flags = CLONE_PIDFD | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    long rc = ::syscall(SYS_clone3, &args, sizeof args);
    if (rc < 0) return Error::fromErrno("clone3 container " + spec.id.substr(0, 12));
    if (rc == 0) childExec(selfExe_.c_str(), argv, specChild.get(), errWrite.get(), logFd.get(), nofile_);
    const pid_t pid = static_cast<pid_t>(rc);
    Launched launched{pid, UniqueFd(pidfd)};
    specChild.reset();
    errWrite.reset();
    logFd.reset();

    auto abort = [&](const Error& e) -> Error {
      killAndCleanup(spec, pid);
      return e;
    };
    if (cgroups_) {
      if (auto s = cgroups_->create(spec.id, spec.limits); !s.ok()) return abort(s.error());
      if (auto s = cgroups_->addProcess(spec.id, pid); !s.ok()) return abort(s.error());
    }
    if (beforeExec) {
      if (auto s = beforeExec(pid); !s.ok()) return abort(s.error());
    }
    if (auto s = sendAll(specParent.get(), detail::specToJson(spec).dump()); !s.ok()) {
      // The shim died early; its own message (if any) says more.
      std::string why = readToEof(errRead.get());
      return abort(why.empty() ? s.error() : Error::msg(why));
    }
    ::shutdown(specParent.get(), SHUT_WR);
    return Starting{std::move(launched), std::move(errRead)};
  }

  Result<Launched> finish(const ContainerSpec& spec, Starting starting) override {
    // The error pipe is close-on-exec in the shim: EOF means the exec
    // happened; bytes before it are why the shim gave up.
    std::string why = readToEof(starting.ready.get());
    if (!why.empty()) {
      killAndCleanup(spec, starting.launched.pid);
      return Error::msg(why);
    }
    log::info("container", "started ", spec.id.substr(0, 12), " pid ", starting.launched.pid);
    return std::move(starting.launched);
  }

  Result<int> reap(const Launched& launched) override {
    siginfo_t info{};
    for (;;) {
      int rc = launched.pidfd
                   ? ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(launched.pidfd.get()), &info, WEXITED)
                   : ::waitid(P_PID, static_cast<id_t>(launched.pid), &info, WEXITED);
      if (rc == 0) break;
      if (errno != EINTR) return Error::fromErrno("wait for container pid " + std::to_string(launched.pid));
    }
    if (info.si_code == CLD_EXITED) return info.si_status;
    return 128 + info.si_status;
  }

  Status signal(pid_t pid, int sig) override {
    if (::kill(pid, sig) != 0) return Error::fromErrno("kill -" + std::to_string(sig) + " " + std::to_string(pid));
    return okStatus();
  }

  Status cleanup(const ContainerSpec& spec, bool removeLogs) override {
    Status result;
    // The rootfs is mounted only in the container's own mount namespace; if
    // an older netd mounted it here, take it down before deleting below it.
    const std::string rootfs = detail::rootfsDir(spec);
    bool rootfsFree = true;
    if (::umount2(rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      result = Error::fromErrno("unmount " + rootfs);
      rootfsFree = false;
    }
    if (cgroups_) {
      if (auto s = cgroups_->remove(spec.id); !s.ok()) result = s;
    }
    std::error_code ec;
    for (const auto& p : {detail::upperDir(spec), detail::workDir(spec), detail::emptyLowerDir(spec),
                          detail::hostnameFile(spec), detail::hostsFile(spec), detail::resolvFile(spec)}) {
      std::filesystem::remove_all(p, ec);
      if (ec) result = Error::msg("remove " + p + ": " + ec.message(), ec.value());
    }
    if (rootfsFree) std::filesystem::remove(rootfs, ec);
    if (removeLogs && !spec.logPath.empty()) std::filesystem::remove(spec.logPath, ec);
    // Only an empty state dir goes: the log may still live there.
    std::filesystem::remove(spec.stateDir, ec);
    return result;
  }

 private:
  // A container that will not run: SIGKILL, reaped, its rootfs, cgroups and
  // state undone.
  void killAndCleanup(const ContainerSpec& spec, pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    (void)cleanup(spec, false);
  }

  Status prepareState(const ContainerSpec& spec) {
    std::error_code ec;
    for (const auto& d : {detail::upperDir(spec), detail::workDir(spec), detail::rootfsDir(spec)}) {
      std::filesystem::create_directories(d, ec);
      if (ec) return Error::msg("create " + d + ": " + ec.message(), ec.value());
    }
    if (spec.lowerDirs.empty()) {
      std::filesystem::create_directories(detail::emptyLowerDir(spec), ec);
      if (ec) return Error::msg("create " + detail::emptyLowerDir(spec) + ": " + ec.message(), ec.value());
    }
    const std::string hostname = detail::effectiveHostname(spec);
    SKIFF_TRY(writeFileText(detail::hostnameFile(spec), hostname + "\n"));
    SKIFF_TRY(writeFileText(detail::hostsFile(spec), hostsFileText(hostname, spec.extraHosts)));
    SKIFF_TRY(writeFileText(detail::resolvFile(spec), resolvConfText(readHostResolvConf())));
    if (!spec.logPath.empty()) {
      std::filesystem::create_directories(std::filesystem::path(spec.logPath).parent_path(), ec);
    }
    return okStatus();
  }

  std::shared_ptr<CgroupManager> cgroups_;
  std::string selfExe_;
  uint64_t nofile_ = 0;
};

}  // namespace

std::unique_ptr<ContainerLauncher> makeLinuxLauncher(std::shared_ptr<CgroupManager> cgroups, std::string selfExe,
                                                     uint64_t containerNofile) {
  return std::make_unique<LinuxLauncher>(std::move(cgroups), std::move(selfExe), containerNofile);
}

}  // namespace skiff::runtime
