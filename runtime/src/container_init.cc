// The in-container shim: `<netd> __skiff-init <specFd> <errorFd>`, PID 1 of
// the container's fresh namespaces, single-threaded. It waits for the spec
// (EOF = the launcher finished cgroups and networking), builds the rootfs and
// execs the user's command. Any failure is written to errorFd in docker's
// words and the shim exits 127.

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "container_internal.h"
#include "skiff/common/fd.h"
#include "skiff/runtime/privileges.h"
#include "skiff/runtime/seccomp.h"
#include "skiff/runtime/user.h"

namespace skiff::runtime {
namespace {

std::string lowerErrno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status sysError(const std::string& what) { return Error::msg(what + ": " + lowerErrno(errno), errno); }

Status mkdirAll(const std::string& path, mode_t mode = 0755) {
  std::string cur;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    cur += "/" + part;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return sysError("mkdir " + cur);
  }
  return okStatus();
}

Status doMount(const std::string& source, const std::string& target, const char* type, unsigned long flags,
               const std::string& data) {
  if (::mount(source.c_str(), target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    return sysError("mount " + source + " on " + target);
  }
  return okStatus();
}

// Everything below builds the rootfs before pivot_root, as root, while "/" is
// still the host's. An image's symlinks (/etc -> /somewhere, /data -> /etc)
// must never be followed on the host, so, as runc does with securejoin, every
// target is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), missing
// components are created one at a time relative to their resolved parent, and
// mounts go onto the resolved object through "/proc/self/fd/N" (the host's
// /proc: the container's is only mounted under the rootfs).
enum class Create { kNothing, kDir, kFile };

Result<UniqueFd> openInRoot(int rootFd, const std::string& path, std::uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  // EAGAIN: a concurrent rename raced the ".." check; the kernel asks to retry.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const long fd = ::syscall(SYS_openat2, rootFd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno != EAGAIN && errno != EINTR) break;
  }
  return Error::fromErrno("openat2 " + path, errno);
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::istringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (!part.empty() && part != ".") parts.push_back(part);
  }
  return parts;
}

std::string joinPath(const std::vector<std::string>& parts, size_t count) {
  std::string out = ".";
  for (size_t i = 0; i < count; ++i) out += "/" + parts[i];
  return out;
}

// Resolves `path` (a path inside the container) under rootFd, creating what is
// missing as `create` says (parents always as directories). A dangling symlink
// is followed inside the rootfs, as it will be once the container runs.
Result<UniqueFd> resolveInRoot(int rootFd, const std::string& path, Create create) {
  std::vector<std::string> parts = splitPath(path);
  for (int links = 0; links <= 40; ++links) {
    auto cur = openInRoot(rootFd, ".", O_PATH | O_DIRECTORY);
    if (!cur.ok()) return cur.error();
    bool restarted = false;
    for (size_t i = 0; i < parts.size() && !restarted; ++i) {
      auto next = openInRoot(rootFd, joinPath(parts, i + 1), O_PATH);
      if (next.ok()) {
        cur = std::move(next);
        continue;
      }
      if (next.error().code != ENOENT || create == Create::kNothing) return next.error();
      const std::string& name = parts[i];
      char buf[PATH_MAX];
      const ssize_t n = ::readlinkat(cur->get(), name.c_str(), buf, sizeof buf - 1);
      if (n >= 0) {
        // Dangling symlink: continue from its target, still inside the root.
        const std::string target(buf, static_cast<size_t>(n));
        std::vector<std::string> rewritten;
        if (target.empty() || target[0] != '/') rewritten.assign(parts.begin(), parts.begin() + static_cast<long>(i));
        for (auto& p : splitPath(target)) rewritten.push_back(std::move(p));
        rewritten.insert(rewritten.end(), parts.begin() + static_cast<long>(i) + 1, parts.end());
        parts = std::move(rewritten);
        restarted = true;
        break;
      }
      const bool last = i + 1 == parts.size();
      if (last && create == Create::kFile) {
        const int fd = ::openat(cur->get(), name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) return sysError("create " + path).error();
        ::close(fd);
      } else if (::mkdirat(cur->get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return sysError("mkdir " + path).error();
      }
      next = openInRoot(rootFd, joinPath(parts, i + 1), O_PATH);
      if (!next.ok()) return next.error();
      cur = std::move(next);
    }
    if (!restarted) return cur;
  }
  return Error::msg("resolve " + path + " in rootfs: too many levels of symbolic links", ELOOP);
}

std::string fdPath(const UniqueFd& fd) { return "/proc/self/fd/" + std::to_string(fd.get()); }

// Mounts onto `target` inside the rootfs; `what` names it in errors.
Status mountInRoot(int rootFd, const std::string& source, const std::string& target, Create create, const char* type,
                   unsigned long flags, const std::string& data) {
  auto fd = resolveInRoot(rootFd, target, create);
  if (!fd.ok()) return Error::msg("mount " + source + " on " + target + ": " + fd.error().message, fd.error().code);
  if (::mount(source.c_str(), fdPath(*fd).c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    return sysError("mount " + source + " on " + target);
  }
  return okStatus();
}

// A remount acts on the mount now on top of target: resolve it afresh (the fd
// the mount was made through still points at what lies underneath).
Status remountInRoot(int rootFd, const std::string& target, unsigned long flags) {
  return mountInRoot(rootFd, "", target, Create::kNothing, nullptr, flags, "");
}

Status bindFile(int rootFd, const std::string& source, const std::string& target, bool readOnly) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) return sysError("bind source path does not exist: " + source);
  SKIFF_TRY(mountInRoot(rootFd, source, target, S_ISDIR(st.st_mode) ? Create::kDir : Create::kFile, nullptr,
                        MS_BIND | MS_REC, ""));
  if (readOnly) SKIFF_TRY(remountInRoot(rootFd, target, MS_BIND | MS_REMOUNT | MS_RDONLY));
  return okStatus();
}

