// Layer archives; see layer_archive.h for the format.
#include "layer_archive.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "skiff/common/fd.h"
#include "skiff/common/file.h"

namespace skiff::runtime::layerarchive {
namespace {

void putU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void putU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void appendEntry(std::string& out, const Entry& e) {
  out += static_cast<char>(e.type);
  putU32(out, e.mode);
  putU32(out, static_cast<uint32_t>(e.path.size()));
  out.append(e.path);
  putU64(out, e.data.size());
  out.append(e.data);
}

void appendEnd(std::string& out, uint64_t count) {
  out += 'E';
  putU64(out, count);
}

// A path as it may appear in an error message: control bytes replaced and
// the length bounded, since the archive came from another machine.
std::string shown(std::string_view path) {
  std::string s(path.substr(0, 200));
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (path.size() > 200) s += "...";
  return s;
}

Error invalid(const std::string& what) { return Error::msg("invalid layer archive: " + what); }

Error invalidEntry(size_t index, std::string_view path, const std::string& what) {
  return invalid("entry " + std::to_string(index) + " (" + shown(path) + "): " + what);
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  size_t left() const { return data_.size() - pos_; }
  bool done() const { return pos_ == data_.size(); }
  bool u8(char* v) {
    if (left() < 1) return false;
    *v = data_[pos_++];
    return true;
  }
  template <typename T>
  bool uint(T* v) {
    if (left() < sizeof(T)) return false;
    T x = 0;
    for (size_t i = 0; i < sizeof(T); ++i) x = static_cast<T>((x << 8) | static_cast<unsigned char>(data_[pos_ + i]));
    pos_ += sizeof(T);
    *v = x;
    return true;
  }
  std::string_view bytes(size_t n) {
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// "" when path is a clean relative path, else why not.
std::string pathProblem(std::string_view path) {
  if (path.empty()) return "empty path";
  if (path.front() == '/') return "absolute path";
  if (path.find('\0') != std::string_view::npos) return "NUL byte in path";
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view comp = path.substr(pos, slash - pos);
    if (comp.empty()) return "empty path component";
    if (comp == "." || comp == "..") return "path component \"" + std::string(comp) + "\" is not allowed";
    if (comp.size() > kMaxName) return "path component longer than " + std::to_string(kMaxName) + " bytes";
    pos = slash + 1;
  }
  return "";
}

// Directory entries except . and .., sorted as imagefs::hashTree sorts them.
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

// The same walk as imagefs::hashTree: depth first, sorted siblings, lstat.
Status packWalk(const std::string& root, const std::string& rel, std::string& out, uint64_t& count) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  auto names = listDir(dir);
  if (!names.ok()) return names.error();
  for (const auto& name : *names) {
    const std::string r = rel.empty() ? name : rel + "/" + name;
    const std::string full = root + "/" + r;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) return Error::fromErrno("lstat " + full);
    const auto mode = static_cast<uint32_t>(st.st_mode & 07777);
    ++count;
    if (S_ISDIR(st.st_mode)) {
      appendEntry(out, Entry{EntryType::kDir, mode, r, {}});
      SKIFF_TRY(packWalk(root, r, out, count));
    } else if (S_ISREG(st.st_mode)) {
      auto content = skiff::readFile(full);
      if (!content.ok()) return content.error();
      appendEntry(out, Entry{EntryType::kFile, mode, r, *content});
    } else if (S_ISLNK(st.st_mode)) {
      char target[kMaxLinkTarget + 1];
      ssize_t n = ::readlink(full.c_str(), target, sizeof target);
      if (n < 0) return Error::fromErrno("readlink " + full);
      if (static_cast<size_t>(n) > kMaxLinkTarget) {
        return Error::msg("symlink target of " + full + " is longer than " + std::to_string(kMaxLinkTarget) + " bytes");
      }
      appendEntry(out, Entry{EntryType::kSymlink, 0, r, std::string_view(target, static_cast<size_t>(n))});
    } else {
      return Error::msg("unsupported file type in layer: " + full);
    }
  }
  return okStatus();
}

void makeRemovable(const std::string& dir) {
  // The owner may always chmod; search and write permission let remove_all in.
  ::chmod(dir.c_str(), 0700);
  auto names = listDir(dir);
  if (!names.ok()) return;
  for (const auto& name : *names) {
    const std::string full = dir + "/" + name;
    struct stat st {};
    if (::lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) makeRemovable(full);
  }
}

}  // namespace

bool canonicalLess(std::string_view a, std::string_view b) {
  // Mapping '/' below every byte a name can hold compares component by
  // component: a directory sorts before "<dir>-x" as its contents do.
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned ca = a[i] == '/' ? 0u : static_cast<unsigned char>(a[i]);
    const unsigned cb = b[i] == '/' ? 0u : static_cast<unsigned char>(b[i]);
    if (ca != cb) return ca < cb;
  }
  return a.size() < b.size();
}

std::string encode(const std::vector<Entry>& entries) {
  std::string out(kMagic);
  for (const auto& e : entries) appendEntry(out, e);
  appendEnd(out, entries.size());
  return out;
}

