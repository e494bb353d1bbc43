#pragma once
// seccomp for containers: Docker's default profile, and profiles in Docker's
// JSON format (`security_opt: [seccomp=FILE]`, `seccomp=unconfined`).
//
// Design note: a profile goes through three steps, as in Docker + runc.
//  1. parseSeccompProfile: JSON text -> SeccompProfile. Pure; every error names
//     the field ("syscalls[3].action: unknown action \"SCMP_ACT_FOO\""), so the
//     compose parser can refuse a bad file with its name before deploy.
//  2. planSeccompFilter: profile + the container's context (architecture,
//     bounding capabilities, kernel version) -> SeccompFilterPlan, the rules
//     that apply, as Docker's setupSeccomp filters `includes`/`excludes`
//     (caps, arches, minKernel) and expands `archMap`. Pure.
//  3. loadSeccompFilter (src/seccomp_load.cc, libseccomp): builds the BPF
//     program and loads it into the calling thread. Only this step touches the
//     kernel. Syscall names libseccomp does not know are skipped (as Docker
//     does), and so are rules whose action is the default action (as runc).
// The container's init shim loads the filter as its last step before execve,
// after setuid, capabilities and no_new_privs; `skiff container exec` loads
// the same filter before it execs the command.
//
// Threading: all of these are plain functions; loadSeccompFilter acts on the
// calling thread only (no TSYNC): call it in a single-threaded process.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::runtime {

enum class SeccompAction { kAllow, kErrno, kKillThread, kKillProcess, kTrap, kTrace, kLog };
const char* toString(SeccompAction action);  // "SCMP_ACT_ERRNO", ...

enum class SeccompOp { kNotEqual, kLess, kLessEqual, kEqual, kGreaterEqual, kGreater, kMaskedEqual };
const char* toString(SeccompOp op);  // "SCMP_CMP_EQ", ...

struct SeccompArg {
  unsigned index = 0;     // 0..5
  uint64_t value = 0;     // for kMaskedEqual: the mask
  uint64_t valueTwo = 0;  // for kMaskedEqual: the value the masked argument must equal
  SeccompOp op = SeccompOp::kEqual;
  bool operator==(const SeccompArg&) const = default;
};

struct KernelVersion {
  int kernel = 0;  // 5 in "5.10.0-23-amd64"
  int major = 0;   // 10
  bool operator==(const KernelVersion&) const = default;
};
// "5.10.0-23-amd64" -> {5, 10}, as Docker reads uname's release (only the
// first two numbers count). Errors name the text.
Result<KernelVersion> parseKernelRelease(std::string_view release);

// `includes` / `excludes` of a syscall block.
struct SeccompFilterCondition {
  std::vector<std::string> caps;    // "CAP_SYS_ADMIN"
  std::vector<std::string> arches;  // Go's names: "amd64", "arm64", "s390x"
  std::optional<KernelVersion> minKernel;
  bool operator==(const SeccompFilterCondition&) const = default;
};

struct SeccompSyscallBlock {
  std::vector<std::string> names;  // "names", or the older single "name"
  SeccompAction action = SeccompAction::kAllow;
  std::optional<uint32_t> errnoRet;  // for kErrno (default EPERM) and kTrace
  std::vector<SeccompArg> args;
  SeccompFilterCondition includes;
  SeccompFilterCondition excludes;
  bool operator==(const SeccompSyscallBlock&) const = default;
};

struct SeccompArchMapEntry {
  std::string architecture;                   // "SCMP_ARCH_X86_64"
  std::vector<std::string> subArchitectures;  // "SCMP_ARCH_X86", "SCMP_ARCH_X32"
  bool operator==(const SeccompArchMapEntry&) const = default;
};

struct SeccompProfile {
  SeccompAction defaultAction = SeccompAction::kAllow;
  std::optional<uint32_t> defaultErrnoRet;
  std::vector<std::string> architectures;  // the older flat form; exclusive with archMap
  std::vector<SeccompArchMapEntry> archMap;
  std::vector<SeccompSyscallBlock> syscalls;
  bool operator==(const SeccompProfile&) const = default;
};

