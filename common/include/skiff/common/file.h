#pragma once
// Whole-file reads and writes with the loops done once: EINTR retried, short
// writes continued, errors as Error::fromErrno("<op> <path>"). Plain
// blocking I/O for config and state files, not for the data path.

#include <functional>
#include <string>
#include <string_view>

#include "skiff/common/result.h"

namespace skiff {

// Reads fd to EOF, giving each chunk to `sink` (which may stop the read by
// returning an error); a read error is "read <what>".
[[nodiscard]] Status readChunks(int fd, const std::string& what,
                                const std::function<Status(std::string_view chunk)>& sink);

// Writes all of data to fd; an error is "write <what>".
[[nodiscard]] Status writeAll(int fd, std::string_view data, const std::string& what);

// The whole content of path.
[[nodiscard]] Result<std::string> readFile(const std::string& path);

// Replaces path with content (mode 0644, or `mode` less the umask) so that a
// reader sees the old or the new content, never a part: written to
// "<path>.tmp.<pid>", fsync'd, then renamed over path. The temp file is
// removed on any failure. A secret gets 0600: it is never readable by others,
// not even for a moment.
[[nodiscard]] Status writeFileAtomic(const std::string& path, std::string_view content, unsigned mode = 0644);

}  // namespace skiff
