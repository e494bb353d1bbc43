// `user:` against an image's passwd and group files, as the container's init
// and `skiff container exec` resolve it.

#include "skiff/runtime/user.h"

#include <gtest/gtest.h>

namespace skiff::runtime {
namespace {

const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "broken:x:notanumber:0::/:/bin/sh\n"
    "app:x:1000:1001:App:/home/app:/bin/sh\n";
const char* kGroup = "root:x:0:\nstaff:x:50:app\n";

std::string describe(const Result<UserIds>& r) {
  if (!r.ok()) return r.error().message;
  return std::to_string(r->uid) + ":" + std::to_string(r->gid) + " " + r->home;
}

TEST(ResolveUser, NamesAndNumbersFromThePasswdFile) {
  EXPECT_EQ(describe(resolveUser("app", kPasswd, kGroup)), "1000:1001 /home/app");
  EXPECT_EQ(describe(resolveUser("1000", kPasswd, kGroup)), "1000:1001 /home/app");
  EXPECT_EQ(describe(resolveUser("0", kPasswd, kGroup)), "0:0 /root");
}

TEST(ResolveUser, ANumberMissingFromPasswdIsUsedAsIs) {
  EXPECT_EQ(describe(resolveUser("4242", kPasswd, kGroup)), "4242:4242 /");
  EXPECT_EQ(describe(resolveUser("1000", "", "")), "1000:1000 /");
}

TEST(ResolveUser, GroupsByNameOrNumber) {
  EXPECT_EQ(describe(resolveUser("app:staff", kPasswd, kGroup)), "1000:50 /home/app");
  EXPECT_EQ(describe(resolveUser("1000:7", kPasswd, kGroup)), "1000:7 /home/app");
}

TEST(ResolveUser, UnknownNamesSayWhichFileHadNoEntry) {
  EXPECT_EQ(describe(resolveUser("nobody", kPasswd, kGroup)),
            "unable to find user nobody: no matching entries in passwd file");
  EXPECT_EQ(describe(resolveUser("broken", kPasswd, kGroup)),
            "unable to find user broken: no matching entries in passwd file");
  EXPECT_EQ(describe(resolveUser("app:wheel", kPasswd, kGroup)),
            "unable to find group wheel: no matching entries in group file");
}

}  // namespace
}  // namespace skiff::runtime
