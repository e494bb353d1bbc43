// FakeContainerLauncher: no kernel, for netd's tests. The "pidfd" is an
// eventfd that becomes readable when the test calls exit(pid, code), so code
// that polls pidfds (libuv) works unchanged.

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "container_internal.h"

namespace skiff::runtime {

Result<Starting> FakeContainerLauncher::begin(const ContainerSpec& spec,
                                              const std::function<Status(pid_t)>& beforeExec) {
  if (!failNextLaunch.empty()) {
    std::string why = std::exchange(failNextLaunch, "");
    return Error::msg(why);
  }
  const pid_t pid = nextPid_++;
  if (beforeExec) SKIFF_TRY(beforeExec(pid));
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Error::fromErrno("eventfd");
  int dupFd = ::dup(fd);
  if (dupFd < 0) {
    ::close(fd);
    return Error::fromErrno("dup");
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ::close(fd);
    ::close(dupFd);
    return Error::fromErrno("pipe2");
  }
  UniqueFd writeEnd(p[1]);
  if (holdExec) held_[pid] = std::move(writeEnd);
  slots_.push_back({pid, fd, -1});
  launched.push_back(spec);
  running.push_back(pid);
  return Starting{Launched{pid, UniqueFd(dupFd)}, UniqueFd(p[0])};
}

void FakeContainerLauncher::releaseExec(pid_t pid, const std::string& error) {
  auto it = held_.find(pid);
  if (it == held_.end()) return;
  if (!error.empty()) (void)::write(it->second.get(), error.data(), error.size());
  held_.erase(it);
}

Result<Launched> FakeContainerLauncher::finish(const ContainerSpec& spec, Starting starting) {
  (void)spec;
  std::string why;
  char buf[256];
  ssize_t n;
  while ((n = ::read(starting.ready.get(), buf, sizeof buf)) > 0) why.append(buf, static_cast<size_t>(n));
  if (!why.empty()) {
    exit(starting.launched.pid, 127);
    return Error::msg(why);
  }
  return std::move(starting.launched);
}

void FakeContainerLauncher::exit(pid_t pid, int code) {
  for (auto& s : slots_) {
    if (s.pid == pid && s.code < 0) {
      s.code = code;
      uint64_t one = 1;
      (void)!::write(s.eventFd, &one, sizeof one);
    }
  }
  running.erase(std::remove(running.begin(), running.end(), pid), running.end());
}

Result<int> FakeContainerLauncher::reap(const Launched& l) {
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->pid == l.pid && it->code >= 0) {
      int code = it->code;
      ::close(it->eventFd);
      slots_.erase(it);
      return code;
    }
  }
  return Error::fromErrno("wait for container pid " + std::to_string(l.pid), ECHILD);
}

Status FakeContainerLauncher::signal(pid_t pid, int sig) {
  if (std::find(running.begin(), running.end(), pid) == running.end()) {
    return Error::fromErrno("kill " + std::to_string(pid), ESRCH);
  }
  signals.emplace_back(pid, sig);
  // Like a well-behaved process: SIGTERM/SIGKILL end it with 128+signal.
  if (sig == SIGTERM || sig == SIGKILL) exit(pid, 128 + sig);
  return okStatus();
}

Status FakeContainerLauncher::cleanup(const ContainerSpec& spec, bool) {
  cleanedUp.push_back(spec.id);
  return okStatus();
}

Result<CgroupStats> FakeContainerLauncher::stats(const ContainerSpec& spec) {
  auto it = statsById.find(spec.id);
  if (it == statsById.end()) return Error::fromErrno("open cgroup of " + spec.id.substr(0, 12), ENOENT);
  return it->second;
}

Result<ExecResult> FakeContainerLauncher::exec(const ContainerSpec& spec, pid_t containerPid, const ExecSpec& e) {
  {
    std::lock_guard lock(execMu_);
    execCalls_.push_back(ExecCall{spec.id, containerPid, e});
  }
  if (onExec) return onExec(spec, e);
  ExecResult ok;
  ok.exitCode = 0;
  return ok;
}

std::vector<FakeContainerLauncher::ExecCall> FakeContainerLauncher::execCalls() const {
  std::lock_guard lock(execMu_);
  return execCalls_;
}

}  // namespace skiff::runtime
