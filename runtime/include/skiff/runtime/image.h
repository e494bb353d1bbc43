#pragma once
// Images: `skiff image build|ls|tag|rm` and what a container needs to start.
//
// Design note: images are docker's and OCI's: each layer a gzip tar, the
// config docker's image config JSON (architecture, os, config, rootfs with
// the layers' diff ids), the image id "sha256:<hex>" of exactly the config's
// bytes. Under <data-root>/images:
//   layers/<hex>/          one directory per layer, its files unpacked
//                          (docker's whiteouts as overlayfs ones); <hex> is
//                          the layer's diff id, the sha256 of its tar. A
//                          COPY/ADD makes one layer, packed canonically (see
//                          runtime/src/layer_tar.h), so equal content is
//                          stored once and a rebuild of an unchanged context
//                          yields the same layers and the same image id.
//   layers/<hex>.tar.gz    the layer's blob, as pushed, pulled and fetched.
//   configs/<hex>.json     the image config. The creation time is kept out
//                          of it (in repositories.json), as is everything
//                          derived from the layers (whether /bin/sh exists).
//   repositories.json      {"tags": {"name:tag": id}, "images": {id: {created, size}}}
// Every file is written to a temp name and renamed, so a crash leaves either
// the old or the new state. Layer dirs are used read-only as overlayfs
// lowerdirs by the container runtime (layerDirs() gives them topmost first).
//
// Threading: build(), and a push or pull (exportLayer, importLayer,
// importImage), may run on another thread than the other calls (netd runs
// them on libuv's thread pool, one at a time, so its loop keeps serving while
// a context is copied or layers cross). Every change to repositories.json (a
// build's last step, tag, remove, importImage) holds the store's index lock,
// so none is lost; a layer lands by one rename; a build or pull whose layer
// an `image rm` removed meanwhile fails and says so. resolve() and list()
// read the index file, which is always replaced whole.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/runtime/stack.h"

namespace skiff::runtime {

// What a container needs from its image (docker's image config subset).
struct ImageConfig {
  std::vector<std::string> env;  // "K=V", in order
  std::vector<std::string> entrypoint, cmd;
  std::string workingDir, user;           // workingDir "" = "/"
  std::vector<std::string> exposedPorts;  // "80/tcp"
  std::map<std::string, std::string> labels;
  bool hasShell = false;  // /bin/sh exists in the layers
  // HEALTHCHECK (inherited from the base image unless the Dockerfile says
  // otherwise); HEALTHCHECK NONE is test ["NONE"] with disable set. Stored
  // as docker stores it: "Healthcheck": {"Test", "Interval", "Timeout",
  // "StartPeriod" (nanoseconds), "Retries"}; 0 or absent reads as docker's
  // default, and an image without one has no such key (so its id is as
  // before).
  std::optional<Healthcheck> healthcheck;
};

struct ImageRecord {
  std::string id;                   // "sha256:<64 hex>" of the config JSON
  std::vector<std::string> tags;    // "name:tag"; empty for a dangling image
  std::vector<std::string> layers;  // layer digests "sha256:<hex>", bottom first
  ImageConfig config;
  int64_t created = 0;  // unix seconds
  int64_t size = 0;     // bytes of regular files over all layers
};

class ImageStore {
 public:
  // inUse(imageId) tells remove() whether a container or service still uses
  // the image; without it nothing is considered in use.
  explicit ImageStore(std::string dataRoot, std::function<bool(const std::string& imageId)> inUse = {});

  void setInUse(std::function<bool(const std::string& imageId)> inUse) { inUse_ = std::move(inUse); }

  // Builds <contextDir>/Dockerfile; tag "name[:tag]" (":latest" when no tag),
  // "" for an untagged image. buildLog (may be null) receives docker-like
  // "Step 1/5 : FROM scratch" lines and warnings. Errors name the Dockerfile
  // line: `line 3: RUN is not supported (...)`.
  [[nodiscard]] Result<ImageRecord> build(const std::string& contextDir, const std::string& tag,
                                          std::vector<std::string>* buildLog);

  // "name", "name:tag", "sha256:<hex>", a full or unique short hex id.
  // Not found: `image NAME not found locally; build it with skiff image build`.
  [[nodiscard]] Result<ImageRecord> resolve(const std::string& ref) const;

  // Every image, tagged or not, newest first.
  std::vector<ImageRecord> list() const;

  // Adds tag `target` ("name[:tag]") to the image `source` resolves to; moves
  // the tag when it pointed elsewhere.
  [[nodiscard]] Status tag(const std::string& source, const std::string& target);

  // `ref` a tag: removes the tag; the image (config and layers no other image
  // uses) goes when it was the last tag. `ref` an id: removes the image; with
  // several tags only when force. When the image is in use: refused unless
  // force; with force the tags go but the files stay (a dangling image, as
  // docker leaves it) so running containers keep their lowerdirs.
  [[nodiscard]] Status remove(const std::string& ref, bool force);

  // Absolute layer dirs, TOPMOST FIRST (the order overlayfs lowerdir wants).
  std::vector<std::string> layerDirs(const ImageRecord& image) const;

