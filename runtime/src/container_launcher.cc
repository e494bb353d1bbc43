// The real ContainerLauncher: clone3 into new namespaces, cgroups, then the
// in-container shim (container_init.cc) does the rest. See container.h.

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "container_internal.h"
#include "skiff/common/file.h"
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

// How long past its timeout an exec may take before the launcher kills the
// helper itself: the helper enforces the timeout; this only bounds a helper
// that is stuck (it never should be).
constexpr std::chrono::milliseconds kExecGrace{5000};

// Keeps the last `max` bytes of an exec's output, trimming in batches.
void appendTail(std::string& out, const char* data, size_t n, size_t max) {
  out.append(data, n);
  if (out.size() > 2 * max + 65536) out.erase(0, out.size() - max);
}

// The exec helper's answer on its status pipe ("exit N", "timeout",
// "error TEXT"; anything else is childExec's own failure text).
Result<ExecResult> parseExecStatus(const std::string& status, const std::string& helperDied) {
  ExecResult r;
  if (status.rfind("exit ", 0) == 0) {
    r.exitCode = std::atoi(status.c_str() + 5);
    return r;
  }
  if (status == "timeout") {
    r.timedOut = true;
    return r;
  }
  if (status.rfind("error ", 0) == 0) return Error::msg(status.substr(6));
  if (status.empty()) return Error::msg(helperDied);
  return Error::msg(status);
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

  Result<ExecResult> exec(const ContainerSpec& spec, pid_t containerPid, const ExecSpec& e) override {
    if (e.argv.empty()) return Error::msg("no command specified");
    const std::string shortId = spec.id.substr(0, 12);
    if (containerPid <= 0) return Error::msg("container " + shortId + " is not running");
    nlohmann::json cgroupProcs = nlohmann::json::array();
    if (cgroups_) {
      // groupDirs only reads what detect() found: safe on any thread.
      for (const auto& dir : cgroups_->groupDirs(spec.id)) cgroupProcs.push_back(dir + "/cgroup.procs");
    }
    const nlohmann::json request = {{"pid", containerPid},
                                    {"container", detail::specToJson(spec)},
                                    {"argv", e.argv},
                                    {"env", e.env},
                                    {"timeoutMs", static_cast<long long>(e.timeout.count())},
                                    {"cgroupProcs", cgroupProcs}};
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Error::fromErrno("socketpair");
    UniqueFd requestParent(sv[0]);
    UniqueFd requestChild(sv[1]);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::fromErrno("pipe2");
    UniqueFd statusRead(p[0]);
    UniqueFd statusWrite(p[1]);
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::fromErrno("pipe2");
    UniqueFd outputRead(p[0]);
    UniqueFd outputWrite(p[1]);

    // Everything the child needs is built before clone: no allocation after.
    std::string requestFdText = std::to_string(kSpecFd);
    std::string statusFdText = std::to_string(kErrorFd);
    std::string arg0 = "skiff-exec";
    std::string arg1 = "__skiff-exec";
    char* argv[] = {arg0.data(), arg1.data(), requestFdText.data(), statusFdText.data(), nullptr};
    int rawPidfd = -1;
    clone_args args{};
    args.flags = CLONE_PIDFD;
    args.pidfd = reinterpret_cast<uint64_t>(&rawPidfd);
    args.exit_signal = SIGCHLD;
    long rc = ::syscall(SYS_clone3, &args, sizeof args);
    if (rc < 0) return Error::fromErrno("clone3 exec helper for " + shortId);
    if (rc == 0) {
      childExec(selfExe_.c_str(), argv, requestChild.get(), statusWrite.get(), outputWrite.get(), nofile_);
    }
    const pid_t helper = static_cast<pid_t>(rc);
    UniqueFd pidfd(rawPidfd);
    requestChild.reset();
    statusWrite.reset();
    outputWrite.reset();

    // Kills the helper (its command gets SIGKILL through PDEATHSIG) and
    // reaps it; returns how it ended.
    auto reapHelper = [&](bool force) -> std::string {
      if (force) (void)::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
      siginfo_t info{};
      while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info, WEXITED) != 0) {
        if (errno != EINTR) return "exec helper " + std::to_string(helper) + ": " + std::strerror(errno);
      }
      if (info.si_code == CLD_EXITED) return "exec helper exited with " + std::to_string(info.si_status);
      return "exec helper killed by signal " + std::to_string(info.si_status);
    };
    if (auto s = sendAll(requestParent.get(), request.dump()); !s.ok()) {
      (void)reapHelper(true);
      return s.error();
    }
    requestParent.reset();

    // Reads output as it comes (a chatty command must never stall on a full
    // pipe) until the helper's status pipe ends: the helper has reaped the
    // command and reported. Whatever the command's leftovers (a daemon it
    // started) write later is not waited for.
    using Clock = std::chrono::steady_clock;
    const bool limited = e.timeout.count() > 0;
    const auto deadline = Clock::now() + e.timeout + kExecGrace;
    std::string output, status;
    bool statusOpen = true, outputOpen = true, helperStuck = false;
    char buf[16384];
    while (statusOpen) {
      int wait = -1;
      if (limited) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
          helperStuck = true;
          break;
        }
        wait = static_cast<int>(std::min<long long>(left, 60'000));
      }
      pollfd fds[2] = {{statusRead.get(), POLLIN, 0}, {outputOpen ? outputRead.get() : -1, POLLIN, 0}};
      const int n = ::poll(fds, 2, wait);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const Error err = Error::fromErrno("poll exec helper");
        (void)reapHelper(true);
        return err;
      }
      if (fds[1].revents != 0) {
        const ssize_t got = ::read(outputRead.get(), buf, sizeof buf);
        if (got > 0) {
          appendTail(output, buf, static_cast<size_t>(got), e.maxOutput);
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          outputOpen = false;
        }
      }
      if (fds[0].revents != 0) {
        const ssize_t got = ::read(statusRead.get(), buf, sizeof buf);
        if (got > 0) {
          status.append(buf, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          statusOpen = false;
        }
      }
    }
    // What the command wrote before it exited is in the pipe by now.
    if (outputOpen && ::fcntl(outputRead.get(), F_SETFL, O_NONBLOCK) == 0) {
      ssize_t got;
      while ((got = ::read(outputRead.get(), buf, sizeof buf)) > 0) {
        appendTail(output, buf, static_cast<size_t>(got), e.maxOutput);
      }
    }
    if (output.size() > e.maxOutput) output.erase(0, output.size() - e.maxOutput);
    const std::string helperEnd = reapHelper(helperStuck);
    if (helperStuck) {
      log::warn("container", "exec in ", shortId, ": helper did not finish ", kExecGrace.count(),
                " ms after the timeout; killed");
      ExecResult r;
      r.timedOut = true;
      r.output = std::move(output);
      return r;
    }
    auto result = parseExecStatus(status, helperEnd);
    if (!result.ok()) return result.error();
    result->output = std::move(output);
    return result;
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

  Result<CgroupStats> stats(const ContainerSpec& spec) override {
    if (!cgroups_) return Error::msg("container " + spec.id.substr(0, 12) + " has no cgroups");
    auto stats = cgroups_->stats(spec.id);
    if (!stats.ok()) return stats.error();
    // The host's memory does not change while netd runs: read once.
    static const uint64_t kHostMemory = [] {
      auto meminfo = ::skiff::readFile("/proc/meminfo");
      return meminfo.ok() ? parseMemTotal(*meminfo) : uint64_t{0};
    }();
    stats->memoryLimit = shownMemoryLimit(stats->memoryLimit, kHostMemory);
    return stats;
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
