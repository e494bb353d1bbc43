#include "skiff/common/result.h"

#include <cstring>

namespace skiff {

Error Error::fromErrno(const std::string& what, int err) { return Error{err, what + ": " + std::strerror(err)}; }

}  // namespace skiff