  // Moving an image between stores (a worker fetching from the manager, a
  // registry): the sender exports the config and each layer the receiver
  // lacks (hasLayer), the receiver imports the layers, then the config. Both
  // sides verify by content: a layer's diff id is the sha256 of the tar it
  // was unpacked from, the image id the sha256 of the config bytes. Layers
  // are named by diff id. Blocking file I/O, on the caller's thread like
  // build(); blobs are held in memory.

  // Diff id "sha256:<64 hex>" names a layer present in layers/.
  bool hasLayer(const std::string& digest) const;

  // The layer's gzip tar. Not in the store (ENOENT): `layer sha256:<hex>
  // not found`.
  [[nodiscard]] Result<std::string> exportLayer(const std::string& digest) const;

  // Unpacks a gzip (or plain) tar into a temp dir under images/tmp,
  // refusing unsafe entries ("invalid layer: entry ..."), compares the
  // sha256 of the tar read with `digest` (`layer digest mismatch: want
  // sha256:A, got sha256:B`), then keeps the blob and renames the dir into
  // layers/. Nothing is left behind on error. A layer already present is a
  // no-op (the blob is not read).
  [[nodiscard]] Status importLayer(const std::string& digest, std::string_view archive);

  // The exact config bytes whose sha256 is the image id `ref` resolves to.
  [[nodiscard]] Result<std::string> exportImageConfig(const std::string& ref) const;

  // Stores an image whose layers were imported: the id is sha256 of
  // configBytes (callers compare it with the id they asked for); every layer
  // the config lists must be present, else (ENOENT) `layer sha256:<hex> not
  // found (needed by image sha256:<hex>)` for the first missing one. Writes
  // configs/<hex>.json and, when tag is not "", points the tag at the image,
  // as build() does. Importing a stored image again only (re)sets the tag.
  [[nodiscard]] Result<ImageRecord> importImage(std::string_view configBytes, const std::string& tag);

  // `image save`: the images `refs` name as one tar at `path` (mode 0600),
  // what `docker save` of docker 25 writes: a docker-archive that is an OCI
  // image layout as well. blobs/sha256/<hex> holds each config (<hex> the
  // image id's), each layer as a plain tar (<hex> its diff id, computed from
  // the tar: a store whose layer no longer matches is refused) and an OCI
  // image manifest per image, each blob once; index.json lists a descriptor
  // per (image, tag) with annotations io.containerd.image.name (fully
  // qualified: docker.io/library/nginx:latest) and
  // org.opencontainers.image.ref.name (the tag), one without for an image
  // saved untagged; oci-layout; docker's manifest.json ([{"Config",
  // "RepoTags", "Layers"}], paths of the blobs) and repositories. A tag keeps
  // its name in RepoTags; an id saves the image with all its tags.
  [[nodiscard]] Status save(const std::vector<std::string>& refs, const std::string& path) const;

  // `image load`: every image of a docker-archive (docker's classic one, or
  // docker 25's whose manifest.json names blobs/sha256/<hex>; gzipped or
  // not) or, when it has no manifest.json, of an OCI image layout
  // (index.json, as skopeo's oci-archive or a tarred umoci layout): the
  // descriptors followed, a nested index (or docker manifest list) to its
  // linux/amd64 image, every blob's sha256 checked against its digest, gzip
  // or plain tar layers (zstd refused). The archive is read and its blobs
  // checked before anything is stored; each layer's tar is checked against
  // the config's diff id as importLayer stores it (a mismatch stores no
  // image). Tags: RepoTags, or in a layout
  // io.containerd.image.name, else org.opencontainers.image.ref.name when it
  // is a whole reference ("hello:1"; a tag alone names nothing). Returns
  // docker's lines: "Loaded image: name:tag", or "Loaded image ID:
  // sha256:..." for an untagged one. Errors: `invalid image archive PATH:
  // ...`, naming what is missing or the blob that does not match its digest.
  [[nodiscard]] Result<std::vector<std::string>> load(const std::string& path);

  const std::string& root() const { return root_; }  // <data-root>/images

 private:
  std::string root_;
  std::function<bool(const std::string&)> inUse_;
  std::mutex buildMu_;  // one build at a time
  std::mutex indexMu_;  // held while repositories.json is read, changed and saved
};

// The wire form netd's API and the CLI share (docker inspect's names):
// {"Id","RepoTags","Created","Size","Layers","Config":{"Env","Entrypoint",
// "Cmd","WorkingDir","User","ExposedPorts":[...],"Labels","HasShell",
// "Healthcheck" (only when set, in the config file's form)}}.
// imageFromJson(imageToJson(r)) == r field by field; throws
// nlohmann::json::exception on malformed input (callers parse input only).
nlohmann::json imageToJson(const ImageRecord& image);
ImageRecord imageFromJson(const nlohmann::json& j);

// "name" -> "name:latest"; a ':' after the last '/' is the tag separator, so
// "localhost:5000/app" is "localhost:5000/app:latest".
std::string normalizeImageRef(const std::string& ref);

}  // namespace skiff::runtime
