#pragma once
// Containers: a replica is a process in new pid, mount, uts, ipc and net
// namespaces, on an overlayfs rootfs, inside cgroups with its limits.
//
// Design note: netd is multi-threaded, so the clone()d child runs only
// async-signal-safe code: it dup2()s its fds and execve()s
// `<selfExe> __skiff-init 3 4`, a fresh single-threaded process (PID 1 of the
// new pid namespace) that may use C++ freely. The launcher meanwhile puts the
// child into its cgroups and runs beforeExec (netd moves veths into the
// child's netns). Then it sends the spec as JSON on fd 3 and closes it: EOF
// means "go". The shim builds the rootfs (overlay, /proc, /dev, /etc files,
// bind mounts), pivot_roots, sets hostname, cwd and user, and execs the
// user's command, which stays PID 1; its last step before execve loads the
// seccomp filter (seccomp.h). Fd 4 is close-on-exec: EOF without text
// means the exec succeeded; text is the error in docker's words. The rootfs
// mounts live only in the container's mount namespace, so they vanish with
// the container and never leak to the host.
//
// Threading: launch() blocks until exec succeeded or failed (milliseconds);
// call it from a worker thread, not a libuv callback.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/common/result.h"
#include "skiff/runtime/seccomp.h"
#include "skiff/runtime/stack.h"

namespace skiff::runtime {

struct BindMount {
  std::string source;
  std::string target;
  bool readOnly = false;
};

struct ContainerSpec {
  std::string id;                      // 64 hex; hostname defaults to id.substr(0,12)
  std::vector<std::string> lowerDirs;  // image layer dirs, topmost first
  std::string stateDir;                // <data-root>/containers/<id>
  std::vector<std::string> argv;       // argv[0] looked up in PATH of env if not absolute
  std::vector<std::string> env;        // "K=V"
  std::string workingDir = "/";
  std::string user;  // "", "uid[:gid]" or a name from the image's /etc/passwd
  std::string hostname;
  std::vector<std::pair<std::string, std::string>> extraHosts;  // ip, name
  std::vector<BindMount> mounts;
  Resources limits;
  std::string logPath;  // stdout+stderr appended here
  // The seccomp filter loaded right before execve: Docker's default unless
  // the service says otherwise (seccompModeOf(ServiceSpec::seccomp)).
  SeccompMode seccomp = SeccompMode::kDefault;
  std::string seccompProfile;  // kProfile: the profile's JSON
};

struct Launched {
  pid_t pid = -1;  // as seen from netd's pid namespace
  UniqueFd pidfd;  // readable when the container exited
};

class CgroupManager;

// A container between its clone and its exec: the process exists (in its
// cgroups, beforeExec done) and its shim is setting up the rootfs. `ready`
// reaches EOF once the command was exec'd; bytes before the EOF are the
// shim's error.
struct Starting {
  Launched launched;
  UniqueFd ready;
};

class ContainerLauncher {
 public:
  virtual ~ContainerLauncher();
  // Starts the container; returns once its command was exec'd, or the error
  // (docker's words, e.g. `exec: "nosuchcmd": executable file not found in
  // $PATH`) with everything it made undone. begin() then finish(), waiting
  // for `ready` in between.
  Result<Launched> launch(const ContainerSpec& spec, const std::function<Status(pid_t)>& beforeExec);
  // The part that does not wait for the container: clone, cgroups,
  // beforeExec(pid), the spec handed to the shim. An event loop watches
  // `ready` and calls finish() when it is readable, so it never blocks on a
  // slow rootfs.
  virtual Result<Starting> begin(const ContainerSpec& spec, const std::function<Status(pid_t)>& beforeExec) = 0;
  // Reads `ready` to its EOF (at once once it is readable): the launched
  // container, or the shim's error with everything undone.
  virtual Result<Launched> finish(const ContainerSpec& spec, Starting starting) = 0;
  // Reaps an exited container (after its pidfd became readable): the exit
  // code, or 128+signal.
  virtual Result<int> reap(const Launched& launched) = 0;
  virtual Status signal(pid_t pid, int sig) = 0;
  // Unmounts the rootfs if mounted, removes the cgroups (kills leftovers),
  // removes stateDir except the log unless removeLogs.
  virtual Status cleanup(const ContainerSpec& spec, bool removeLogs) = 0;
};

// containerNofile: the soft RLIMIT_NOFILE a container starts with (0 = what
// netd has). netd raises its own limit for the proxy's connections; its
// containers keep the limit netd was started with, as under docker.
std::unique_ptr<ContainerLauncher> makeLinuxLauncher(std::shared_ptr<CgroupManager> cgroups, std::string selfExe,
                                                     uint64_t containerNofile = 0);

// netd's main() calls this first: if argv[1] == "__skiff-init" it runs the
// in-container shim and never returns; otherwise returns false.
bool maybeRunContainerInit(int argc, char** argv);

// Fake for netd's tests: no kernel. Each launch gets a fresh pid and an
// eventfd as pidfd; exit(pid, code) makes that fd readable and reap return code.
class FakeContainerLauncher : public ContainerLauncher {
 public:
  // `ready` is at EOF at once, unless holdExec: then it stays open until
  // releaseExec(pid) (a shim still mounting the rootfs).
  Result<Starting> begin(const ContainerSpec& spec, const std::function<Status(pid_t)>& beforeExec) override;
  Result<Launched> finish(const ContainerSpec& spec, Starting starting) override;
  Result<int> reap(const Launched& launched) override;
  Status signal(pid_t pid, int sig) override;
  Status cleanup(const ContainerSpec& spec, bool removeLogs) override;

  // Simulates the container's exit.
  void exit(pid_t pid, int code);

  std::string failNextLaunch;  // non-empty: next launch fails with this text
  bool holdExec = false;       // begin() leaves `ready` open until releaseExec
  void releaseExec(pid_t pid, const std::string& error = "");
  std::vector<ContainerSpec> launched;  // in order
  std::vector<std::pair<pid_t, int>> signals;
  std::vector<std::string> cleanedUp;  // ids
  std::vector<pid_t> running;

 private:
  struct Slot {
    pid_t pid;
    int eventFd;
    int code;
  };
  std::vector<Slot> slots_;
  std::map<pid_t, UniqueFd> held_;  // write ends of held `ready` pipes
  pid_t nextPid_ = 1000;
};

// The text of the files the launcher writes for the container (pure).
std::string hostsFileText(const std::string& hostname,
                          const std::vector<std::pair<std::string, std::string>>& extraHosts);
// Host resolv.conf minus loopback nameservers (they do not work in a netns).
std::string resolvConfText(std::string_view hostResolvConf);
// Looks argv0 up in PATH (from env, default docker's) below rootDir; returns
// the path inside the container, or the docker-style error.
Result<std::string> lookPath(const std::string& rootDir, const std::string& argv0, const std::vector<std::string>& env);

}  // namespace skiff::runtime
