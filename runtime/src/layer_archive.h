#pragma once
// Layer archives (internal to skiff_runtime_image): one layer directory as a
// single byte string, so a worker can fetch a layer from the manager without
// tar. The entries are exactly what the layer digest (imagefs::hashTree) is
// computed over, in the same order, so the receiver unpacks, recomputes the
// digest over the files it wrote and accepts the layer only when it matches.
//
// Format, version 1 (integers big-endian):
//   archive = magic entry* end
//   magic   = "skiff-layer/1\n"                     (14 bytes; "1" is the version)
//   entry   = type:u8 mode:u32 pathLen:u32 path dataLen:u64 data
//             type 'd' dir (dataLen 0), 'f' file (data = content),
//             'l' symlink (data = target, mode 0); mode = permission bits
//             (<= 07777); path relative, '/'-separated, no ".", ".." or "".
//   end     = 'E' count:u64                         (number of entries; nothing follows)
// Canonical order is the digest walk's: depth first, a directory before its
// contents, siblings sorted bytewise — i.e. paths compared component by
// component ("a", "a/b", "a-c"). A reader refuses any other order, duplicates,
// an entry whose parent is not a directory entry before it (so nothing is
// written through a symlink), truncated or trailing bytes, and sizes over the
// limits below. Owners and times are not carried, as the digest leaves them out.
//
// Archives are built and parsed in memory: layers in skiff's use are small
// (a COPY of a build context).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::runtime::layerarchive {

inline constexpr std::string_view kMagic = "skiff-layer/1\n";
inline constexpr size_t kMaxPath = 4096;        // PATH_MAX
inline constexpr size_t kMaxName = 255;         // NAME_MAX, one path component
inline constexpr size_t kMaxLinkTarget = 4095;  // what hashTree's readlink reads whole
inline constexpr size_t kMaxEntries = 1000000;

enum class EntryType : char { kDir = 'd', kFile = 'f', kSymlink = 'l' };

// One entry; the views point into the archive (parse) or the caller's strings.
struct Entry {
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;      // permission bits; 0 for a symlink
  std::string_view path;  // relative to the layer root
  std::string_view data;  // file content or link target; empty for a dir
};

// Serializes entries as given, without checking them (tests use this to make
// archives a reader must refuse).
std::string encode(const std::vector<Entry>& entries);

// Checks everything the format note promises and returns the entries, which
// view into `archive`. Errors: "invalid layer archive: <what>[ at entry N (path)]".
[[nodiscard]] Result<std::vector<Entry>> parse(std::string_view archive);

// True when a sorts before b in the canonical walk order.
bool canonicalLess(std::string_view a, std::string_view b);

// The archive of the directory tree under `dir` (the root itself excluded).
[[nodiscard]] Result<std::string> pack(const std::string& dir);

// Writes parsed entries under `dir` (an existing, empty directory we own):
// files created exclusively without following symlinks, modes set
// explicitly (umask does not apply), directory modes last so that a
// read-only directory can still be filled.
[[nodiscard]] Status unpack(const std::vector<Entry>& entries, const std::string& dir);

// Removes a tree unpack() wrote, also when it holds directories without
// write or search permission for us (possible when not running as root).
void removeUnpacked(const std::string& dir);

}  // namespace skiff::runtime::layerarchive
