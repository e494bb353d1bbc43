// The kernel-facing half of seccomp: a SeccompFilterPlan becomes a libseccomp
// filter, exported as BPF (tests) or loaded into the calling thread (the
// container's init shim and `skiff container exec`, right before execve).

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/runtime/privileges.h"
#include "skiff/runtime/seccomp.h"

namespace skiff::runtime {
namespace {

struct CtxRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterCtx = std::unique_ptr<void, CtxRelease>;

// libseccomp returns -errno.
Error scmpError(const std::string& what, int rc) {
  return Error::msg("seccomp: " + what + ": " + std::strerror(-rc), -rc);
}

uint32_t actionCode(SeccompAction action, uint32_t errnoRet) {
  switch (action) {
    case SeccompAction::kAllow:
      return SCMP_ACT_ALLOW;
    case SeccompAction::kErrno:
      return SCMP_ACT_ERRNO(errnoRet);
    case SeccompAction::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case SeccompAction::kKillProcess:
      return SCMP_ACT_KILL_PROCESS;
    case SeccompAction::kTrap:
      return SCMP_ACT_TRAP;
    case SeccompAction::kTrace:
      return SCMP_ACT_TRACE(errnoRet);
    case SeccompAction::kLog:
      return SCMP_ACT_LOG;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare compareOp(SeccompOp op) {
  switch (op) {
    case SeccompOp::kNotEqual:
      return SCMP_CMP_NE;
    case SeccompOp::kLess:
      return SCMP_CMP_LT;
    case SeccompOp::kLessEqual:
      return SCMP_CMP_LE;
    case SeccompOp::kEqual:
      return SCMP_CMP_EQ;
    case SeccompOp::kGreaterEqual:
      return SCMP_CMP_GE;
    case SeccompOp::kGreater:
      return SCMP_CMP_GT;
    case SeccompOp::kMaskedEqual:
      return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

scmp_arg_cmp argCompare(const SeccompArg& a) {
  scmp_arg_cmp c{};
  c.arg = a.index;
  c.op = compareOp(a.op);
  c.datum_a = a.value;
  c.datum_b = a.valueTwo;
  return c;
}

// "SCMP_ARCH_X86_64" -> libseccomp's token for "x86_64".
Result<uint32_t> archToken(const std::string& name) {
  std::string shortName = name.rfind("SCMP_ARCH_", 0) == 0 ? name.substr(10) : name;
  for (auto& c : shortName) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const uint32_t token = seccomp_arch_resolve_name(shortName.c_str());
  if (token == 0) return Error::msg("seccomp: unknown architecture \"" + name + "\"", EINVAL);
  return token;
}

Result<FilterCtx> buildFilter(const SeccompFilterPlan& plan) {
  const uint32_t defaultAction = actionCode(plan.defaultAction, plan.defaultErrnoRet);
  FilterCtx ctx(seccomp_init(defaultAction));
  if (!ctx) return Error::msg("seccomp: cannot create a filter (seccomp_init)", ENOMEM);
  for (const auto& arch : plan.architectures) {
    auto token = archToken(arch);
    if (!token.ok()) return token.error();
    // The native architecture is already there (EEXIST).
    const int rc = seccomp_arch_add(ctx.get(), *token);
    if (rc != 0 && rc != -EEXIST) return scmpError("add architecture " + arch, rc);
  }
  for (const auto& rule : plan.rules) {
    const uint32_t action = actionCode(rule.action, rule.errnoRet);
    // libseccomp refuses a rule that only repeats the default; runc skips it.
    if (action == defaultAction) continue;
    std::vector<scmp_arg_cmp> conds;
    bool repeatedIndex = false;
    unsigned seen[6] = {};
    for (const auto& a : rule.args) {
      conds.push_back(argCompare(a));
      if (++seen[a.index] > 1) repeatedIndex = true;
    }
    for (const auto& name : rule.names) {
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      // A syscall this libseccomp does not know: Docker skips it too.
      if (nr == __NR_SCMP_ERROR) continue;
      auto add = [&](const scmp_arg_cmp* c, unsigned n) -> Status {
        const int rc = seccomp_rule_add_array(ctx.get(), action, nr, n, c);
        if (rc != 0) return scmpError("add rule for " + name, rc);
        return okStatus();
      };
      // libseccomp ANDs the conditions of one rule but cannot test one
      // argument twice; as runc does, such conditions become one rule each.
      if (repeatedIndex) {
        for (const auto& c : conds) SKIFF_TRY(add(&c, 1));
      } else {
        SKIFF_TRY(add(conds.data(), static_cast<unsigned>(conds.size())));
      }
    }
  }
  return ctx;
}

}  // namespace

Result<SeccompContext> hostSeccompContext() {
  SeccompContext ctx;
#if defined(__x86_64__)
  ctx.goArch = "amd64";
#elif defined(__aarch64__)
  ctx.goArch = "arm64";
#elif defined(__i386__)
  ctx.goArch = "386";
#elif defined(__arm__)
  ctx.goArch = "arm";
#elif defined(__s390x__)
  ctx.goArch = "s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  ctx.goArch = "ppc64le";
#elif defined(__riscv) && __riscv_xlen == 64
  ctx.goArch = "riscv64";
#endif
  utsname uts{};
  if (::uname(&uts) != 0) return Error::fromErrno("uname");
  auto kernel = parseKernelRelease(uts.release);
  if (!kernel.ok()) return kernel.error();
  ctx.kernel = *kernel;
  for (const auto& cap : keptCapabilityNames()) ctx.capabilities.insert(cap);
  return ctx;
}

Result<std::optional<SeccompFilterPlan>> seccompPlanFor(SeccompMode mode, std::string_view profileJson) {
  if (mode == SeccompMode::kUnconfined) return std::optional<SeccompFilterPlan>();
  auto context = hostSeccompContext();
  if (!context.ok()) return Error::msg("seccomp profile: " + context.error().message);
  auto plan = planSeccompFilter(mode == SeccompMode::kDefault ? defaultSeccompProfileJson() : profileJson, *context);
  if (!plan.ok()) return Error::msg("seccomp profile: " + plan.error().message, plan.error().code);
  return std::optional<SeccompFilterPlan>(std::move(*plan));
}

Result<std::string> compileSeccompFilter(const SeccompFilterPlan& plan) {
  auto ctx = buildFilter(plan);
  if (!ctx.ok()) return ctx.error();
  UniqueFd fd(::memfd_create("skiff-seccomp-bpf", MFD_CLOEXEC));
  if (!fd) return Error::fromErrno("memfd_create");
  if (const int rc = seccomp_export_bpf(ctx->get(), fd.get()); rc != 0) return scmpError("export BPF", rc);
  std::string out;
  char buf[4096];
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return Error::fromErrno("lseek");
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read BPF");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status loadSeccompFilter(const SeccompFilterPlan& plan) {
  auto ctx = buildFilter(plan);
  if (!ctx.ok()) return ctx.error();
  if (const int rc = seccomp_load(ctx->get()); rc != 0) return scmpError("load the filter", rc);
  return okStatus();
}

}  // namespace skiff::runtime
