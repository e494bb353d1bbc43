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
//
// exec() runs a command inside a running container, as `docker exec` and a
// HEALTHCHECK do. netd is multi-threaded, and setns(CLONE_NEWNS) refuses a
// process whose threads share its fs_struct, so, as for launch, a clone()d
// child (async-signal-safe code only) execs `<selfExe> __skiff-exec 3 4`, a
// single-threaded helper (container_exec.cc) that reads the request as JSON on
// fd 3. Still on the host's mounts it opens the container's namespaces
// (/proc/<pid>/ns/*), its root and the cgroup.procs files of its groups (the
// CgroupManager's dirs), then joins ipc, uts, net, pid and mnt, and forks: a
// pid namespace applies to children only. The child starts a session of its
// own, joins the cgroups (so the replica's limits bind the command but not
// the helper), chroots into the container's root, takes the container's
// user, environment (the spec's, then the command's own) and working dir,
// docker's capabilities, no_new_privs and the container's seccomp filter,
// and execs. Its stdout and stderr are one pipe the caller reads; the helper
// waits for it with a pidfd and poll, SIGKILLs its whole session when the
// timeout passes, and reports "exit N" or "timeout" on fd 4. No signal
// handler and no global state is involved, so exec() is safe on any worker
// thread and several may run at once.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/common/result.h"
#include "skiff/runtime/cgroup.h"
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

// A command to run inside a running container (ContainerLauncher::exec).
struct ExecSpec {
  std::vector<std::string> argv;  // argv[0] looked up in the container's PATH if not absolute
  std::vector<std::string> env;   // "K=V", added to (and overriding) the container's
  // SIGKILL (the command and its session) after this long; <= 0: no limit.
  std::chrono::milliseconds timeout{30000};
  size_t maxOutput = 4096;  // bytes of output kept (the last ones)
  bool operator==(const ExecSpec&) const = default;
};

struct ExecResult {
  // The command's exit status, 128+signal when a signal ended it, 127 when
  // the command was not found and 126 when it could not be run (the reason
  // is in output, in docker's words), -1 when it timed out.
  int exitCode = -1;
  bool timedOut = false;
  // stdout and stderr interleaved as written; the last maxOutput bytes
  // (docker's health log keeps the first 4096: the end of a failing check's
  // output is what says why).
  std::string output;
  bool operator==(const ExecResult&) const = default;
};

// The argv a health check runs (pure): ["CMD", a, b] -> [a, b];
// ["CMD-SHELL", "x"] -> ["/bin/sh", "-c", "x"]; empty for NONE, disable, an
// empty test or an unknown kind.
std::vector<std::string> healthcheckArgv(const Healthcheck& check);

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
  // Runs e.argv inside the running container `spec` whose process is
  // containerPid (netd's view, not yet reaped: a child of netd cannot be
  // replaced by another process before it is reaped), and waits for it, at
  // most e.timeout: then the command and everything in its session is
  // SIGKILLed and reaped, and the result says timedOut. A command that cannot
  // be run is an ExecResult (127 or 126 with docker's text); an Error means
  // the exec itself failed (the container is not running, no process could
  // be made). Blocks: call it from a worker thread (netd: libuv's pool), never
  // a libuv callback; safe to call concurrently.
  virtual Result<ExecResult> exec(const ContainerSpec& spec, pid_t containerPid, const ExecSpec& e) = 0;
  // Unmounts the rootfs if mounted, removes the cgroups (kills leftovers),
  // removes stateDir except the log unless removeLogs.
  virtual Status cleanup(const ContainerSpec& spec, bool removeLogs) = 0;
  // Its CPU time, memory and pids now, from its cgroups (`skiff stats`). No
  // memory limit reads as the host's memory, and a limit above it as the
  // host's memory too, as docker shows them. A few small file reads: any
  // thread. An error when its groups cannot be read (it is gone).
  virtual Result<CgroupStats> stats(const ContainerSpec& spec) = 0;
};

// containerNofile: the soft RLIMIT_NOFILE a container starts with (0 = what
// netd has). netd raises its own limit for the proxy's connections; its
// containers keep the limit netd was started with, as under docker.
std::unique_ptr<ContainerLauncher> makeLinuxLauncher(std::shared_ptr<CgroupManager> cgroups, std::string selfExe,
                                                     uint64_t containerNofile = 0);

// netd's main() calls this first: if argv[1] is "__skiff-init" it runs the
// in-container shim, if "__skiff-exec" the exec helper, and never returns;
// otherwise returns false.
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
  // Records the call and answers onExec's result (exit 0, no output, when
  // unset). Safe from any thread, as the real one: onExec must be set before
  // the first exec and then be safe to call concurrently itself.
  Result<ExecResult> exec(const ContainerSpec& spec, pid_t containerPid, const ExecSpec& e) override;
  // statsById[spec.id] as it is (tests set what a cgroup would say); an
  // error for an id without an entry.
  Result<CgroupStats> stats(const ContainerSpec& spec) override;
  std::map<std::string, CgroupStats> statsById;

  struct ExecCall {
    std::string id;  // the container's
    pid_t pid = -1;
    ExecSpec exec;
  };
  // An Error from onExec is returned as exec's Error (container not running).
  std::function<Result<ExecResult>(const ContainerSpec&, const ExecSpec&)> onExec;
  std::vector<ExecCall> execCalls() const;  // in order, copied under the lock

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
  mutable std::mutex execMu_;  // exec() runs on worker threads
  std::vector<ExecCall> execCalls_;
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
