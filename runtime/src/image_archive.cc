// `image save` / `image load`: docker-archive tars; see image.h.
#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "image_fs.h"
#include "layer_tar.h"
#include "skiff/common/file.h"
#include "skiff/runtime/image.h"

namespace skiff::runtime {
namespace {

using json = nlohmann::json;

std::string hexOf(const std::string& id) { return id.substr(id.find(':') + 1); }

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

Error badArchive(const std::string& path, const std::string& what) {
  return Error::msg("invalid image archive " + path + ": " + what, EINVAL);
}

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
  std::set<std::string> written;
  for (const auto& ref : refs) {
    auto image = resolve(ref);
    if (!image.ok()) return image.error();
    auto config = exportImageConfig(image->id);
    if (!config.ok()) return config.error();
    json entry{{"Config", hexOf(image->id) + ".json"}, {"RepoTags", json::array()}, {"Layers", json::array()}};
    if (written.insert(entry["Config"]).second) SKIFF_TRY(addFile(a.get(), entry["Config"], *config));
    for (const auto& layer : image->layers) {
      const std::string name = hexOf(layer) + "/layer.tar";
      entry["Layers"].push_back(name);
      if (!written.insert(name).second) continue;
      auto blob = exportLayer(layer);
      if (!blob.ok()) return blob.error();
      auto tar = layertar::gunzip(*blob);  // docker-archive layers are plain tars
      if (!tar.ok()) return tar.error();
      SKIFF_TRY(addFile(a.get(), name, *tar));
    }
    // A tag given by name goes in with that name; an id saves every tag.
    const std::string asTag = normalizeImageRef(ref);
    for (const auto& t : image->tags) {
      if (ref.rfind("sha256:", 0) == 0 || hexOf(image->id).rfind(ref, 0) == 0 || t == asTag) {
        entry["RepoTags"].push_back(t);
        const size_t colon = t.rfind(':');
        repositories[t.substr(0, colon)][t.substr(colon + 1)] = hexOf(image->id);
      }
    }
    manifest.push_back(std::move(entry));
  }
  SKIFF_TRY(addFile(a.get(), "manifest.json", manifest.dump()));
  SKIFF_TRY(addFile(a.get(), "repositories", repositories.dump()));
  if (archive_write_close(a.get()) != ARCHIVE_OK) return Error::msg("image save: cannot finish the tar");
  return skiff::writeFileAtomic(path, out, 0600);
}

Result<std::vector<std::string>> ImageStore::load(const std::string& path) {
  // Every regular entry, by its clean path (a docker-archive is a few
  // configs and the layers' tars; docker 25 names them blobs/sha256/<hex>).
  std::map<std::string, std::string> files;
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
  auto m = files.find("manifest.json");
  if (m == files.end()) return badArchive(path, "no manifest.json (not what docker save writes)");
  json manifest = json::parse(m->second, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_array()) return badArchive(path, "manifest.json is not a list");

  std::vector<std::string> lines;
  for (const auto& entry : manifest) {
    if (!entry.is_object() || !entry.value("Config", json()).is_string())
      return badArchive(path, "a manifest.json entry without Config");
    const std::string configName = entry["Config"].get<std::string>();
    auto config = files.find(configName);
    if (config == files.end())
      return badArchive(path, "it does not hold " + configName + ", which manifest.json names");
    json c = json::parse(config->second, nullptr, /*allow_exceptions=*/false);
    std::vector<std::string> diffIds;
    if (c.is_object() && c.contains("rootfs") && c["rootfs"].is_object() && c["rootfs"].contains("diff_ids") &&
        c["rootfs"]["diff_ids"].is_array()) {
      for (const auto& d : c["rootfs"]["diff_ids"]) diffIds.push_back(d.is_string() ? d.get<std::string>() : "");
    }
    const json layers = entry.value("Layers", json::array());
    if (!layers.is_array() || layers.size() != diffIds.size())
      return badArchive(path, configName + " lists " + std::to_string(diffIds.size()) + " layers, manifest.json " +
                                  std::to_string(layers.is_array() ? layers.size() : 0));
    for (size_t i = 0; i < diffIds.size(); ++i) {
      if (hasLayer(diffIds[i])) continue;
      const std::string name = layers[i].is_string() ? layers[i].get<std::string>() : "";
      auto file = files.find(name);
      if (file == files.end()) return badArchive(path, "it does not hold " + name + ", which manifest.json names");
      // Kept gzipped, as a pulled or built layer is: the blob a push sends.
      Result<std::string> blob =
          layertar::isGzip(file->second) ? Result<std::string>(file->second) : layertar::gzip(file->second);
      if (!blob.ok()) return blob.error();
      SKIFF_TRY(importLayer(diffIds[i], *blob));
    }
    std::vector<std::string> tags;
    for (const auto& t : entry.value("RepoTags", json::array())) {
      if (t.is_string()) tags.push_back(familiar(t.get<std::string>()));
    }
    auto image = importImage(config->second, tags.empty() ? "" : tags[0]);
    if (!image.ok()) return image.error();
    for (size_t i = 1; i < tags.size(); ++i) SKIFF_TRY(tag(image->id, tags[i]));
    if (tags.empty()) lines.push_back("Loaded image ID: " + image->id);
    for (const auto& t : tags) lines.push_back("Loaded image: " + t);
  }
  return lines;
}

}  // namespace skiff::runtime
