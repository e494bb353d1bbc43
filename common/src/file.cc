#include "skiff/common/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "skiff/common/fd.h"

namespace skiff {

Status readChunks(int fd, const std::string& what, const std::function<Status(std::string_view)>& sink) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("read " + what);
    }
    if (n == 0) return okStatus();
    SKIFF_TRY(sink(std::string_view(buf, static_cast<size_t>(n))));
  }
}

Status writeAll(int fd, std::string_view data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("write " + what);
    }
    off += static_cast<size_t>(w);
  }
  return okStatus();
}

Result<std::string> readFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open " + path);
  std::string out;
  SKIFF_TRY(readChunks(fd.get(), path, [&out](std::string_view chunk) {
    out.append(chunk);
    return okStatus();
  }));
  return out;
}

Status writeFileAtomic(const std::string& path, std::string_view content, unsigned mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    // O_EXCL after removing a leftover temp file: the mode asked for is the
    // one the new file gets (O_CREAT keeps an existing file's mode).
    ::unlink(tmp.c_str());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode)));
    if (!fd) return Error::fromErrno("create " + tmp);
    Status written = writeAll(fd.get(), content, tmp);
    if (written.ok() && ::fsync(fd.get()) != 0) written = Error::fromErrno("fsync " + tmp);
    if (!written.ok()) {
      ::unlink(tmp.c_str());
      return written;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno("rename " + tmp + " to " + path, err);
  }
  return okStatus();
}

}  // namespace skiff
