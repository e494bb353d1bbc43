#pragma once
// `skiff save` without -o (the archive on stdout) and `skiff load` without -i
// (from stdin), as docker's: netd reads and writes archives by path, so the
// CLI passes them through a private temporary folder (0700, removed when done,
// also on failure). Part of the executable's command layer.

#include <string>
#include <vector>

#include "commands.h"

namespace skiff::cli {

// Exit codes: 0, or 1 with the reason on stderr (docker's words for a
// terminal on the wrong end).
int saveToStdout(const Daemon& daemon, const std::vector<std::string>& refs);
int loadFromStdin(const Daemon& daemon);

}  // namespace skiff::cli
