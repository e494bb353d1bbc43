// push and pull between the image store and a registry; see distribution.h.
#include "skiff/registry/distribution.h"

#include <nlohmann/json.hpp>

namespace skiff::registry {
namespace {

using json = nlohmann::json;

constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
constexpr std::string_view kDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

std::string shortHex(const std::string& digest) {
  const size_t colon = digest.find(':');
  return digest.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

bool isGzip(std::string_view blob) {
  return blob.size() >= 2 && static_cast<unsigned char>(blob[0]) == 0x1f && static_cast<unsigned char>(blob[1]) == 0x8b;
}

void say(const Progress& progress, const std::string& line) {
  if (progress) progress(line);
}

struct Descriptor {
  std::string mediaType, digest;
  int64_t size = 0;
};

Result<Descriptor> descriptor(const json& j, const std::string& what) {
  if (!j.is_object()) return Error::msg("invalid manifest: " + what + " is not an object", EINVAL);
  Descriptor d;
  if (auto it = j.find("mediaType"); it != j.end() && it->is_string()) d.mediaType = it->get<std::string>();
  if (auto it = j.find("digest"); it != j.end() && it->is_string()) d.digest = it->get<std::string>();
  if (auto it = j.find("size"); it != j.end() && it->is_number_integer()) d.size = it->get<int64_t>();
  if (!validDigest(d.digest)) return Error::msg("invalid manifest: " + what + " has no valid sha256 digest", EINVAL);
  return d;
}

}  // namespace

std::string localName(const Reference& ref) {
  std::string name;
  if (ref.registry == "docker.io") {
    name = ref.repository.rfind("library/", 0) == 0 ? ref.repository.substr(8) : ref.repository;
  } else {
    name = ref.registry;
    name += '/';
    name += ref.repository;
  }
  name += ':';
  name += ref.tag.empty() ? "latest" : ref.tag;
  return name;
}

Result<Pushed> push(runtime::ImageStore& store, Client& client, const Reference& ref, const Progress& progress) {
  if (ref.tag.empty()) return Error::msg("push needs a tag, not a digest: " + ref.str(), EINVAL);
  const std::string local = localName(ref);
  auto image = store.resolve(local);
  if (!image.ok()) {
    std::string repo = local.substr(0, local.rfind(':'));
    return Error::msg("An image does not exist locally with the tag: " + repo, ENOENT);
  }
  say(progress, "The push refers to repository [" + ref.registry + "/" + ref.repository + "]");

  bool allGzip = true;
  std::vector<Descriptor> layers;
  for (const auto& diffId : image->layers) {
    auto blob = store.exportLayer(diffId);
    if (!blob.ok()) return blob.error();
    Descriptor d{isGzip(*blob) ? std::string(kDockerLayerGzip) : std::string(kOciLayer), sha256Digest(*blob),
                 static_cast<int64_t>(blob->size())};
    allGzip = allGzip && isGzip(*blob);
    auto sent = client.pushBlob(ref.repository, d.digest, *blob);
    if (!sent.ok()) return sent.error();
    say(progress, shortHex(d.digest) + (*sent ? ": Pushed" : ": Layer already exists"));
    layers.push_back(std::move(d));
  }
  auto config = store.exportImageConfig(image->id);
  if (!config.ok()) return config.error();
  auto sentConfig = client.pushBlob(ref.repository, image->id, *config);
  if (!sentConfig.ok()) return sentConfig.error();

  // Docker v2 schema 2 is what docker pushes; a layer that is a plain tar
  // (loaded from an archive that had it so) has no media type there: OCI.
  const std::string_view manifestType = allGzip ? kDockerManifest : kOciManifest;
  json m = {{"schemaVersion", 2},
            {"mediaType", manifestType},
            {"config",
             {{"mediaType", allGzip ? kDockerConfig : kOciConfig}, {"size", config->size()}, {"digest", image->id}}},
            {"layers", json::array()}};
  for (const auto& l : layers) {
    std::string type = l.mediaType;
    if (!allGzip && type == kDockerLayerGzip) type = kOciLayerGzip;
    m["layers"].push_back({{"mediaType", type}, {"size", l.size}, {"digest", l.digest}});
  }
  const std::string bytes = m.dump(3);
  auto digest = client.putManifest(ref.repository, ref.tag, std::string(manifestType), bytes);
  if (!digest.ok()) return digest.error();
  say(progress, ref.tag + ": digest: " + *digest + " size: " + std::to_string(bytes.size()));
  return Pushed{*digest, bytes.size()};
}

Result<Pulled> pull(runtime::ImageStore& store, Client& client, const Reference& ref, const Progress& progress) {
  const std::string reference = ref.digest.empty() ? (ref.tag.empty() ? "latest" : ref.tag) : ref.digest;
  say(progress, reference + ": Pulling from " + ref.repository);
  auto manifest = client.getManifest(ref.repository, reference);
  if (!manifest.ok()) return manifest.error();
  json m = json::parse(manifest->bytes, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object()) return Error::msg("invalid manifest for " + ref.str() + ": not JSON", EINVAL);
  if (m.value("schemaVersion", 0) != 2)
    return Error::msg("manifest of " + ref.str() + " is schema " + std::to_string(m.value("schemaVersion", 0)) +
                          "; skiff reads schema 2 (docker v2 and OCI)",
                      EINVAL);
  auto configDesc = descriptor(m.value("config", json()), "config");
  if (!configDesc.ok()) return configDesc.error();
  std::vector<Descriptor> layers;
  const json list = m.value("layers", json::array());
  if (!list.is_array()) return Error::msg("invalid manifest: layers is not a list", EINVAL);
  for (size_t i = 0; i < list.size(); ++i) {
    auto d = descriptor(list[i], "layer " + std::to_string(i + 1));
    if (!d.ok()) return d.error();
    if (d->mediaType == kDockerForeignLayer || d->mediaType.find("nondistributable") != std::string::npos)
      return Error::msg("layer " + d->digest + " is a foreign layer (" + d->mediaType + "): skiff does not fetch those",
                        EINVAL);
    if (d->mediaType.find("zstd") != std::string::npos)
      return Error::msg("layer " + d->digest + " is zstd-compressed (" + d->mediaType + "): skiff reads gzip and tar",
                        EINVAL);
    layers.push_back(std::move(*d));
  }

  auto config = client.getBlob(ref.repository, configDesc->digest);
  if (!config.ok()) return config.error();
  json c = json::parse(*config, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> diffIds;
  try {
    if (!c.is_discarded()) diffIds = c.at("rootfs").at("diff_ids").get<std::vector<std::string>>();
  } catch (const json::exception&) {
  }
  if (c.is_discarded() || diffIds.size() != layers.size())
    return Error::msg("image config " + configDesc->digest + " lists " + std::to_string(diffIds.size()) +
                          " layers, its manifest " + std::to_string(layers.size()),
                      EINVAL);

  const std::string name = ref.digest.empty() ? localName(ref) : "";
  auto before = name.empty() ? Result<runtime::ImageRecord>(Error::msg("")) : store.resolve(name);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (store.hasLayer(diffIds[i])) {
      say(progress, shortHex(layers[i].digest) + ": Already exists");
      continue;
    }
    auto blob = client.getBlob(ref.repository, layers[i].digest);
    if (!blob.ok()) return blob.error();
    auto imported = store.importLayer(diffIds[i], *blob);
    if (!imported.ok()) return imported.error();
    say(progress, shortHex(layers[i].digest) + ": Pull complete");
  }
  auto image = store.importImage(*config, name);
  if (!image.ok()) return image.error();
  const bool downloaded = !before.ok() || before->id != image->id;
  say(progress, "Digest: " + manifest->digest);
  if (!name.empty()) {
    say(progress,
        std::string(downloaded ? "Status: Downloaded newer image for " : "Status: Image is up to date for ") + name);
  }
  return Pulled{image->id, manifest->digest, downloaded};
}

}  // namespace skiff::registry
