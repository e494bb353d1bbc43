#pragma once
// Users of a container: `user:` ("name", "uid", "name:group", "uid:gid")
// resolved against the image's /etc/passwd and /etc/group, never the host's
// NSS. The one rule for the container's init shim and `skiff container exec`.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "skiff/common/result.h"

namespace skiff::runtime {

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home = "/";
};

// Pure: a numeric uid missing from passwd is used as is (gid = uid, as
// before); a missing name or group is an error in runc's words ("unable to
// find user app: no matching entries in passwd file").
Result<UserIds> resolveUser(const std::string& user, std::string_view passwd, std::string_view group);

// Reads /etc/passwd and /etc/group below the calling process's root (a
// missing file reads as empty). Call it after entering the container's root.
Result<UserIds> resolveUserInRoot(const std::string& user);

}  // namespace skiff::runtime
