#pragma once
// File-system helpers of the image store (internal to skiff_runtime_image):
// sha256, mode-preserving copies, and the
// .dockerignore matcher. Kept apart from the builder so each is tested alone.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::runtime::imagefs {

std::string sha256Hex(std::string_view data);

// The entries of dir except . and .., sorted bytewise (walks are canonical).
[[nodiscard]] Result<std::vector<std::string>> listDir(const std::string& dir);

// Sum of regular file sizes under dir.
int64_t treeSize(const std::string& dir);

// Copies `src` (file, dir or symlink; a symlink at the top is followed) to
// `dst`, preserving permission bits; symlinks inside dirs stay symlinks.
// `skip(relPath)` (may be empty) excludes entries below a source dir.
// chmodMode >= 0 overrides the mode of every copied file and dir.
struct CopyOptions {
  int uid = -1, gid = -1;  // applied when >= 0 and we are root
  int chmodMode = -1;
  std::function<bool(const std::string& relToContext)> skip;
  std::string contextRoot;  // for skip(): paths are made relative to this
};
[[nodiscard]] Status copyPath(const std::string& src, const std::string& dst, const CopyOptions& options);

[[nodiscard]] Status mkdirs(const std::string& dir, int mode = 0755);
void removeTree(const std::string& path);

// .dockerignore: patterns as fnmatch(3) with FNM_PATHNAME on paths relative
// to the context, `!` re-includes, the last matching pattern wins, and a
// pattern that matches a directory excludes everything below it.
class IgnoreMatcher {
 public:
  explicit IgnoreMatcher(std::string_view dockerignore);
  bool ignored(const std::string& relPath) const;

 private:
  struct Pattern {
    std::string glob;
    bool negate = false;
  };
  std::vector<Pattern> patterns_;
};

// "a/./b/../c" -> "a/c"; false when the path climbs above its root.
bool cleanRelative(const std::string& path, std::string* out);

}  // namespace skiff::runtime::imagefs
