// Seccomp profiles in Docker's JSON: what Docker's default profile becomes on
// a given machine (architectures, rules kept or dropped by caps, arches and
// kernel), small profiles planned to exact rules, and errors that name the
// field. No kernel: the filter is compiled to BPF, never loaded.

#include <gtest/gtest.h>

#include <algorithm>

#include "skiff/runtime/privileges.h"
#include "skiff/runtime/seccomp.h"

namespace skiff::runtime {
namespace {

SeccompContext dockerDefaults(std::string goArch = "amd64", KernelVersion kernel = {6, 1}) {
  SeccompContext ctx;
  ctx.goArch = std::move(goArch);
  ctx.kernel = kernel;
  for (const auto& cap : keptCapabilityNames()) ctx.capabilities.insert(cap);
  return ctx;
}

SeccompFilterPlan defaultPlan(const SeccompContext& ctx) {
  auto plan = planSeccompFilter(defaultSeccompProfileJson(), ctx);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  return plan.ok() ? *plan : SeccompFilterPlan{};
}

// The rules that name `syscall`, in order.
std::vector<SeccompRule> rulesFor(const SeccompFilterPlan& plan, const std::string& syscall) {
  std::vector<SeccompRule> out;
  for (const auto& r : plan.rules) {
    if (std::find(r.names.begin(), r.names.end(), syscall) != r.names.end()) out.push_back(r);
  }
  return out;
}

std::string errorOf(const std::string& json) {
  auto p = parseSeccompProfile(json);
  return p.ok() ? "" : p.error().message;
}

TEST(SeccompProfile, DockersDefaultProfileParsesAsDockerWroteIt) {
  auto p = parseSeccompProfile(defaultSeccompProfileJson());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->defaultAction, SeccompAction::kErrno);
  EXPECT_FALSE(p->defaultErrnoRet.has_value());
  ASSERT_EQ(p->archMap.size(), 7u);
  EXPECT_EQ(p->archMap[0].architecture, "SCMP_ARCH_X86_64");
  EXPECT_EQ(p->archMap[0].subArchitectures, (std::vector<std::string>{"SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  ASSERT_EQ(p->syscalls.size(), 28u);
  EXPECT_EQ(p->syscalls[0].names.size(), 346u);
  EXPECT_EQ(p->syscalls[0].names.front(), "accept");
  EXPECT_EQ(p->syscalls[1].names, std::vector<std::string>{"ptrace"});
  EXPECT_EQ(p->syscalls[1].includes.minKernel, (KernelVersion{4, 8}));
}

TEST(SeccompProfile, DefaultOnAmd64AddsX86AndX32AndReturnsEpermForTheRest) {
  const auto plan = defaultPlan(dockerDefaults());
  EXPECT_EQ(plan.defaultAction, SeccompAction::kErrno);
  EXPECT_EQ(plan.defaultErrnoRet, 1u);  // EPERM
  EXPECT_EQ(plan.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  // 1 big allow list, ptrace, 5 personality values, arch_prctl, modify_ldt,
  // clone without namespace flags, clone3 -> ENOSYS, chroot (CAP_SYS_CHROOT
  // is kept); nothing that needs a capability containers do not keep.
  EXPECT_EQ(plan.rules.size(), 12u);
}

TEST(SeccompProfile, DefaultNeverAllowsUnshareMountKeyctlOrSetnsWithoutSysAdmin) {
  const auto plan = defaultPlan(dockerDefaults());
  for (const char* name : {"unshare", "mount", "umount2", "keyctl", "add_key", "request_key", "setns", "bpf",
                           "pivot_root", "init_module", "reboot", "syslog"}) {
    EXPECT_TRUE(rulesFor(plan, name).empty()) << name << " has a rule";
  }
  // What a normal program needs is allowed without condition.
  for (const char* name :
       {"read", "write", "execve", "openat", "mmap", "exit_group", "rseq", "close_range", "socket", "accept4"}) {
    const auto rules = rulesFor(plan, name);
    ASSERT_EQ(rules.size(), 1u) << name;
    EXPECT_EQ(rules[0].action, SeccompAction::kAllow) << name;
    EXPECT_TRUE(rules[0].args.empty()) << name;
  }
}

TEST(SeccompProfile, CloneIsAllowedOnlyWithoutNamespaceFlagsAndClone3SaysEnosys) {
  const auto plan = defaultPlan(dockerDefaults());
  const auto clone = rulesFor(plan, "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_EQ(clone[0].action, SeccompAction::kAllow);
  // CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET = 0x7E020000:
  // allowed when (flags & mask) == 0.
  EXPECT_EQ(clone[0].args, (std::vector<SeccompArg>{{0, 2114060288u, 0, SeccompOp::kMaskedEqual}}));
  const auto clone3 = rulesFor(plan, "clone3");
  ASSERT_EQ(clone3.size(), 1u);
  EXPECT_EQ(clone3[0].action, SeccompAction::kErrno);
  EXPECT_EQ(clone3[0].errnoRet, 38u);  // ENOSYS: libc falls back to clone
}

TEST(SeccompProfile, CapSysAdminBringsBackMountUnshareAndUnconditionalClone) {
  auto ctx = dockerDefaults();
  ctx.capabilities.insert("CAP_SYS_ADMIN");
  const auto plan = defaultPlan(ctx);
  ASSERT_EQ(rulesFor(plan, "mount").size(), 1u);
  ASSERT_EQ(rulesFor(plan, "unshare").size(), 1u);
  const auto clone = rulesFor(plan, "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_TRUE(clone[0].args.empty());
  EXPECT_EQ(rulesFor(plan, "clone3")[0].action, SeccompAction::kAllow);
  EXPECT_TRUE(rulesFor(plan, "keyctl").empty());  // no capability allows the keyring
}

TEST(SeccompProfile, WithoutCapSysChrootChrootIsRefused) {
  auto ctx = dockerDefaults();
  ctx.capabilities.erase("CAP_SYS_CHROOT");
  EXPECT_TRUE(rulesFor(defaultPlan(ctx), "chroot").empty());
  EXPECT_EQ(rulesFor(defaultPlan(dockerDefaults()), "chroot").size(), 1u);
}

TEST(SeccompProfile, PtraceNeedsKernel48) {
  EXPECT_TRUE(rulesFor(defaultPlan(dockerDefaults("amd64", {4, 4})), "ptrace").empty());
  EXPECT_EQ(rulesFor(defaultPlan(dockerDefaults("amd64", {4, 8})), "ptrace").size(), 1u);
  EXPECT_EQ(rulesFor(defaultPlan(dockerDefaults("amd64", {5, 0})), "ptrace").size(), 1u);
}

TEST(SeccompProfile, Arm64GetsArmAndItsOwnSyscallsButNotX86Ones) {
  const auto plan = defaultPlan(dockerDefaults("arm64"));
  EXPECT_EQ(plan.architectures, (std::vector<std::string>{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}));
  EXPECT_EQ(rulesFor(plan, "breakpoint").size(), 1u);
  EXPECT_TRUE(rulesFor(plan, "arch_prctl").empty());
  EXPECT_TRUE(rulesFor(plan, "modify_ldt").empty());
}

TEST(SeccompProfile, S390xUsesTheSecondArgumentOfClone) {
  const auto clone = rulesFor(defaultPlan(dockerDefaults("s390x")), "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_EQ(clone[0].args, (std::vector<SeccompArg>{{1, 2114060288u, 0, SeccompOp::kMaskedEqual}}));
}

TEST(SeccompProfile, SmallProfilePlansToExactRules) {
  const char* json = R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
      {"names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "comment": "no keys"},
      {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]},
      {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS", "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
      {"names": ["reboot"], "action": "SCMP_ACT_LOG", "includes": {"caps": ["CAP_SYS_BOOT"]}},
      {"names": ["uname"], "action": "SCMP_ACT_TRAP", "includes": {"arches": ["arm64"]}}
    ],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"]
  })";
  auto plan = planSeccompFilter(json, dockerDefaults());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  SeccompFilterPlan want;
  want.defaultAction = SeccompAction::kAllow;
  want.defaultErrnoRet = 0;
  want.rules = {{{"keyctl", "add_key"}, SeccompAction::kErrno, 38, {}},
                {{"personality"}, SeccompAction::kErrno, 1, {{0, 8, 0, SeccompOp::kNotEqual}}},
                {{"ptrace"}, SeccompAction::kKillProcess, 0, {}}};
  EXPECT_EQ(*plan, want);
}

TEST(SeccompProfile, OlderFormatWithNameAndArchitecturesAndDefaultErrnoRet) {
  const char* json = R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [{"name": "getpid", "action": "SCMP_ACT_ALLOW", "args": []},
                 {"name": "kill", "action": "SCMP_ACT_KILL"}]
  })";
  auto plan = planSeccompFilter(json, dockerDefaults());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  SeccompFilterPlan want;
  want.defaultAction = SeccompAction::kErrno;
  want.defaultErrnoRet = 38;
  want.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"};
  want.rules = {{{"getpid"}, SeccompAction::kAllow, 0, {}}, {{"kill"}, SeccompAction::kKillThread, 0, {}}};
  EXPECT_EQ(*plan, want);
}

TEST(SeccompProfile, ErrorsNameTheField) {
  EXPECT_EQ(errorOf("{"),
            "invalid JSON: parse error at line 1, column 2: syntax error while "
            "parsing object key - unexpected end of input; expected string literal");
  EXPECT_EQ(errorOf("[]"), "a seccomp profile is a JSON object, got array");
  EXPECT_EQ(errorOf(R"({"syscalls": []})"), "missing \"defaultAction\"");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_NOPE"})"), "defaultAction: unknown action \"SCMP_ACT_NOPE\"");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}})"), "syscalls: expected a list, got object");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                                     {"names": ["x"], "action": "ALLOW"}]})"),
            "syscalls[1].action: unknown action \"ALLOW\"");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})"),
            "syscalls[0].args[0].index: 6 is out of range (at most 5)");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]})"),
            "syscalls[0].args[0].value: expected a non-negative integer, got -1");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 0, "value": 1, "op": "EQ"}]}]})"),
            "syscalls[0].args[0].op: unknown operator \"EQ\"");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]})"),
            "syscalls[0]: 'name' and 'names' were specified in the seccomp profile, use either "
            "'name' or 'names'");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]})"),
            "syscalls[0]: no syscall names (\"names\": [...])");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                                      "includes": {"minKernel": "four"}}]})"),
            "syscalls[0].includes.minKernel: invalid kernel version \"four\" (expected "
            "<kernel>.<major>, e.g. \"4.8\")");
  EXPECT_EQ(errorOf(R"({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}]})"),
            "syscalls[0].errnoRet: 5000 is out of range (at most 4095)");
}