// Parses a profile in Docker's JSON format. Unknown keys ("comment", and
// newer ones such as "flags") are ignored, as Docker's decoder does; wrong
// types, unknown actions or operators, an argument index past 5, and both
// "name" and "names" in one block are errors naming the field.
Result<SeccompProfile> parseSeccompProfile(std::string_view json);

// Docker's default profile (runtime/seccomp/default.json, compiled in).
std::string_view defaultSeccompProfileJson();

// What a profile is filtered against, as Docker does for a container.
struct SeccompContext {
  std::string goArch;                  // runtime.GOARCH's name for this machine: "amd64"
  std::set<std::string> capabilities;  // the container's bounding set: "CAP_CHOWN", ...
  KernelVersion kernel;
};
// This machine (architecture from the build, kernel from uname) with the
// capabilities every container keeps (privileges.h).
Result<SeccompContext> hostSeccompContext();

// One rule to add: every name gets the action when all args hold.
struct SeccompRule {
  std::vector<std::string> names;
  SeccompAction action = SeccompAction::kAllow;
  uint32_t errnoRet = 0;  // kErrno: the errno returned; kTrace: the tracer's message
  std::vector<SeccompArg> args;
  bool operator==(const SeccompRule&) const = default;
};

struct SeccompFilterPlan {
  SeccompAction defaultAction = SeccompAction::kAllow;
  uint32_t defaultErrnoRet = 0;
  // libseccomp's names, native first: "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", ...
  // Empty = only the native architecture.
  std::vector<std::string> architectures;
  std::vector<SeccompRule> rules;  // in the profile's order
  bool operator==(const SeccompFilterPlan&) const = default;
};

// Docker's setupSeccomp: keeps the blocks whose includes hold and whose
// excludes do not (caps against the bounding set, arches against goArch,
// minKernel against the kernel), and picks archMap's entry for this machine.
// Errors: both "architectures" and "archMap" given.
Result<SeccompFilterPlan> planSeccompFilter(const SeccompProfile& profile, const SeccompContext& context);

// parse + plan in one step.
Result<SeccompFilterPlan> planSeccompFilter(std::string_view json, const SeccompContext& context);

// Which filter a container gets.
enum class SeccompMode {
  kDefault,     // Docker's default profile (compiled in)
  kUnconfined,  // none (`security_opt: [seccomp=unconfined]`)
  kProfile,     // a profile given as JSON text
};
const char* toString(SeccompMode mode);  // "default" | "unconfined" | "profile"
// Throws nothing: unknown text -> nullopt.
std::optional<SeccompMode> seccompModeFromString(std::string_view text);
// ServiceSpec::seccomp ("" | "unconfined" | a profile file) -> the mode.
SeccompMode seccompModeOf(std::string_view serviceSeccomp);

// As Docker's `inspect` shows HostConfig.SecurityOpt: [] for the default,
// ["seccomp=unconfined"], or ["seccomp=<the profile's JSON>"]; and back
// (other entries are ignored). `skiff container exec` reads it so the
// command gets the replica's filter.
std::vector<std::string> securityOptOf(SeccompMode mode, std::string_view profileJson);
std::pair<SeccompMode, std::string> seccompFromSecurityOpt(const std::vector<std::string>& opts);

// The plan for a container on this host (hostSeccompContext): nullopt when
// unconfined. Errors say "seccomp profile: <what is wrong>".
Result<std::optional<SeccompFilterPlan>> seccompPlanFor(SeccompMode mode, std::string_view profileJson);

// The BPF program libseccomp makes for the plan (no kernel involved): what
// loadSeccompFilter would load. For tests and for checking a plan early.
Result<std::string> compileSeccompFilter(const SeccompFilterPlan& plan);

// Loads the plan's filter into the calling thread. Needs no_new_privs (or
// CAP_SYS_ADMIN). After it returns, the filter applies to every syscall of
// this thread and of what it execs; it cannot be removed.
[[nodiscard]] Status loadSeccompFilter(const SeccompFilterPlan& plan);

}  // namespace skiff::runtime
