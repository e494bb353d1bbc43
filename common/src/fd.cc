#include "skiff/common/fd.h"

#include <unistd.h>

namespace skiff {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace skiff