TEST(SeccompProfile, ArchitecturesAndArchMapTogetherAreRefusedWhenPlanned) {
  auto plan = planSeccompFilter(
      R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
          "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]})",
      dockerDefaults());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message,
            "'architectures' and 'archMap' were specified in the seccomp profile, use either "
            "'architectures' or 'archMap'");
}

TEST(SeccompProfile, KernelReleasesAsDockerReadsThem) {
  EXPECT_EQ(*parseKernelRelease("6.18.44-fc-v1045"), (KernelVersion{6, 18}));
  EXPECT_EQ(*parseKernelRelease("3.12-1-amd64"), (KernelVersion{3, 12}));
  EXPECT_EQ(*parseKernelRelease("4.8"), (KernelVersion{4, 8}));
  ASSERT_FALSE(parseKernelRelease("linux").ok());
  EXPECT_EQ(parseKernelRelease("linux").error().message, "failed to parse kernel version \"linux\"");
  EXPECT_FALSE(parseKernelRelease("5").ok());
}

TEST(SeccompProfile, SecurityOptAsInspectShowsItRoundTrips) {
  EXPECT_EQ(securityOptOf(SeccompMode::kDefault, ""), std::vector<std::string>{});
  EXPECT_EQ(securityOptOf(SeccompMode::kUnconfined, ""), std::vector<std::string>{"seccomp=unconfined"});
  EXPECT_EQ(securityOptOf(SeccompMode::kProfile, "{}"), std::vector<std::string>{"seccomp={}"});
  EXPECT_EQ(seccompFromSecurityOpt({}), std::make_pair(SeccompMode::kDefault, std::string()));
  EXPECT_EQ(seccompFromSecurityOpt({"label=disable", "seccomp=unconfined"}),
            std::make_pair(SeccompMode::kUnconfined, std::string()));
  EXPECT_EQ(seccompFromSecurityOpt({"seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"}),
            std::make_pair(SeccompMode::kProfile, std::string("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}")));
  EXPECT_EQ(seccompModeOf(""), SeccompMode::kDefault);
  EXPECT_EQ(seccompModeOf("unconfined"), SeccompMode::kUnconfined);
  EXPECT_EQ(seccompModeOf("/srv/profile.json"), SeccompMode::kProfile);
  EXPECT_EQ(seccompModeFromString("profile"), SeccompMode::kProfile);
  EXPECT_EQ(seccompModeFromString("other"), std::nullopt);
}

