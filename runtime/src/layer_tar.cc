// Image layers as gzip tars; see layer_tar.h for the conventions.
#include "layer_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "image_fs.h"
#include "skiff/common/fd.h"

namespace skiff::runtime::layertar {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr size_t kChunk = 64 * 1024;

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    std::string out = "sha256:";
    char hex[3];
    for (unsigned int i = 0; i < n; i++) {
      std::snprintf(hex, sizeof hex, "%02x", md[i]);
      out += hex;
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// A path as it may appear in an error message: control bytes replaced and
// the length bounded, since the layer came from another machine.
std::string shown(std::string_view path) {
  std::string s(path.substr(0, 200));
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (path.size() > 200) s += "...";
  return s;
}

Error invalid(const std::string& what) { return Error::msg("invalid layer: " + what); }
Error invalidEntry(std::string_view path, const std::string& what, int err = 0) {
  std::string text = "invalid layer: entry \"";
  text += shown(path);
  text += "\": ";
  text += what;
  return Error::msg(std::move(text), err);
}

// ---- reading: gzip (or plain) bytes in, tar bytes out, hashed on the way ----

// The tar stream of a blob, handed to libarchive chunk by chunk; every tar
// byte is hashed exactly once, also the padding libarchive never asks for.
class TarSource {
 public:
  explicit TarSource(std::string_view blob) : in_(blob), gzip_(isGzip(blob)) {
    if (gzip_) {
      zinit_ = inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in_.data()));
      z_.avail_in = static_cast<uInt>(in_.size());
    }
  }
  ~TarSource() {
    if (zinit_) inflateEnd(&z_);
  }
  TarSource(const TarSource&) = delete;
  TarSource& operator=(const TarSource&) = delete;

  // The next chunk; empty at the end. Errors: a corrupt or truncated gzip.
  Result<std::string_view> next() {
    if (!gzip_) {
      std::string_view chunk = in_;
      in_ = {};
      hash_.update(chunk.data(), chunk.size());
      return chunk;
    }
    if (!zinit_) return invalid("gzip: cannot start zlib");
    if (ended_) return std::string_view();
    buf_.resize(kChunk);
    z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
    z_.avail_out = static_cast<uInt>(buf_.size());
    while (z_.avail_out == buf_.size()) {
      int r = inflate(&z_, Z_NO_FLUSH);
      if (r == Z_STREAM_END) {
        // Another gzip member may follow (multistream, as gunzip reads it).
        if (z_.avail_in >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b) {
          inflateReset(&z_);
          continue;
        }
        if (z_.avail_in != 0)
          return invalid(std::to_string(z_.avail_in) + " bytes of trailing data after the gzip stream");
        ended_ = true;
        break;
      }
      if (r == Z_BUF_ERROR && z_.avail_in == 0) return invalid("gzip stream truncated");
      if (r != Z_OK) return invalid(std::string("gzip: ") + (z_.msg != nullptr ? z_.msg : "corrupt data"));
    }
    std::string_view chunk(buf_.data(), buf_.size() - z_.avail_out);
    hash_.update(chunk.data(), chunk.size());
    return chunk;
  }

  // Reads what is left (the tar's padding after its end blocks) and returns
  // the diff id.
  Result<std::string> finish() {
    for (;;) {
      auto chunk = next();
      if (!chunk.ok()) return chunk.error();
      if (chunk->empty()) return hash_.digest();
    }
  }

  // The error behind a failed read, for the message libarchive returns.
  std::optional<Error> failure;

  static la_ssize_t read(struct archive* a, void* self, const void** buf) {
    auto* src = static_cast<TarSource*>(self);
    auto chunk = src->next();
    if (!chunk.ok()) {
      src->failure = chunk.error();
      archive_set_error(a, EINVAL, "%s", chunk.error().message.c_str());
      return -1;
    }
    *buf = chunk->data();
    return static_cast<la_ssize_t>(chunk->size());
  }

 private:
  std::string_view in_;
  bool gzip_;
  bool zinit_ = false;
  bool ended_ = false;
  z_stream z_{};
  std::string buf_;
  Sha256 hash_;
};

struct ArchiveReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ReadArchive = std::unique_ptr<struct archive, ArchiveReadFree>;

ReadArchive openTar(TarSource& src) {
  ReadArchive a(archive_read_new());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &src, nullptr, TarSource::read, nullptr) != ARCHIVE_OK) return nullptr;
  return a;
}

