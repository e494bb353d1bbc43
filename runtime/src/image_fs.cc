// File-system helpers of the image store; see image_fs.h.
#include "image_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "skiff/common/fd.h"
#include "skiff/common/file.h"

namespace skiff::runtime::imagefs {
namespace {

std::string toHex(const unsigned char* d, unsigned n) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[d[i] >> 4];
    out += kHex[d[i] & 0xf];
  }
  return out;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    return toHex(md, n);
  }

 private:
  MdCtx ctx_;
};

void applyOwner(const std::string& path, const CopyOptions& o) {
  // Only root can give files away; an unprivileged build (tests) keeps the
  // caller's owner, which is what it can express anyway.
  if (::geteuid() != 0) return;
  uid_t uid = o.uid >= 0 ? static_cast<uid_t>(o.uid) : 0;
  gid_t gid = o.gid >= 0 ? static_cast<gid_t>(o.gid) : 0;
  (void)::lchown(path.c_str(), uid, gid);
}

Status copyFile(const std::string& src, const std::string& dst, mode_t mode, const CopyOptions& o) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::fromErrno("open " + src);
  ::unlink(dst.c_str());  // a later COPY replaces an earlier file of the same layer
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return Error::fromErrno("create " + dst);
  SKIFF_TRY(readChunks(in.get(), src, [&](std::string_view chunk) { return writeAll(out.get(), chunk, dst); }));
  mode_t m = o.chmodMode >= 0 ? static_cast<mode_t>(o.chmodMode) : (mode & 07777);
  if (::fchmod(out.get(), m) != 0) return Error::fromErrno("chmod " + dst);
  applyOwner(dst, o);
  return okStatus();
}

std::string relTo(const std::string& root, const std::string& path) {
  if (!root.empty() && path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
      path[root.size()] == '/') {
    return path.substr(root.size() + 1);
  }
  return path;
}

Status copyDir(const std::string& src, const std::string& dst, mode_t mode, const CopyOptions& o) {
  struct stat st {};
  if (::lstat(dst.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) ::unlink(dst.c_str());
  if (::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) return Error::fromErrno("mkdir " + dst);
  auto names = listDir(src);
  if (!names.ok()) return names.error();
  for (const auto& name : *names) {
    std::string s = src + "/" + name;
    std::string d = dst + "/" + name;
    if (o.skip && o.skip(relTo(o.contextRoot, s))) continue;
    struct stat est {};
    if (::lstat(s.c_str(), &est) != 0) return Error::fromErrno("lstat " + s);
    if (S_ISDIR(est.st_mode)) {
      SKIFF_TRY(copyDir(s, d, est.st_mode, o));
    } else if (S_ISREG(est.st_mode)) {
      SKIFF_TRY(copyFile(s, d, est.st_mode, o));
    } else if (S_ISLNK(est.st_mode)) {
      char target[4096];
      ssize_t n = ::readlink(s.c_str(), target, sizeof target);
      if (n < 0) return Error::fromErrno("readlink " + s);
      removeTree(d);
      if (::symlink(std::string(target, static_cast<size_t>(n)).c_str(), d.c_str()) != 0) {
        return Error::fromErrno("symlink " + d);
      }
      applyOwner(d, o);
    } else {
      return Error::msg("cannot copy " + s + ": not a file, directory or symlink");
    }
  }
  mode_t m = o.chmodMode >= 0 ? static_cast<mode_t>(o.chmodMode) : (mode & 07777);
  if (::chmod(dst.c_str(), m) != 0) return Error::fromErrno("chmod " + dst);
  applyOwner(dst, o);
  return okStatus();
}

int64_t sizeWalk(const std::string& dir) {
  auto names = listDir(dir);
  if (!names.ok()) return 0;
  int64_t total = 0;
  for (const auto& name : *names) {
    std::string full = dir + "/" + name;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) total += sizeWalk(full);
    if (S_ISREG(st.st_mode)) total += st.st_size;
  }
  return total;
}

}  // namespace

Result<std::vector<std::string>> listDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error::fromErrno("opendir " + dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string sha256Hex(std::string_view data) {
  Hasher h;
  h.update(data);
  return h.hex();
}

int64_t treeSize(const std::string& dir) { return sizeWalk(dir); }

Status copyPath(const std::string& src, const std::string& dst, const CopyOptions& options) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return Error::fromErrno("stat " + src);
  if (S_ISDIR(st.st_mode)) return copyDir(src, dst, st.st_mode, options);
  if (S_ISREG(st.st_mode)) return copyFile(src, dst, st.st_mode, options);
  return Error::msg("cannot copy " + src + ": not a file or directory");
}

Status mkdirs(const std::string& dir, int mode) {
  std::string cur;
  size_t pos = 0;
  while (pos <= dir.size()) {
    size_t slash = dir.find('/', pos);
    if (slash == std::string::npos) slash = dir.size();
    cur = dir.substr(0, slash);
    pos = slash + 1;
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return Error::fromErrno("mkdir " + cur);
    }
  }
  return okStatus();
}

void removeTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

bool cleanRelative(const std::string& path, std::string* out) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(part));
  }
  std::string joined;
  for (const auto& p : parts) joined += (joined.empty() ? "" : "/") + p;
  *out = std::move(joined);
  return true;
}

IgnoreMatcher::IgnoreMatcher(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line = line.substr(start);
    Pattern p;
    if (line[0] == '!') {
      p.negate = true;
      line = line.substr(1);
    }
    std::string cleaned;
    if (!cleanRelative(line, &cleaned) || cleaned.empty()) continue;
    p.glob = std::move(cleaned);
    patterns_.push_back(std::move(p));
  }
}

bool IgnoreMatcher::ignored(const std::string& relPath) const {
  bool result = false;
  for (const auto& p : patterns_) {
    // `**` crosses directories; plain fnmatch without FNM_PATHNAME is the
    // simple approximation of it.
    int flags = p.glob.find("**") == std::string::npos ? FNM_PATHNAME : 0;
    bool match = false;
    // A pattern naming a directory excludes all below it: try every prefix.
    size_t pos = 0;
    while (!match) {
      size_t slash = relPath.find('/', pos);
      std::string prefix = slash == std::string::npos ? relPath : relPath.substr(0, slash);
      match = ::fnmatch(p.glob.c_str(), prefix.c_str(), flags) == 0;
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    if (match) result = !p.negate;
  }
  return result;
}

}  // namespace skiff::runtime::imagefs
