#include "exec.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

#include "skiff/common/fd.h"
#include "skiff/common/file.h"
#include "skiff/runtime/cgroup_join.h"
#include "skiff/runtime/privileges.h"
#include "skiff/runtime/user.h"

namespace skiff::cli {

namespace {

struct Namespace {
  const char* name;
  int type;
};

// Mount goes last: after it, /proc/PID paths of the host are gone.
constexpr Namespace kNamespaces[] = {
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};

Result<std::vector<std::string>> readEnviron(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/environ";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::fromErrno("open " + path);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> env;
  size_t start = 0;
  while (start < data.size()) {
    size_t end = data.find('\0', start);
    if (end == std::string::npos) end = data.size();
    if (end > start) env.push_back(data.substr(start, end - start));
    start = end + 1;
  }
  return env;
}

// Opens the cgroup.procs file of every hierarchy the container's init is in,
// before this process leaves the host's mount namespace. A hierarchy not
// mounted here is mounted below a tmpfs in a private mount namespace of this
// process, so nothing is left on the host; the open files keep working after
// the process moves on to the container's mount namespace.
Result<std::vector<UniqueFd>> openCgroupProcs(pid_t pid) {
  const std::string cgroupFile = "/proc/" + std::to_string(pid) + "/cgroup";
  auto cgroups = readFile(cgroupFile);
  if (!cgroups.ok()) return cgroups.error();
  auto mountinfo = readFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.error();
  auto targets = runtime::cgroupJoinTargets(*cgroups, *mountinfo);
  if (targets.empty()) return Error::msg("no cgroups listed in " + cgroupFile);

  bool privateMounts = false;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto& t = targets[i];
    if (!t.procsFile.empty()) continue;
    if (!privateMounts) {
      if (::unshare(CLONE_NEWNS) != 0) return Error::fromErrno("unshare a mount namespace for the cgroup mounts");
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return Error::fromErrno("make the mounts of the cgroup namespace private");
      if (::mount("tmpfs", "/tmp", "tmpfs", 0, "mode=0700") != 0)
        return Error::fromErrno("mount a tmpfs for the cgroup mounts on /tmp");
      privateMounts = true;
    }
    const std::string dir = "/tmp/cgroup" + std::to_string(i);
    if (::mkdir(dir.c_str(), 0700) != 0) return Error::fromErrno("mkdir " + dir);
    if (::mount("cgroup", dir.c_str(), t.fsType.c_str(), 0,
                t.mountOptions.empty() ? nullptr : t.mountOptions.c_str()) != 0) {
      return Error::fromErrno("mount the " + (t.controllers.empty() ? t.fsType : t.controllers) + " hierarchy");
    }
    t.procsFile = dir + (t.path == "/" ? "" : t.path) + "/cgroup.procs";
  }
  std::vector<UniqueFd> fds;
  for (const auto& t : targets) {
    UniqueFd fd(::open(t.procsFile.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return Error::fromErrno("open " + t.procsFile + " to join the container's cgroup");
    fds.push_back(std::move(fd));
  }
  return fds;
}

// What the forked child needs, all made before the fork.
struct ChildSetup {
  int rootFd = -1;
  const std::vector<UniqueFd>* cgroupProcs = nullptr;
  int stdinFd = -1, stdoutFd = -1, stderrFd = -1;  // pipes, or the pty's slave three times
  bool tty = false;
  const std::string* user = nullptr;
  const std::vector<std::string>* env = nullptr;
  const std::vector<std::string>* argv = nullptr;
  const std::optional<runtime::SeccompFilterPlan>* seccomp = nullptr;
};

[[noreturn]] void childFail(const std::string& what) {
  std::fprintf(stderr, "skiff exec: %s\n", what.c_str());
  std::fflush(stderr);
  ::_exit(126);
}

[[noreturn]] void runChild(const ChildSetup& s) {
  // The parent ignores the terminal's signals and SIGPIPE while it relays;
  // the command must not.
  for (int sig : {SIGINT, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_DFL);
  // Into the replica's cgroups first, while we still have every capability:
  // "0" is the writing process.
  for (const auto& fd : *s.cgroupProcs) {
    if (::write(fd.get(), "0", 1) != 1) childFail(std::string("join the container's cgroup: ") + std::strerror(errno));
  }
  if (s.tty) {
    // A session of its own with the pty as its controlling terminal, so ^C
    // typed in raw mode reaches the command through the pty.
    if (::setsid() < 0 || ::ioctl(s.stdinFd, TIOCSCTTY, 0) != 0)
      childFail(std::string("set the controlling terminal: ") + std::strerror(errno));
  }
  if (::dup2(s.stdinFd, 0) < 0 || ::dup2(s.stdoutFd, 1) < 0 || ::dup2(s.stderrFd, 2) < 0)
    childFail(std::string("set up stdio: ") + std::strerror(errno));
  if (::fchdir(s.rootFd) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0)
    childFail(std::string("enter container root: ") + std::strerror(errno));

  runtime::UserIds ids;
  if (!s.user->empty()) {
    auto r = runtime::resolveUserInRoot(*s.user);
    if (!r.ok()) childFail(r.error().message);
    ids = *r;
  }
  // The same privileges as the replica's own processes: docker's
  // capabilities (minus MKNOD) and no_new_privs, not the CLI's full root.
  if (auto st = runtime::dropBoundingSet(); !st.ok()) childFail(st.error().message);
  if (!s.user->empty()) {
    if (::setgroups(0, nullptr) != 0) childFail(std::string("setgroups: ") + std::strerror(errno));
    if (::setgid(ids.gid) != 0) childFail("setgid " + std::to_string(ids.gid) + ": " + std::strerror(errno));
    if (::setuid(ids.uid) != 0) childFail("setuid " + std::to_string(ids.uid) + ": " + std::strerror(errno));
  }
  if (auto st = runtime::applyCapabilities(ids.uid == 0); !st.ok()) childFail(st.error().message);

  ::clearenv();
  // putenv keeps the pointer: these strings live until exec replaces us.
  static std::vector<std::string> kept;
  kept = *s.env;
  for (auto& entry : kept) ::putenv(entry.data());
  if (!::getenv("PATH")) ::setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  std::vector<char*> args;
  for (const auto& arg : *s.argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // Last before exec, after no_new_privs: the replica's seccomp filter.
  if (*s.seccomp) {
    if (auto st = runtime::loadSeccompFilter(**s.seccomp); !st.ok()) childFail(st.error().message);
  }
  ::execvp(args[0], args.data());
  const int err = errno;
  std::fprintf(stderr, "skiff exec: exec: \"%s\": %s\n", (*s.argv)[0].c_str(),
               err == ENOENT ? "executable file not found in $PATH" : std::strerror(err));
  std::fflush(stderr);
  ::_exit(err == ENOENT ? 127 : 126);
}

// Puts the caller's terminal in raw mode for -it and restores it.
class RawTerminal {
 public:
  explicit RawTerminal(bool enable) {
    if (!enable || ::tcgetattr(0, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

bool writeAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Relays until the command's output ends: our stdin (with -i) into `input`,
// each source into its sink. Input goes through a buffer and non-blocking
// writes, so a command that does not read its stdin never stalls its output.
void relay(bool interactive, int input, bool closeInputAtEof,
           std::vector<std::pair<int, int>> outputs /* source, sink */) {
  std::string pending;
  bool stdinOpen = interactive;
  bool inputOpen = input >= 0;
  if (inputOpen) ::fcntl(input, F_SETFL, ::fcntl(input, F_GETFL) | O_NONBLOCK);
  if (inputOpen && !stdinOpen && closeInputAtEof) {
    ::close(input);
    inputOpen = false;
  }
  std::vector<bool> sinkOk(outputs.size(), true);
  size_t open = outputs.size();
  char buf[16384];
  while (open > 0) {
    std::vector<pollfd> fds;
    for (const auto& [source, sink] : outputs) fds.push_back({source, static_cast<short>(source >= 0 ? POLLIN : 0), 0});
    const size_t stdinSlot = fds.size();
    fds.push_back({stdinOpen && pending.empty() ? 0 : -1, POLLIN, 0});
    const size_t inputSlot = fds.size();
    fds.push_back({inputOpen && !pending.empty() ? input : -1, POLLOUT, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      auto& [source, sink] = outputs[i];
      if (source < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(source, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {  // EOF, or EIO from a pty whose command is gone
        source = -1;
        --open;
        continue;
      }
      // A closed sink (`| head`) must not stop the command: drop its output.
      if (sinkOk[i]) sinkOk[i] = writeAll(sink, buf, static_cast<size_t>(n));
    }
    if (fds[stdinSlot].revents != 0) {
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n > 0) {
        pending.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdinOpen = false;
      }
    }
    if (inputOpen && !pending.empty() && fds[inputSlot].revents != 0) {
      const ssize_t n = ::write(input, pending.data(), pending.size());
      if (n > 0) {
        pending.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        pending.clear();
        stdinOpen = false;
        if (closeInputAtEof) {
          ::close(input);
          inputOpen = false;
        }
      }
    }
    // Our stdin ended and all of it was passed on: the command sees EOF.
    if (inputOpen && closeInputAtEof && !stdinOpen && pending.empty()) {
      ::close(input);
      inputOpen = false;
    }
  }
}

}  // namespace

Result<int> execInContainer(pid_t pid, const ExecOptions& options) {
  if (options.argv.empty()) return Error::msg("no command given");
  const std::string proc = "/proc/" + std::to_string(pid);

  std::vector<std::pair<UniqueFd, int>> nsFds;
  for (const auto& ns : kNamespaces) {
    const std::string path = proc + "/ns/" + ns.name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Error::fromErrno("open " + path);
    nsFds.emplace_back(std::move(fd), ns.type);
  }
  UniqueFd rootFd(::open((proc + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd) return Error::fromErrno("open " + proc + "/root");
  auto env = readEnviron(pid);
  if (!env) return env.error();
  auto seccomp = runtime::seccompPlanFor(options.seccomp, options.seccompProfile);
  if (!seccomp.ok()) return seccomp.error();
  auto cgroupProcs = openCgroupProcs(pid);
  if (!cgroupProcs.ok()) return cgroupProcs.error();

  for (const auto& [fd, type] : nsFds) {
    if (::setns(fd.get(), type) != 0) return Error::fromErrno("setns " + proc + " namespace " + std::to_string(type));
  }

  // The command's stdio, made in the container's mount namespace so a pty
  // comes from the container's own devpts instance.
  UniqueFd inRead, inWrite, outRead, outWrite, errRead, errWrite, master, slave;
  if (options.tty) {
    master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || ::unlockpt(master.get()) != 0) return Error::fromErrno("open a pseudo-terminal in the container");
    slave = UniqueFd(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_CLOEXEC));
    if (!slave) return Error::fromErrno("open the pseudo-terminal's peer");
    winsize ws{};
    if (::ioctl(::isatty(0) ? 0 : 1, TIOCGWINSZ, &ws) == 0) (void)::ioctl(master.get(), TIOCSWINSZ, &ws);
  } else {
    int p[2];
    for (auto [r, w] : {std::pair{&inRead, &inWrite}, std::pair{&outRead, &outWrite}, std::pair{&errRead, &errWrite}}) {
      if (::pipe2(p, O_CLOEXEC) != 0) return Error::fromErrno("pipe");
      *r = UniqueFd(p[0]);
      *w = UniqueFd(p[1]);
    }
  }

  // Like system(3): while the command runs, ^C belongs to it, not to us; a
  // closed stdout of ours must not kill us before we reap it.
  struct sigaction ignore {
  }, oldInt{}, oldQuit{}, oldPipe{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &oldInt);
  ::sigaction(SIGQUIT, &ignore, &oldQuit);
  ::sigaction(SIGPIPE, &ignore, &oldPipe);
  auto restoreSignals = [&] {
    ::sigaction(SIGINT, &oldInt, nullptr);
    ::sigaction(SIGQUIT, &oldQuit, nullptr);
    ::sigaction(SIGPIPE, &oldPipe, nullptr);
  };

  ChildSetup setup;
  setup.rootFd = rootFd.get();
  setup.cgroupProcs = &*cgroupProcs;
  setup.tty = options.tty;
  setup.stdinFd = options.tty ? slave.get() : inRead.get();
  setup.stdoutFd = options.tty ? slave.get() : outWrite.get();
  setup.stderrFd = options.tty ? slave.get() : errWrite.get();
  setup.user = &options.user;
  setup.env = &env.value();
  setup.argv = &options.argv;
  setup.seccomp = &seccomp.value();

  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    restoreSignals();
    return Error::fromErrno("fork into the container", err);
  }
  if (child == 0) runChild(setup);
  // Only the child holds these ends now, so EOF (or EIO on the pty) comes
  // when the command and whatever inherited them are gone.
  slave.reset();
  inRead.reset();
  outWrite.reset();
  errWrite.reset();
  cgroupProcs->clear();

  {
    RawTerminal raw(options.tty && options.interactive && ::isatty(0));
    if (options.tty) {
      relay(options.interactive, master.get(), false, {{master.get(), 1}});
    } else {
      const int input = inWrite.release();  // relay() closes it at EOF
      relay(options.interactive, input, true, {{outRead.get(), 1}, {errRead.get(), 2}});
    }
  }

  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(child, &status, 0);
  } while (waited < 0 && errno == EINTR);
  const int err = errno;
  restoreSignals();
  if (waited < 0) return Error::fromErrno("wait for the exec'd command", err);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace skiff::cli