// As docker's default OCI spec: kernel knobs under /proc are read-only and
// files that leak host state (kernel memory, keyrings, timers) read as empty.
// Paths this kernel lacks are skipped, as runc does.
Status hardenProc(int rootFd) {
  for (const char* p : {"/asound", "/acpi", "/kcore", "/keys", "/latency_stats", "/timer_list", "/timer_stats",
                        "/sched_debug", "/scsi"}) {
    const std::string target = std::string("/proc") + p;
    auto fd = resolveInRoot(rootFd, target, Create::kNothing);
    if (!fd.ok()) continue;
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return sysError("stat " + target);
    if (S_ISDIR(st.st_mode)) {
      SKIFF_TRY(doMount("tmpfs", fdPath(*fd), "tmpfs", MS_RDONLY, ""));
    } else {
      SKIFF_TRY(doMount("/dev/null", fdPath(*fd), nullptr, MS_BIND, ""));
    }
  }
  for (const char* p : {"/bus", "/fs", "/irq", "/sys", "/sysrq-trigger"}) {
    const std::string target = std::string("/proc") + p;
    auto fd = resolveInRoot(rootFd, target, Create::kNothing);
    if (!fd.ok()) continue;
    SKIFF_TRY(doMount(fdPath(*fd), fdPath(*fd), nullptr, MS_BIND | MS_REC, ""));
    // The remount keeps proc's nosuid/nodev/noexec and adds ro.
    SKIFF_TRY(remountInRoot(rootFd, target, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
  }
  return okStatus();
}

// Targets are paths inside the container; ".." is refused as before (the
// in-root resolution would contain it anyway).
Status checkTarget(const std::string& target) {
  if (target.empty() || target[0] != '/' || target.find("/..") != std::string::npos) {
    return Error::msg("invalid mount path: " + target + " (must be absolute, without ..)");
  }
  return okStatus();
}

Status symlinkInRoot(int rootFd, const char* from, const std::string& to) {
  const auto slash = to.rfind('/');
  auto dir = resolveInRoot(rootFd, to.substr(0, slash), Create::kNothing);
  if (!dir.ok()) return Error::msg("symlink " + to + ": " + dir.error().message, dir.error().code);
  if (::symlinkat(from, dir->get(), to.substr(slash + 1).c_str()) != 0) return sysError("symlink " + to);
  return okStatus();
}

Status setupRootfs(const ContainerSpec& spec) {
  // Nothing we mount may propagate back to the host.
  SKIFF_TRY(doMount("", "/", nullptr, MS_REC | MS_PRIVATE, ""));
  const std::string root = detail::rootfsDir(spec);
  std::string lower;
  for (const auto& l : spec.lowerDirs) lower += (lower.empty() ? "" : ":") + l;
  if (lower.empty()) lower = detail::emptyLowerDir(spec);
  SKIFF_TRY(doMount("overlay", root, "overlay", 0,
                    "lowerdir=" + lower + ",upperdir=" + detail::upperDir(spec) + ",workdir=" + detail::workDir(spec)));
  // Opened after the overlay mount, so it is the overlay's root. The state
  // dir path itself is netd's, not the image's.
  const int rawRoot = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rawRoot < 0) return sysError("open " + root);
  const UniqueFd rootFd(rawRoot);
  const int r = rootFd.get();

  SKIFF_TRY(mountInRoot(r, "proc", "/proc", Create::kDir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  SKIFF_TRY(hardenProc(r));
  SKIFF_TRY(mountInRoot(r, "tmpfs", "/dev", Create::kDir, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  for (const char* dev : {"null", "zero", "full", "random", "urandom", "tty"}) {
    SKIFF_TRY(bindFile(r, std::string("/dev/") + dev, std::string("/dev/") + dev, false));
  }
  SKIFF_TRY(mountInRoot(r, "devpts", "/dev/pts", Create::kDir, "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620"));
  SKIFF_TRY(symlinkInRoot(r, "pts/ptmx", "/dev/ptmx"));
  SKIFF_TRY(mountInRoot(r, "shm", "/dev/shm", Create::kDir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "mode=1777,size=65536k"));
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "/dev/fd"},
                                                       {"/proc/self/fd/0", "/dev/stdin"},
                                                       {"/proc/self/fd/1", "/dev/stdout"},
                                                       {"/proc/self/fd/2", "/dev/stderr"}};
  for (const auto& [from, to] : links) SKIFF_TRY(symlinkInRoot(r, from, to));

  SKIFF_TRY(bindFile(r, detail::hostnameFile(spec), "/etc/hostname", false));
  SKIFF_TRY(bindFile(r, detail::hostsFile(spec), "/etc/hosts", false));
  SKIFF_TRY(bindFile(r, detail::resolvFile(spec), "/etc/resolv.conf", false));
  for (const auto& m : spec.mounts) {
    SKIFF_TRY(checkTarget(m.target));
    SKIFF_TRY(bindFile(r, m.source, m.target, m.readOnly));
  }

  if (::chdir(root.c_str()) != 0) return sysError("chdir " + root);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return sysError("pivot_root " + root);
  // The old root is now stacked on "/": detach it so the host's tree is gone.
  if (::umount2(".", MNT_DETACH) != 0) return sysError("unmount old root");
  if (::chdir("/") != 0) return sysError("chdir /");
  return okStatus();
}

bool hasEnv(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& kv : env) {
    if (kv.rfind(key + "=", 0) == 0) return true;
  }
  return false;
}

// Everything after the spec arrived; returns only on failure.
Error startContainer(ContainerSpec spec, int errFd) {
  // The filter is planned first, so a bad profile fails before any mount.
  auto seccomp = seccompPlanFor(spec.seccomp, spec.seccompProfile);
  if (!seccomp.ok()) return seccomp.error();
  if (auto s = setupRootfs(spec); !s.ok()) return s.error();
  const std::string hostname = detail::effectiveHostname(spec);
  if (::sethostname(hostname.data(), hostname.size()) != 0) return sysError("sethostname").error();

  UserIds ids;
  if (!spec.user.empty()) {
    auto r = resolveUserInRoot(spec.user);
    if (!r.ok()) return r.error();
    ids = *r;
  }
  std::vector<std::string> env = spec.env;
  if (!hasEnv(env, "PATH")) env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!hasEnv(env, "HOSTNAME")) env.push_back("HOSTNAME=" + hostname);
  if (!hasEnv(env, "HOME")) env.push_back("HOME=" + ids.home);

  // As runc does, a missing working directory is created.
  const std::string cwd = spec.workingDir.empty() ? "/" : spec.workingDir;
  if (auto s = mkdirAll(cwd); !s.ok()) return s.error();
  if (::chdir(cwd.c_str()) != 0) {
    return Error::msg("chdir to cwd (\"" + cwd + "\") set in config.json failed: " + lowerErrno(errno));
  }
  auto path = lookPath("", spec.argv[0], env);
  if (!path.ok()) return path.error();

  if (auto s = dropBoundingSet(); !s.ok()) return s.error();
  if (!spec.user.empty()) {
    if (::setgroups(0, nullptr) != 0) return sysError("setgroups").error();
    if (::setgid(ids.gid) != 0) return sysError("setgid " + std::to_string(ids.gid)).error();
    if (::setuid(ids.uid) != 0) return sysError("setuid " + std::to_string(ids.uid)).error();
  }
  if (auto s = applyCapabilities(ids.uid == 0); !s.ok()) return s.error();

  // netd's signal mask and ignored signals must not leak into the container.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);

  std::vector<char*> argv;
  for (auto& a : spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  ::fcntl(errFd, F_SETFD, FD_CLOEXEC);
  // Last, after no_new_privs (applyCapabilities) and once nothing but execve
  // and, on failure, the error report remain: both are allowed by any
  // profile that lets a container start at all.
  if (*seccomp) {
    if (auto s = loadSeccompFilter(**seccomp); !s.ok()) return s.error();
  }
  ::execve(path->c_str(), argv.data(), envp.data());
  return Error::msg("exec: \"" + spec.argv[0] + "\": " + lowerErrno(errno), errno);
}

[[noreturn]] void runInit(int specFd, int errFd) {
  auto fail = [errFd](const std::string& text) {
    (void)!::write(errFd, text.data(), text.size());
    ::_exit(127);
  };
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(specFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("container init: read spec: " + lowerErrno(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(specFd);
  // No spec: the launcher gave up (it kills us anyway).
  if (text.empty()) ::_exit(1);
  ContainerSpec spec;
  try {
    spec = detail::specFromJson(nlohmann::json::parse(text));
  } catch (const std::exception& e) {
    fail(std::string("container init: bad spec: ") + e.what());
  }
  if (spec.argv.empty()) fail("no command specified");
  fail(startContainer(std::move(spec), errFd).message);
  ::_exit(127);
}

}  // namespace

bool maybeRunContainerInit(int argc, char** argv) {
  if (argc < 2) return false;
  const bool init = std::strcmp(argv[1], "__skiff-init") == 0;
  const bool exec = std::strcmp(argv[1], "__skiff-exec") == 0;
  if (!init && !exec) return false;
  if (argc < 4) ::_exit(127);
  if (exec) detail::runExecHelper(std::atoi(argv[2]), std::atoi(argv[3]));
  runInit(std::atoi(argv[2]), std::atoi(argv[3]));
}

}  // namespace skiff::runtime