Result<std::vector<Entry>> parse(std::string_view archive) {
  if (archive.substr(0, kMagic.size()) != kMagic) {
    if (archive.substr(0, 12) == kMagic.substr(0, 12)) {
      return invalid("unsupported format version (this reader knows \"skiff-layer/1\")");
    }
    return invalid("not a skiff layer archive (no \"skiff-layer/1\" header)");
  }
  Reader in(archive.substr(kMagic.size()));
  std::vector<Entry> entries;
  std::set<std::string_view> dirs;
  for (;;) {
    const size_t index = entries.size() + 1;
    char type = 0;
    if (!in.u8(&type)) return invalid("truncated: no end record after " + std::to_string(entries.size()) + " entries");
    if (type == 'E') {
      uint64_t count = 0;
      if (!in.uint(&count)) return invalid("truncated end record");
      if (count != entries.size()) {
        return invalid("end record counts " + std::to_string(count) + " entries, the archive has " +
                       std::to_string(entries.size()));
      }
      if (!in.done()) return invalid(std::to_string(in.left()) + " bytes of trailing data after the end record");
      return entries;
    }
    if (type != 'd' && type != 'f' && type != 'l') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(type));
      return invalid("entry " + std::to_string(index) + ": unknown entry type " + hex);
    }
    if (entries.size() >= kMaxEntries) {
      return invalid("more than " + std::to_string(kMaxEntries) + " entries");
    }
    Entry e;
    e.type = static_cast<EntryType>(type);
    uint32_t pathLen = 0;
    if (!in.uint(&e.mode) || !in.uint(&pathLen)) return invalid("truncated header of entry " + std::to_string(index));
    if (pathLen > kMaxPath) {
      return invalid("entry " + std::to_string(index) + ": path of " + std::to_string(pathLen) + " bytes exceeds " +
                     std::to_string(kMaxPath));
    }
    if (in.left() < pathLen) return invalid("truncated path of entry " + std::to_string(index));
    e.path = in.bytes(pathLen);
    uint64_t dataLen = 0;
    if (!in.uint(&dataLen)) return invalidEntry(index, e.path, "truncated header");
    if (dataLen > in.left()) {
      return invalidEntry(index, e.path,
                          "truncated: " + std::to_string(dataLen) + " bytes of data, " + std::to_string(in.left()) +
                              " left in the archive");
    }
    e.data = in.bytes(static_cast<size_t>(dataLen));

    if (std::string why = pathProblem(e.path); !why.empty()) return invalidEntry(index, e.path, why);
    if (e.type == EntryType::kSymlink) {
      if (e.mode != 0) return invalidEntry(index, e.path, "a symlink carries mode 0");
      if (e.data.empty() || e.data.size() > kMaxLinkTarget || e.data.find('\0') != std::string_view::npos) {
        return invalidEntry(index, e.path,
                            "symlink target must be 1.." + std::to_string(kMaxLinkTarget) + " bytes without NUL");
      }
    } else if (e.mode > 07777) {
      return invalidEntry(index, e.path, "mode beyond permission bits");
    }
    if (e.type == EntryType::kDir && !e.data.empty()) {
      return invalidEntry(index, e.path, "a directory carries no data");
    }
    if (!entries.empty()) {
      const std::string_view prev = entries.back().path;
      if (prev == e.path) return invalidEntry(index, e.path, "duplicate entry");
      if (!canonicalLess(prev, e.path)) {
        return invalidEntry(index, e.path, "out of canonical order (after " + shown(prev) + ")");
      }
    }
    if (size_t slash = e.path.rfind('/'); slash != std::string_view::npos) {
      const std::string_view parent = e.path.substr(0, slash);
      if (!dirs.count(parent)) {
        return invalidEntry(index, e.path, "parent " + shown(parent) + " is not a directory entry before it");
      }
    }
    if (e.type == EntryType::kDir) dirs.insert(e.path);
    entries.push_back(e);
  }
}

Result<std::string> pack(const std::string& dir) {
  std::string out(kMagic);
  uint64_t count = 0;
  SKIFF_TRY(packWalk(dir, "", out, count));
  appendEnd(out, count);
  return out;
}

Status unpack(const std::vector<Entry>& entries, const std::string& dir) {
  std::vector<const Entry*> dirs;
  for (const auto& e : entries) {
    const std::string full = dir + "/" + std::string(e.path);
    switch (e.type) {
      case EntryType::kDir:
        if (::mkdir(full.c_str(), 0700) != 0) return Error::fromErrno("mkdir " + full);
        dirs.push_back(&e);
        break;
      case EntryType::kFile: {
        UniqueFd fd(::open(full.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return Error::fromErrno("create " + full);
        SKIFF_TRY(writeAll(fd.get(), e.data, full));
        if (::fchmod(fd.get(), static_cast<mode_t>(e.mode)) != 0) return Error::fromErrno("chmod " + full);
        break;
      }
      case EntryType::kSymlink:
        if (::symlink(std::string(e.data).c_str(), full.c_str()) != 0) {
          return Error::fromErrno("symlink " + full);
        }
        break;
    }
  }
  // Deepest first, so a directory is still writable while its children get theirs.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    const std::string full = dir + "/" + std::string((*it)->path);
    if (::chmod(full.c_str(), static_cast<mode_t>((*it)->mode)) != 0) return Error::fromErrno("chmod " + full);
  }
  return okStatus();
}

void removeUnpacked(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) makeRemovable(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace skiff::runtime::layerarchive
