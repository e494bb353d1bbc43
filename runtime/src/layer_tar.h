#pragma once
// Image layers as docker and OCI carry them (internal to skiff_runtime_image):
// a tar of the layer's files, gzip-compressed. Two digests name a layer:
//   diff id  sha256 of the uncompressed tar: what an image config's
//            rootfs.diff_ids lists, and the name of the layer's directory
//            in the store (images/layers/<hex>/);
//   digest   sha256 of the compressed blob: what a manifest lists and a
//            registry stores (images/layers/<diff hex>.tar.gz keeps it).
//
// pack() writes a canonical tar, so that the same files give the same bytes
// and a rebuild of an unchanged context the same image id: entries in walk
// order (depth first, a directory before its contents, siblings sorted
// bytewise), POSIX pax format (plain ustar headers unless a name or size
// needs a pax record), uid/gid as stored and no user or group names, every
// time 0; gzip without a name or time in its header. overlayfs whiteouts in
// the tree (a char device 0/0, a directory with trusted.overlay.opaque=y)
// become docker's `.wh.<name>` and `.wh..wh..opq` entries.
//
// unpack() reads what other tools write: gzip or plain tar (ustar, pax,
// GNU), entries in any order, parents missing (made 0755), hard links within
// the layer, a later entry replacing an earlier one; docker's whiteouts
// become overlayfs ones, as the store's layer dirs are overlayfs lowerdirs.
// Every path is walked from the layer root one component at a time with
// O_NOFOLLOW, so nothing is written through a symlink; paths that climb out
// (`..`) and hard links to outside the layer are refused. Owners, device
// nodes and whiteouts need root (netd is); xattrs are kept except
// trusted.overlay.* (a layer must not forge overlayfs metadata).

#include <string>
#include <string_view>

#include "skiff/common/result.h"

namespace skiff::runtime::layertar {

struct Packed {
  std::string diffId;  // "sha256:<hex>" of the tar
  std::string digest;  // "sha256:<hex>" of blob
  std::string blob;    // the gzip bytes
};

// The layer under `dir` (the root itself not an entry). In memory: layers
// skiff builds are COPYs of a build context.
[[nodiscard]] Result<Packed> pack(const std::string& dir);

// Unpacks `blob` (gzip or plain tar) into `dir`, an existing empty directory
// the caller owns, and returns the diff id. Errors name the entry:
// `invalid layer: entry "a/../b": path climbs out of the layer`. On error
// `dir` may hold part of the layer: the caller removes it (removeUnpacked).
[[nodiscard]] Result<std::string> unpack(std::string_view blob, const std::string& dir);

// A plain tar gzipped as pack() gzips (no name or time in the header): the
// blob a layer that arrived uncompressed is kept and pushed as.
[[nodiscard]] Result<std::string> gzip(std::string_view tar);

// The tar of a blob: gunzipped, or as it is when it is a plain tar.
[[nodiscard]] Result<std::string> gunzip(std::string_view blob);

// Whether a blob is gzip (its magic bytes).
bool isGzip(std::string_view blob);

// The diff id of a blob, read to the end without writing anything.
[[nodiscard]] Result<std::string> diffIdOf(std::string_view blob);

// Removes a tree unpack() wrote, also when it holds directories without
// write or search permission for us (possible when not running as root).
void removeUnpacked(const std::string& dir);

}  // namespace skiff::runtime::layertar
