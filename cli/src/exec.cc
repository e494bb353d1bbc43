#include "exec.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "skiff/common/fd.h"
#include "skiff/runtime/privileges.h"

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

[[noreturn]] void runChild(int rootFd, const std::vector<std::string>& env, const std::vector<std::string>& argv) {
  // The parent ignores the terminal's signals while it waits; the command
  // must not.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGQUIT, SIG_DFL);
  if (::fchdir(rootFd) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0) {
    std::fprintf(stderr, "skiff exec: enter container root: %s\n", std::strerror(errno));
    ::_exit(126);
  }
  // The same privileges as the replica's own processes: docker's
  // capabilities (minus MKNOD) and no_new_privs, not the CLI's full root.
  if (auto st = runtime::dropBoundingSet(); !st.ok()) {
    std::fprintf(stderr, "skiff exec: %s\n", st.error().message.c_str());
    ::_exit(126);
  }
  if (auto st = runtime::applyCapabilities(/*root=*/true); !st.ok()) {
    std::fprintf(stderr, "skiff exec: %s\n", st.error().message.c_str());
    ::_exit(126);
  }
  ::clearenv();
  // putenv keeps the pointer: these strings live until exec replaces us.
  static std::vector<std::string> kept;
  kept = env;
  for (auto& entry : kept) ::putenv(entry.data());
  if (!::getenv("PATH")) ::setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  const int err = errno;
  std::fprintf(stderr, "skiff exec: exec: \"%s\": %s\n", argv[0].c_str(),
               err == ENOENT ? "executable file not found in $PATH" : std::strerror(err));
  ::_exit(err == ENOENT ? 127 : 126);
}

}  // namespace

Result<int> execInNamespaces(pid_t pid, const std::vector<std::string>& argv) {
  if (argv.empty()) return Error::msg("no command given");
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

  for (const auto& [fd, type] : nsFds) {
    if (::setns(fd.get(), type) != 0) return Error::fromErrno("setns " + proc + " namespace " + std::to_string(type));
  }

  // Like system(3): while the command runs, ^C belongs to it, not to us.
  struct sigaction ignore{}, oldInt{}, oldQuit{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &oldInt);
  ::sigaction(SIGQUIT, &ignore, &oldQuit);

  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    ::sigaction(SIGINT, &oldInt, nullptr);
    ::sigaction(SIGQUIT, &oldQuit, nullptr);
    return Error::fromErrno("fork into the container", err);
  }
  if (child == 0) runChild(rootFd.get(), env.value(), argv);

  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(child, &status, 0);
  } while (waited < 0 && errno == EINTR);
  const int err = errno;
  ::sigaction(SIGINT, &oldInt, nullptr);
  ::sigaction(SIGQUIT, &oldQuit, nullptr);
  if (waited < 0) return Error::fromErrno("wait for the exec'd command", err);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace skiff::cli