Error readError(struct archive* a, const TarSource& src) {
  if (src.failure) return *src.failure;
  const char* why = archive_error_string(a);
  return invalid(why != nullptr ? why : "unreadable tar");
}

// "./a//b/" -> "a/b"; "/etc" -> "etc" (tar paths are relative to the layer
// whatever they say); false when a component is "..".
bool cleanPath(std::string_view path, std::string* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view comp = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return false;
    if (!out->empty()) *out += '/';
    out->append(comp);
  }
  return true;
}

std::pair<std::string, std::string> splitParent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Writes entries under a root directory, never through a symlink.
class Extractor {
 public:
  explicit Extractor(const std::string& dir) : dir_(dir) {
    root_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }

  bool ok() const { return root_.valid(); }

  Status entry(struct archive* a, struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) return invalid("an entry without a path");
    std::string path;
    if (!cleanPath(raw, &path)) return invalidEntry(raw, "path climbs out of the layer");
    if (path.empty()) return okStatus();  // the layer's root: the store's, not the layer's
    auto [parent, name] = splitParent(path);
    auto dir = openDir(parent, raw);
    if (!dir.ok()) return dir.error();
    const int pfd = dir->get();

    if (name.rfind(kWhiteoutPrefix, 0) == 0) {
      if (name == kOpaqueMarker) {
        if (::fsetxattr(pfd, kOpaqueXattr, "y", 1, 0) != 0)
          return invalidEntry(raw, "cannot mark the directory opaque: " + Error::fromErrno("setxattr").message);
        return okStatus();
      }
      const std::string hidden = name.substr(kWhiteoutPrefix.size());
      if (hidden.empty() || hidden == "." || hidden == "..") return invalidEntry(raw, "a whiteout of nothing");
      SKIFF_TRY(removeAt(pfd, parent, hidden, raw));
      if (::mknodat(pfd, hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
        return invalidEntry(raw, "cannot make the whiteout: " + Error::fromErrno("mknod").message);
      return okStatus();
    }

    if (const char* link = archive_entry_hardlink(e); link != nullptr) {
      std::string target;
      if (!cleanPath(link, &target) || target.empty()) return invalidEntry(raw, "hard link to outside the layer");
      auto [tparent, tname] = splitParent(target);
      auto tdir = openDir(tparent, raw, /*create=*/false);
      if (!tdir.ok()) return invalidEntry(raw, "hard link target \"" + shown(target) + "\" is not in the layer");
      SKIFF_TRY(removeAt(pfd, parent, name, raw));
      if (::linkat(tdir->get(), tname.c_str(), pfd, name.c_str(), 0) != 0)
        return invalidEntry(raw, "hard link to \"" + shown(target) + "\": " + Error::fromErrno("link").message);
      return okStatus();
    }

    const mode_t perm = archive_entry_perm(e) & 07777;
    const auto uid = static_cast<uid_t>(archive_entry_uid(e));
    const auto gid = static_cast<gid_t>(archive_entry_gid(e));
    const timespec mtime{archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR: {
        struct stat st {};
        if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
          SKIFF_TRY(removeAt(pfd, parent, name, raw));
          if (::mkdirat(pfd, name.c_str(), 0700) != 0) return invalidEntry(raw, Error::fromErrno("mkdir").message);
        }
        DirAttrs& d = dirs_[path];
        d = DirAttrs{perm, uid, gid, mtime, {}};
        for (auto& x : xattrs(e)) d.xattrs.push_back(std::move(x));
        return okStatus();
      }
      case AE_IFREG: {
        SKIFF_TRY(removeAt(pfd, parent, name, raw));
        UniqueFd fd(::openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return invalidEntry(raw, Error::fromErrno("create").message);
        const void* buf = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        int r;
        while ((r = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
          const char* p = static_cast<const char*>(buf);
          while (size > 0) {
            ssize_t n = ::pwrite(fd.get(), p, size, offset);
            if (n < 0) return invalidEntry(raw, Error::fromErrno("write").message);
            p += n;
            size -= static_cast<size_t>(n);
            offset += n;
          }
        }
        if (r != ARCHIVE_EOF) return Error::msg("");            // the caller reports the archive's error
        if (::ftruncate(fd.get(), archive_entry_size(e)) != 0)  // a sparse file's hole at the end
          return invalidEntry(raw, Error::fromErrno("truncate").message);
        if (root() && ::fchown(fd.get(), uid, gid) != 0) return invalidEntry(raw, Error::fromErrno("chown").message);
        if (::fchmod(fd.get(), perm) != 0) return invalidEntry(raw, Error::fromErrno("chmod").message);  // after chown
        for (const auto& [k, v] : xattrs(e)) {
          if (::fsetxattr(fd.get(), k.c_str(), v.data(), v.size(), 0) != 0)
            return invalidEntry(raw, "xattr " + k + ": " + Error::fromErrno("setxattr").message);
        }
        const timespec times[2] = {mtime, mtime};
        ::futimens(fd.get(), times);
        return okStatus();
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (target == nullptr || *target == '\0') return invalidEntry(raw, "a symlink without a target");
        SKIFF_TRY(removeAt(pfd, parent, name, raw));
        if (::symlinkat(target, pfd, name.c_str()) != 0) return invalidEntry(raw, Error::fromErrno("symlink").message);
        if (root() && ::fchownat(pfd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
          return invalidEntry(raw, Error::fromErrno("chown").message);
        const timespec times[2] = {mtime, mtime};
        ::utimensat(pfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return okStatus();
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        SKIFF_TRY(removeAt(pfd, parent, name, raw));
        const mode_t type = archive_entry_filetype(e);
        if (::mknodat(pfd, name.c_str(), type | perm, archive_entry_rdev(e)) != 0)
          return invalidEntry(raw, Error::fromErrno("mknod").message);
        if (root() && ::fchownat(pfd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
          return invalidEntry(raw, Error::fromErrno("chown").message);
        if (::fchmodat(pfd, name.c_str(), perm, 0) != 0) return invalidEntry(raw, Error::fromErrno("chmod").message);
        return okStatus();
      }
      default:
        return invalidEntry(raw, "unsupported file type (a socket?)");
    }
  }

  // Directory owners, modes, xattrs and times, deepest first: a read-only
  // directory is filled before it becomes read-only, and its time is not
  // moved again by what is written inside.
  Status finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      const auto& [path, d] = *it;
      auto fd = openDir(path, path, /*create=*/false);
      if (!fd.ok()) return fd.error();
      if (root() && ::fchown(fd->get(), d.uid, d.gid) != 0)
        return invalidEntry(path, Error::fromErrno("chown").message);
      if (::fchmod(fd->get(), d.perm) != 0) return invalidEntry(path, Error::fromErrno("chmod").message);
      for (const auto& [k, v] : d.xattrs) {
        if (::fsetxattr(fd->get(), k.c_str(), v.data(), v.size(), 0) != 0)
          return invalidEntry(path, "xattr " + k + ": " + Error::fromErrno("setxattr").message);
      }
      const timespec times[2] = {d.mtime, d.mtime};
      ::futimens(fd->get(), times);
    }
    return okStatus();
  }

 private:
  struct DirAttrs {
    mode_t perm = 0755;
    uid_t uid = 0;
    gid_t gid = 0;
    timespec mtime{};
    std::vector<std::pair<std::string, std::string>> xattrs;
  };

  static bool root() { return ::geteuid() == 0; }

  // The entry's extended attributes, without overlayfs' own: a layer must
  // not forge whiteouts or redirects other than by docker's conventions.
  static std::vector<std::pair<std::string, std::string>> xattrs(struct archive_entry* e) {
    std::vector<std::pair<std::string, std::string>> out;
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (name == nullptr || std::string_view(name).rfind("trusted.overlay.", 0) == 0) continue;
      out.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
    return out;
  }

  // Opens directory `rel` of the layer one component at a time, never
  // following a symlink; with create, missing ones are made (0755, as docker
  // makes a parent the tar does not list).
  Result<UniqueFd> openDir(const std::string& rel, std::string_view entry, bool create = true) {
    UniqueFd fd(::dup(root_.get()));
    if (!fd) return Error::fromErrno("dup");
    size_t pos = 0;
    while (pos < rel.size()) {
      size_t slash = rel.find('/', pos);
      if (slash == std::string::npos) slash = rel.size();
      const std::string comp = rel.substr(pos, slash - pos);
      pos = slash + 1;
      UniqueFd next(::openat(fd.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next && errno == ENOENT && create) {
        if (::mkdirat(fd.get(), comp.c_str(), 0755) != 0 && errno != EEXIST)
          return invalidEntry(entry, Error::fromErrno("mkdir " + rel.substr(0, slash)).message);
        next.reset(::openat(fd.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!next) {
        if (errno == ELOOP || errno == ENOTDIR)
          return invalidEntry(
              entry, "path goes through \"" + shown(rel.substr(0, slash)) + "\", which is not a directory", errno);
        return invalidEntry(entry, Error::fromErrno("open " + rel.substr(0, slash)).message);
      }
      fd = std::move(next);
    }
    return fd;
  }

  // Makes room for an entry: what was there (an earlier entry of this
  // layer) goes, a directory with all it holds.
  Status removeAt(int pfd, const std::string& parent, const std::string& name, std::string_view entry) {
    struct stat st {};
    if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return okStatus();
    if (!S_ISDIR(st.st_mode)) {
      if (::unlinkat(pfd, name.c_str(), 0) != 0) return invalidEntry(entry, Error::fromErrno("unlink").message);
      return okStatus();
    }
    // The parent chain was opened without following symlinks, and
    // remove_all does not follow them inside.
    const std::string rel = parent.empty() ? name : parent + "/" + name;
    removeUnpacked(dir_ + "/" + rel);
    std::string prefix = rel + "/";
    for (auto it = dirs_.lower_bound(rel); it != dirs_.end() && (it->first == rel || it->first.rfind(prefix, 0) == 0);)
      it = dirs_.erase(it);
    return okStatus();
  }

  std::string dir_;
  UniqueFd root_;
  std::map<std::string, DirAttrs> dirs_;  // sorted: "a" < "a/b", reversed it is deepest first
};

// ---- writing: a canonical tar, gzipped, both hashed ----

class GzipSink {
 public:
  GzipSink() {
    zinit_ = deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipSink() {
    if (zinit_) deflateEnd(&z_);
  }
  GzipSink(const GzipSink&) = delete;
  GzipSink& operator=(const GzipSink&) = delete;

  bool ok() const { return zinit_; }

  bool write(const void* data, size_t n, int flush) {
    tar_.update(data, n);
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<void*>(data));
    z_.avail_in = static_cast<uInt>(n);
    char buf[kChunk];
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      int r = deflate(&z_, flush);
      if (r == Z_STREAM_ERROR) return false;
      blob_.append(buf, sizeof buf - z_.avail_out);
    } while (z_.avail_out == 0);
    return true;
  }

  static la_ssize_t onWrite(struct archive*, void* self, const void* data, size_t n) {
    return static_cast<GzipSink*>(self)->write(data, n, Z_NO_FLUSH) ? static_cast<la_ssize_t>(n) : -1;
  }

  Packed finish() {
    write(nullptr, 0, Z_FINISH);
    Packed p;
    p.diffId = tar_.digest();
    Sha256 blobHash;
    blobHash.update(blob_.data(), blob_.size());
    p.digest = blobHash.digest();
    p.blob = std::move(blob_);
    return p;
  }

 private:
  z_stream z_{};
  bool zinit_ = false;
  Sha256 tar_;
  std::string blob_;
};

struct ArchiveWriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};
using Entry = std::unique_ptr<struct archive_entry, EntryFree>;

Status writeEntry(struct archive* a, struct archive_entry* e, const std::string& what) {
  if (archive_write_header(a, e) < ARCHIVE_WARN) {
    const char* why = archive_error_string(a);
    return Error::msg("pack " + what + ": " + (why != nullptr ? why : "tar header refused"));
  }
  return okStatus();
}

Entry newEntry(const std::string& path, const struct stat& st, mode_t type) {
  Entry e(archive_entry_new());
  archive_entry_set_pathname(e.get(), path.c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), st.st_mode & 07777);
  archive_entry_set_uid(e.get(), st.st_uid);
  archive_entry_set_gid(e.get(), st.st_gid);
  archive_entry_set_mtime(e.get(), 0, 0);
  archive_entry_set_size(e.get(), 0);
  return e;
}

Status packWalk(struct archive* a, const std::string& root, const std::string& rel) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  auto names = imagefs::listDir(dir);
  if (!names.ok()) return names.error();
  for (const auto& name : *names) {
    const std::string r = rel.empty() ? name : rel + "/" + name;
    const std::string full = root + "/" + r;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) return Error::fromErrno("lstat " + full);
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {  // an overlayfs whiteout
      struct stat wh {};
      wh.st_mode = S_IFREG | 0600;
      const std::string path = (rel.empty() ? "" : rel + "/") + std::string(kWhiteoutPrefix) + name;
      SKIFF_TRY(writeEntry(a, newEntry(path, wh, AE_IFREG).get(), full));
    } else if (S_ISDIR(st.st_mode)) {
      SKIFF_TRY(writeEntry(a, newEntry(r + "/", st, AE_IFDIR).get(), full));
      char v = 0;
      if (::lgetxattr(full.c_str(), kOpaqueXattr, &v, 1) == 1 && v == 'y') {
        struct stat opq {};
        opq.st_mode = S_IFREG | 0600;
        SKIFF_TRY(writeEntry(a, newEntry(r + "/" + std::string(kOpaqueMarker), opq, AE_IFREG).get(), full));
      }
      SKIFF_TRY(packWalk(a, root, r));
    } else if (S_ISREG(st.st_mode)) {
      Entry e = newEntry(r, st, AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
      UniqueFd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return Error::fromErrno("open " + full);
      SKIFF_TRY(writeEntry(a, e.get(), full));
      char buf[kChunk];
      int64_t left = st.st_size;
      while (left > 0) {
        ssize_t n = ::read(fd.get(), buf, static_cast<size_t>(std::min<int64_t>(left, sizeof buf)));
        if (n < 0) return Error::fromErrno("read " + full);
        if (n == 0) return Error::msg("pack " + full + ": the file shrank while it was read");
        if (archive_write_data(a, buf, static_cast<size_t>(n)) != n) {
          const char* why = archive_error_string(a);
          return Error::msg("pack " + full + ": " + (why != nullptr ? why : "write failed"));
        }
        left -= n;
      }
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(PATH_MAX, '\0');
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
      if (n < 0) return Error::fromErrno("readlink " + full);
      target.resize(static_cast<size_t>(n));
      Entry e = newEntry(r, st, AE_IFLNK);
      archive_entry_set_symlink(e.get(), target.c_str());
      SKIFF_TRY(writeEntry(a, e.get(), full));
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      Entry e = newEntry(r, st, st.st_mode & S_IFMT);
      archive_entry_set_rdev(e.get(), st.st_rdev);
      SKIFF_TRY(writeEntry(a, e.get(), full));
    } else {
      return Error::msg("unsupported file type in layer: " + full);
    }
  }
  return okStatus();
}

}  // namespace

Result<Packed> pack(const std::string& dir) {
  GzipSink sink;
  if (!sink.ok()) return Error::msg("pack " + dir + ": cannot start zlib");
  std::unique_ptr<struct archive, ArchiveWriteFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);  // no padding beyond the end blocks
  if (archive_write_open(a.get(), &sink, nullptr, GzipSink::onWrite, nullptr) != ARCHIVE_OK)
    return Error::msg("pack " + dir + ": " + archive_error_string(a.get()));
  SKIFF_TRY(packWalk(a.get(), dir, ""));
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return Error::msg("pack " + dir + ": " + archive_error_string(a.get()));
  return sink.finish();
}

Result<std::string> unpack(std::string_view blob, const std::string& dir) {
  Extractor out(dir);
  if (!out.ok()) return Error::fromErrno("open " + dir);
  TarSource src(blob);
  ReadArchive a = openTar(src);
  if (!a) return invalid("cannot read the tar");
  struct archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    auto st = out.entry(a.get(), e);
    if (!st.ok()) {
      if (st.error().message.empty()) return readError(a.get(), src);
      return st.error();
    }
  }
  if (r != ARCHIVE_EOF) return readError(a.get(), src);
  SKIFF_TRY(out.finish());
  return src.finish();
}

Result<std::string> gzip(std::string_view tar) {
  GzipSink sink;
  if (!sink.ok() || !sink.write(tar.data(), tar.size(), Z_NO_FLUSH)) return Error::msg("gzip: cannot compress");
  return sink.finish().blob;
}

Result<std::string> gunzip(std::string_view blob) {
  TarSource src(blob);
  std::string out;
  for (;;) {
    auto chunk = src.next();
    if (!chunk.ok()) return chunk.error();
    if (chunk->empty()) return out;
    out.append(*chunk);
  }
}

bool isGzip(std::string_view blob) {
  return blob.size() >= 2 && static_cast<unsigned char>(blob[0]) == 0x1f && static_cast<unsigned char>(blob[1]) == 0x8b;
}

Result<std::string> diffIdOf(std::string_view blob) {
  TarSource src(blob);
  return src.finish();
}

void removeUnpacked(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    // The owner may always chmod; search and write permission let remove_all in.
    ::chmod(dir.c_str(), 0700);
    auto names = imagefs::listDir(dir);
    if (names.ok()) {
      for (const auto& name : *names) {
        struct stat cst {};
        const std::string full = dir + "/" + name;
        if (::lstat(full.c_str(), &cst) == 0 && S_ISDIR(cst.st_mode)) removeUnpacked(full);
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace skiff::runtime::layertar
