// `image save` / `image load`: docker-archive tars that are OCI image layouts
// too, as docker 25 writes them, and pure OCI layouts; see image.h.
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "image_fs.h"
#include "layer_tar.h"
#include "skiff/common/file.h"
#include "skiff/runtime/image.h"

namespace skiff::runtime {
namespace {

using json = nlohmann::json;

// OCI's media types and docker's (registry.h has the same for a pull; the
// registry library links this one, so it cannot be included here).
constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
constexpr char kOciLayerTar[] = "application/vnd.oci.image.layer.v1.tar";
constexpr char kDockerManifestList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";

// Annotations of index.json: the image's full name (containerd's, which
// docker 25 writes) and OCI's reference name (docker writes the tag there,
// skopeo whatever follows the archive path: a tag or a whole reference).
constexpr const char* kContainerdName = "io.containerd.image.name";
constexpr const char* kRefName = "org.opencontainers.image.ref.name";

std::string hexOf(const std::string& id) { return id.substr(id.find(':') + 1); }
std::string blobName(const std::string& hex) { return "blobs/sha256/" + hex; }

// A string member of a JSON object, or "" (nlohmann's value() throws when the
// member has another type, and an archive is input we do not trust).
std::string stringAt(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

struct WriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct ReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

Status addFile(struct archive* a, const std::string& name, std::string_view data) {
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  archive_entry_set_mtime(e, 0, 0);
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  if (r < ARCHIVE_WARN || archive_write_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size())) {
    const char* why = archive_error_string(a);
    return Error::msg("image save: " + name + ": " + (why != nullptr ? why : "write failed"));
  }
  return okStatus();
}

// docker's familiar form of a Docker Hub name, as docker load shows it:
// "docker.io/library/nginx:1" -> "nginx:1", "docker.io/alice/app:1" ->
// "alice/app:1" (skopeo writes RepoTags fully qualified).
std::string familiar(std::string name) {
  for (const char* prefix : {"docker.io/library/", "docker.io/"}) {
    const std::string p = prefix;
    if (name.rfind(p, 0) == 0) return name.substr(p.size());
  }
  return name;
}

// The inverse: the fully qualified name docker 25 writes as
// io.containerd.image.name. A first component with '.' or ':' or
// "localhost" is a registry host and stays; any other name is Docker Hub's,
// a one-component one under library/.
std::string qualified(const std::string& name) {
  const size_t slash = name.find('/');
  if (slash == std::string::npos) return "docker.io/library/" + name;
  const std::string first = name.substr(0, slash);
  if (first.find_first_of(".:") != std::string::npos || first == "localhost") return name;
  return "docker.io/" + name;
}

Error badArchive(const std::string& path, const std::string& what) {
  return Error::msg("invalid image archive " + path + ": " + what, EINVAL);
}

// The tar of a stored layer, checked against its diff id: the archive names
// the blob by the sha256 of these bytes, and a loader compares that with the
// config's diff id, so a corrupt store is said here rather than there.
Result<std::string> layerTar(const ImageStore& store, const std::string& diffId) {
  auto blob = store.exportLayer(diffId);
  if (!blob.ok()) return blob.error();
  auto tar = layertar::gunzip(*blob);
  if (!tar.ok()) return tar.error();
  const std::string got = "sha256:" + imagefs::sha256Hex(*tar);
  if (got != diffId) return Error::msg("image save: layer " + diffId + " holds a tar of " + got + " (corrupt store)");
  return tar;
}

// One image an archive holds, read and checked before anything is stored,
// so that a refused archive leaves no image behind.
struct ArchivedImage {
  std::string_view config;  // the config's bytes: their sha256 is the image id
  // Each layer's diff id and blob (gzip or plain tar; empty when the store
  // has the layer and the archive need not hold it).
  std::vector<std::pair<std::string, std::string_view>> layers;
  std::vector<std::string> tags;  // docker's familiar form
};

std::vector<std::string> diffIdsOf(std::string_view config) {
  const json c = json::parse(config, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> diffIds;
  if (c.is_object() && c.contains("rootfs") && c["rootfs"].is_object() && c["rootfs"].contains("diff_ids") &&
      c["rootfs"]["diff_ids"].is_array()) {
    for (const auto& d : c["rootfs"]["diff_ids"]) diffIds.push_back(d.is_string() ? d.get<std::string>() : "");
  }
  return diffIds;
}

using Files = std::map<std::string, std::string>;

// docker's manifest.json: [{"Config", "RepoTags", "Layers"}], each a path in
// the tar (<hex>.json and <hex>/layer.tar, or docker 25's blobs/sha256/<hex>).
Result<std::vector<ArchivedImage>> readDockerArchive(const ImageStore& store, const std::string& path,
                                                     const Files& files, const std::string& manifestText) {
  json manifest = json::parse(manifestText, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_array()) return badArchive(path, "manifest.json is not a list");
  std::vector<ArchivedImage> images;
  for (const auto& entry : manifest) {
    if (!entry.is_object() || !entry.value("Config", json()).is_string())
      return badArchive(path, "a manifest.json entry without Config");
    const std::string configName = entry["Config"].get<std::string>();
    auto config = files.find(configName);
    if (config == files.end())
      return badArchive(path, "it does not hold " + configName + ", which manifest.json names");
    ArchivedImage image{config->second, {}, {}};
    const std::vector<std::string> diffIds = diffIdsOf(image.config);
    const json layers = entry.value("Layers", json::array());
    if (!layers.is_array() || layers.size() != diffIds.size())
      return badArchive(path, configName + " lists " + std::to_string(diffIds.size()) + " layers, manifest.json " +
                                  std::to_string(layers.is_array() ? layers.size() : 0));
    for (size_t i = 0; i < diffIds.size(); ++i) {
      if (store.hasLayer(diffIds[i])) {
        image.layers.emplace_back(diffIds[i], std::string_view());
        continue;
      }
      const std::string name = layers[i].is_string() ? layers[i].get<std::string>() : "";
      auto file = files.find(name);
      if (file == files.end()) return badArchive(path, "it does not hold " + name + ", which manifest.json names");
      image.layers.emplace_back(diffIds[i], file->second);
    }
    for (const auto& t : entry.value("RepoTags", json::array())) {
      if (t.is_string()) image.tags.push_back(familiar(t.get<std::string>()));
    }
    images.push_back(std::move(image));
  }
  return images;
}

// An OCI image layout (https://github.com/opencontainers/image-spec,
// image-layout.md): index.json lists descriptors of manifests (or of nested
// indexes), every blob lives at blobs/<alg>/<hex> and is checked against
// the digest that names it.
class OciLayout {
 public:
  OciLayout(const std::string& path, const Files& files) : path_(path), files_(files) {}

  Result<std::vector<ArchivedImage>> read(const std::string& indexText) const {
    const json index = json::parse(indexText, nullptr, /*allow_exceptions=*/false);
    if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
      return badArchive(path_, "index.json has no manifests list");
    std::vector<ArchivedImage> images;
    std::map<std::string, size_t> byManifest;  // manifest digest -> images[i]
    for (const auto& d : index["manifests"]) {
      // A layout may hold the images of several platforms side by side.
      if (d.is_object() && d.contains("platform") && !isLinuxAmd64(d["platform"])) continue;
      auto manifest = manifestOf(d, 0);
      if (!manifest.ok()) return manifest.error();
      auto [it, added] = byManifest.emplace(manifest->first, images.size());
      if (added) {
        auto image = imageOf(manifest->first, manifest->second);
        if (!image.ok()) return image.error();
        images.push_back(std::move(*image));
      }
      const std::string name = nameOf(d);
      auto& tags = images[it->second].tags;
      if (!name.empty() && std::find(tags.begin(), tags.end(), name) == tags.end()) tags.push_back(name);
    }
    if (images.empty()) return badArchive(path_, "index.json lists no linux/amd64 image");
    return images;
  }

 private:
  static bool isLinuxAmd64(const json& platform) {
    return stringAt(platform, "os") == "linux" && stringAt(platform, "architecture") == "amd64";
  }

  // The name a descriptor of index.json gives its image, in docker's
  // familiar form: io.containerd.image.name, else the reference name when it
  // is a whole reference ("hello:1", "127.0.0.1:5000/a/b:c") rather than a
  // tag alone ("latest", which docker writes beside the full name); "" for
  // none. A name by digest only ("x@sha256:...") is no tag.
  static std::string nameOf(const json& descriptor) {
    const json annotations = descriptor.is_object() ? descriptor.value("annotations", json::object()) : json();
    std::string name = stringAt(annotations, kContainerdName);
    if (name.empty()) {
      name = stringAt(annotations, kRefName);
      if (name.find_first_of("/:") == std::string::npos) return "";
    }
    if (name.find('@') != std::string::npos) return "";
    return familiar(name);
  }

  // The bytes a descriptor names, their sha256 compared with its digest.
  Result<std::string_view> blob(const json& descriptor) const {
    const std::string digest = stringAt(descriptor, "digest");
    if (digest.empty()) return badArchive(path_, "a descriptor without a digest");
    const size_t colon = digest.find(':');
    const std::string alg = digest.substr(0, colon);
    const std::string hex = colon == std::string::npos ? "" : digest.substr(colon + 1);
    if (alg != "sha256") return badArchive(path_, "blob " + digest + ": only sha256 digests are supported");
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      return badArchive(path_, "invalid digest " + digest);
    auto file = files_.find(blobName(hex));
    if (file == files_.end()) return badArchive(path_, "it does not hold " + blobName(hex) + " (blob " + digest + ")");
    if (imagefs::sha256Hex(file->second) != hex)
      return badArchive(path_, "blob " + digest + " does not match its digest");
    const auto size = descriptor.find("size");
    if (size != descriptor.end() && size->is_number_unsigned() && size->get<uint64_t>() != file->second.size())
      return badArchive(path_, "blob " + digest + " is " + std::to_string(file->second.size()) +
                                   " bytes, its descriptor says " + std::to_string(size->get<uint64_t>()));
    return std::string_view(file->second);
  }

  // The image manifest a descriptor leads to, with its digest: the manifest
  // itself, or the linux/amd64 entry of an index (docker's manifest list),
  // the rule a pull follows (registry/src/client.cc).
  Result<std::pair<std::string, json>> manifestOf(const json& descriptor, int depth) const {
    auto bytes = blob(descriptor);
    if (!bytes.ok()) return bytes.error();
    const std::string digest = stringAt(descriptor, "digest");
    json j = json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return badArchive(path_, "blob " + digest + " is not a JSON manifest or index");
    std::string type = stringAt(descriptor, "mediaType");
    if (type.empty()) type = stringAt(j, "mediaType");
    if (type.empty()) type = j.contains("manifests") ? kOciIndex : kOciManifest;  // OCI's media type is optional
    if (type == kOciManifest || type == kDockerManifest) return std::make_pair(digest, std::move(j));
    if (type != kOciIndex && type != kDockerManifestList)
      return badArchive(path_, "blob " + digest + " is " + type + ", neither an image manifest nor an index");
    if (depth >= 4) return badArchive(path_, "image indexes nested more than 4 deep");
    if (j.contains("manifests") && j["manifests"].is_array()) {
      for (const auto& e : j["manifests"]) {
        if (e.is_object() && isLinuxAmd64(e.value("platform", json::object()))) return manifestOf(e, depth + 1);
      }
    }
    return badArchive(path_, "index " + digest + " has no linux/amd64 image");
  }

  Result<ArchivedImage> imageOf(const std::string& digest, const json& manifest) const {
    if (!manifest.contains("config") || !manifest["config"].is_object())
      return badArchive(path_, "manifest " + digest + " has no config");
    auto config = blob(manifest["config"]);
    if (!config.ok()) return config.error();
    ArchivedImage image{*config, {}, {}};
    const std::vector<std::string> diffIds = diffIdsOf(image.config);
    const json layers = manifest.value("layers", json::array());
    if (!layers.is_array() || layers.size() != diffIds.size())
      return badArchive(path_, "config " + stringAt(manifest["config"], "digest") + " lists " +
                                   std::to_string(diffIds.size()) + " layers, manifest " + digest + " " +
                                   std::to_string(layers.is_array() ? layers.size() : 0));
    for (size_t i = 0; i < diffIds.size(); ++i) {
      const std::string type = stringAt(layers[i], "mediaType");
      auto layer = blob(layers[i]);
      if (!layer.ok()) return layer.error();
      const bool zstdMagic = layer->size() >= 4 && layer->substr(0, 4) == "\x28\xb5\x2f\xfd";
      if (type.find("zstd") != std::string::npos || zstdMagic)
        return badArchive(path_, "layer " + stringAt(layers[i], "digest") + " is " +
                                     (type.empty() ? "zstd-compressed" : type) +
                                     ", which skiff cannot read (a layer loads as a gzip or plain tar)");
      image.layers.emplace_back(diffIds[i], *layer);
    }
    return image;
  }

  const std::string& path_;
  const Files& files_;
};

}  // namespace

Status ImageStore::save(const std::vector<std::string>& refs, const std::string& path) const {
  std::string out;
  std::unique_ptr<struct archive, WriteFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_open(
      a.get(), &out, nullptr,
      [](struct archive*, void* self, const void* data, size_t n) -> la_ssize_t {
        static_cast<std::string*>(self)->append(static_cast<const char*>(data), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  json manifest = json::array();
  json repositories = json::object();
  json index{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", json::array()}};
  std::set<std::string> written;             // blob hexes in the tar
  std::map<std::string, size_t> layerSizes;  // diff id -> bytes of its tar
  std::set<std::string> described;           // index.json entries: manifest digest + name
  auto addBlob = [&](const std::string& hex, std::string_view bytes) -> Status {
    if (!written.insert(hex).second) return okStatus();
    return addFile(a.get(), blobName(hex), bytes);
  };
  for (const auto& ref : refs) {
    auto image = resolve(ref);
    if (!image.ok()) return image.error();
    auto config = exportImageConfig(image->id);
    if (!config.ok()) return config.error();
    SKIFF_TRY(addBlob(hexOf(image->id), *config));
    json entry{{"Config", blobName(hexOf(image->id))}, {"RepoTags", json::array()}, {"Layers", json::array()}};
    json oci{{"schemaVersion", 2},
             {"mediaType", kOciManifest},
             {"config", {{"mediaType", kOciConfig}, {"digest", image->id}, {"size", config->size()}}},
             {"layers", json::array()}};
    for (const auto& layer : image->layers) {
      // Layers go in as plain tars, as docker 25 writes them: the blob's
      // digest is then the diff id.
      if (!layerSizes.count(layer)) {
        auto tar = layerTar(*this, layer);
        if (!tar.ok()) return tar.error();
        SKIFF_TRY(addBlob(hexOf(layer), *tar));
        layerSizes[layer] = tar->size();
      }
      entry["Layers"].push_back(blobName(hexOf(layer)));
      oci["layers"].push_back({{"mediaType", kOciLayerTar}, {"digest", layer}, {"size", layerSizes[layer]}});
    }
    const std::string ociBytes = oci.dump();
    const std::string ociHex = imagefs::sha256Hex(ociBytes);
    SKIFF_TRY(addBlob(ociHex, ociBytes));
    const json descriptor{{"mediaType", kOciManifest}, {"digest", "sha256:" + ociHex}, {"size", ociBytes.size()}};
    // A tag given by name goes in with that name; an id saves every tag.
    const std::string asTag = normalizeImageRef(ref);
    for (const auto& t : image->tags) {
      if (ref.rfind("sha256:", 0) == 0 || hexOf(image->id).rfind(ref, 0) == 0 || t == asTag) {
        entry["RepoTags"].push_back(t);
        const size_t colon = t.rfind(':');
        repositories[t.substr(0, colon)][t.substr(colon + 1)] = hexOf(image->id);
        if (!described.insert(ociHex + " " + t).second) continue;
        json named = descriptor;
        named["annotations"] = {{kContainerdName, qualified(t)}, {kRefName, t.substr(colon + 1)}};
        index["manifests"].push_back(std::move(named));
      }
    }
    if (entry["RepoTags"].empty() && described.insert(ociHex).second) index["manifests"].push_back(descriptor);
    manifest.push_back(std::move(entry));
  }
  SKIFF_TRY(addFile(a.get(), "index.json", index.dump()));
  SKIFF_TRY(addFile(a.get(), "manifest.json", manifest.dump()));
  SKIFF_TRY(addFile(a.get(), "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  SKIFF_TRY(addFile(a.get(), "repositories", repositories.dump()));
  if (archive_write_close(a.get()) != ARCHIVE_OK) return Error::msg("image save: cannot finish the tar");
  return skiff::writeFileAtomic(path, out, 0600);
}

Result<std::vector<std::string>> ImageStore::load(const std::string& path) {
  // Every regular entry, by its clean path (a docker-archive is a few
  // configs and the layers' tars; an OCI layout blobs/sha256/<hex>).
  Files files;
  {
    std::unique_ptr<struct archive, ReadFree> a(archive_read_new());
    archive_read_support_format_tar(a.get());
    archive_read_support_filter_gzip(a.get());  // `docker save | gzip`, as docker load reads it
    if (archive_read_open_filename(a.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK) {
      if (archive_errno(a.get()) == ENOENT) return Error::fromErrno("image load: open " + path, ENOENT);
      return badArchive(path, archive_error_string(a.get()));
    }
    struct archive_entry* e = nullptr;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
      if (archive_entry_filetype(e) != AE_IFREG) continue;
      std::string name;
      if (!imagefs::cleanRelative(archive_entry_pathname(e), &name)) continue;
      std::string data;
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      while ((r = archive_read_data_block(a.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        data.resize(static_cast<size_t>(offset));
        data.append(static_cast<const char*>(buf), size);
      }
      if (r != ARCHIVE_EOF) break;
      files[name] = std::move(data);
    }
    if (r != ARCHIVE_EOF) return badArchive(path, archive_error_string(a.get()));
  }
  // docker's manifest.json when there is one (docker save, also docker 25's
  // that is an OCI layout as well), else the OCI layout's index.json.
  Result<std::vector<ArchivedImage>> images = std::vector<ArchivedImage>{};
  if (auto m = files.find("manifest.json"); m != files.end()) {
    images = readDockerArchive(*this, path, files, m->second);
  } else if (auto i = files.find("index.json"); i != files.end()) {
    images = OciLayout(path, files).read(i->second);
  } else {
    return badArchive(path, "no manifest.json or index.json (not what docker save or an OCI layout holds)");
  }
  if (!images.ok()) return images.error();

  std::vector<std::string> lines;
  for (const auto& image : *images) {
    for (const auto& [diffId, layer] : image.layers) {
      if (hasLayer(diffId)) continue;
      // Kept gzipped, as a pulled or built layer is: the blob a push sends.
      Result<std::string> blob =
          layertar::isGzip(layer) ? Result<std::string>(std::string(layer)) : layertar::gzip(layer);
      if (!blob.ok()) return blob.error();
      // importLayer compares the tar's sha256 with the config's diff id.
      Status st = importLayer(diffId, *blob);
      if (!st.ok()) return st.error().code == EINVAL ? badArchive(path, st.error().message) : st.error();
    }
    auto stored = importImage(image.config, image.tags.empty() ? "" : image.tags[0]);
    if (!stored.ok()) return stored.error();
    for (size_t i = 1; i < image.tags.size(); ++i) SKIFF_TRY(tag(stored->id, image.tags[i]));
    if (image.tags.empty()) lines.push_back("Loaded image ID: " + stored->id);
    for (const auto& t : image.tags) lines.push_back("Loaded image: " + t);
  }
  return lines;
}

}  // namespace skiff::runtime
