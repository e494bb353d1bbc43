// Seccomp in real containers, as a user of docker would check it: under the
// default profile a replica cannot make a user namespace, reach the kernel
// keyring or mount, while an ordinary program runs; `seccomp=unconfined`
// lifts the filter; a profile of the user's own applies its rules; a bad
// profile fails the launch with the reason.

#include "container_fixture.h"

namespace skiff::runtime::testing {
namespace {

class ContainerSeccomp : public ContainerFixture {
 protected:
  std::string probe(ContainerSpec spec) {
    auto l = launch(spec);
    if (!l.ok()) return "launch failed: " + l.error().message;
    return trim(waitForLog(spec));
  }
};

TEST_F(ContainerSeccomp, DefaultProfileRefusesUnshareKeyctlAndMountWhileAProgramRuns) {
  auto spec = makeSpec({"helper", "seccomp"});
  // Seccomp: 2 is "filter"; getpid (and everything the helper needed to start
  // and print) goes through.
  EXPECT_EQ(probe(spec), "seccomp=2 unshare_user=EPERM keyctl=EPERM mount=EPERM getpid=ok");
}

TEST_F(ContainerSeccomp, DefaultProfileAlsoAppliesToANonRootUser) {
  auto spec = makeSpec({"helper", "seccomp"});
  spec.user = "1000";
  EXPECT_EQ(probe(spec), "seccomp=2 unshare_user=EPERM keyctl=EPERM mount=EPERM getpid=ok");
}

TEST_F(ContainerSeccomp, UnconfinedLetsUnshareOfAUserNamespaceAndKeyctlThrough) {
  auto spec = makeSpec({"helper", "seccomp"});
  spec.seccomp = SeccompMode::kUnconfined;
  // mount stays refused: CAP_SYS_ADMIN is not among the kept capabilities.
  EXPECT_EQ(probe(spec), "seccomp=0 unshare_user=ok keyctl=ok mount=EPERM getpid=ok");
}

TEST_F(ContainerSeccomp, AProfileOfTheUsersOwnAppliesItsRules) {
  auto spec = makeSpec({"helper", "seccomp"});
  spec.seccomp = SeccompMode::kProfile;
  spec.seccompProfile = R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})";
  EXPECT_EQ(probe(spec), "seccomp=2 unshare_user=ok keyctl=ENOSYS mount=EPERM getpid=ok");
}

TEST_F(ContainerSeccomp, ABadProfileFailsTheLaunchWithTheReason) {
  auto spec = makeSpec({"helper", "seccomp"});
  spec.seccomp = SeccompMode::kProfile;
  spec.seccompProfile = R"({"syscalls": []})";
  auto l = launch(spec);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().message, "seccomp profile: missing \"defaultAction\"");
}

}  // namespace
}  // namespace skiff::runtime::testing