// libseccomp, without the kernel: Docker's default compiles for this
// machine, and names libseccomp does not know are skipped as Docker does.
TEST(SeccompProfile, DefaultCompilesToBpfAndUnknownNamesAreSkipped) {
  auto bpf = compileSeccompFilter(defaultPlan(dockerDefaults()));
  ASSERT_TRUE(bpf.ok()) << bpf.error().message;
  EXPECT_GT(bpf->size(), 8u * 100);  // hundreds of 8-byte instructions
  EXPECT_EQ(bpf->size() % 8, 0u);

  SeccompFilterPlan plan;
  plan.defaultAction = SeccompAction::kErrno;
  plan.defaultErrnoRet = 1;
  plan.rules = {
      {{"no_such_syscall_at_all", "getpid"}, SeccompAction::kAllow, 0, {}},
      // The same as the default: skipped (libseccomp refuses it).
      {{"getppid"}, SeccompAction::kErrno, 1, {}},
      // Two conditions on one argument become two rules, as in runc.
      {{"personality"}, SeccompAction::kAllow, 0, {{0, 0, 0, SeccompOp::kEqual}, {0, 8, 0, SeccompOp::kEqual}}}};
  auto small = compileSeccompFilter(plan);
  ASSERT_TRUE(small.ok()) << small.error().message;
  EXPECT_GT(small->size(), 0u);

  plan.architectures = {"SCMP_ARCH_NOPE"};
  auto bad = compileSeccompFilter(plan);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "seccomp: unknown architecture \"SCMP_ARCH_NOPE\"");
}

}  // namespace
}  // namespace skiff::runtime
