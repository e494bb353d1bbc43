// Privileges of a process that runs inside a container: the replica's
// command (container_init.cc) and `skiff container exec` (the CLI) both end
// with these calls before execve.
#include "skiff/runtime/privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <string>

namespace skiff::runtime {
namespace {

// Docker's default capabilities minus CAP_MKNOD: there is no devices cgroup
// yet, so a node made in the container would reach the host's devices.
constexpr int kKeptCaps[] = {CAP_CHOWN,      CAP_DAC_OVERRIDE, CAP_FSETID,     CAP_FOWNER,  CAP_NET_RAW,
                             CAP_SETGID,     CAP_SETUID,       CAP_SETFCAP,    CAP_SETPCAP, CAP_NET_BIND_SERVICE,
                             CAP_SYS_CHROOT, CAP_KILL,         CAP_AUDIT_WRITE};
// The same, by the names Docker's profiles use; in the order above.
constexpr const char* kKeptCapNames[] = {"CAP_CHOWN",      "CAP_DAC_OVERRIDE",     "CAP_FSETID",     "CAP_FOWNER",
                                         "CAP_NET_RAW",    "CAP_SETGID",           "CAP_SETUID",     "CAP_SETFCAP",
                                         "CAP_SETPCAP",    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
                                         "CAP_AUDIT_WRITE"};
static_assert(std::size(kKeptCaps) == std::size(kKeptCapNames));

bool isKept(int cap) {
  for (int k : kKeptCaps) {
    if (k == cap) return true;
  }
  return false;
}

Status sysError(const std::string& what) { return Error::fromErrno(what); }

}  // namespace

std::vector<std::string> keptCapabilityNames() { return {std::begin(kKeptCapNames), std::end(kKeptCapNames)}; }

// Needs CAP_SETPCAP, so it runs before setuid drops the effective set.
Status dropBoundingSet() {
  for (int cap = 0; cap <= 63; ++cap) {
    if (isKept(cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the kernel's last capability
      return sysError("drop capability " + std::to_string(cap) + " from the bounding set");
    }
  }
  return okStatus();
}

// After setuid: root keeps exactly the kept set (it also becomes root's set
// across execve, which is bounded by the set above); another uid has none,
// as setuid already cleared them. Inheritable and ambient are empty (docker
// since CVE-2022-24769), so no file can pick a capability up on exec, and
// no_new_privs stops setuid binaries from regaining any.
Status applyCapabilities(bool root) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (root) {
    for (int cap : kKeptCaps) {
      data[cap / 32].effective |= 1u << (cap % 32);
      data[cap / 32].permitted |= 1u << (cap % 32);
    }
  }
  if (::syscall(SYS_capset, &header, data) != 0) return sysError("capset");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return sysError("clear ambient capabilities");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sysError("set no_new_privs");
  return okStatus();
}

}  // namespace skiff::runtime
