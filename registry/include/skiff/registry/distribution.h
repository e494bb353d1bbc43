#pragma once
// Images between the local store and a registry: `skiff push` and `pull`.
//
// push sends each layer's blob the registry lacks (HEAD first, so a push
// re-run after an interruption sends only what is missing), then the config,
// then a Docker v2 schema 2 manifest (an OCI one when a layer is an
// uncompressed tar) under the tag. pull reads the manifest (an index or
// manifest list resolved to linux/amd64), the config, and each layer the
// store lacks by diff id; every blob is verified by its digest, every layer
// by its diff id, and the image is named only when all of it is stored, so
// an interrupted pull leaves no half image in `image ls`.
//
// Both report as docker prints, one line per event, through `progress`:
//   The push refers to repository [127.0.0.1:5000/alice/get-started]
//   3f1c0a2b9d4e: Pushed                       (or: Layer already exists)
//   part2: digest: sha256:... size: 528
//   part2: Pulling from alice/get-started
//   3f1c0a2b9d4e: Pull complete                (or: Already exists)
//   Digest: sha256:...
//   Status: Downloaded newer image for 127.0.0.1:5000/alice/get-started:part2
//
// Blocking; blobs are held in memory one at a time.

#include <functional>
#include <string>

#include "skiff/common/result.h"
#include "skiff/registry/registry.h"
#include "skiff/runtime/image.h"

namespace skiff::registry {

using Progress = std::function<void(const std::string& line)>;

struct Pushed {
  std::string digest;  // of the manifest
  size_t size = 0;     // of the manifest, in bytes
};

// Pushes the local image named `ref` (as `image ls` shows it) to ref's
// repository and tag. Not stored: `An image does not exist locally with the
// tag: 127.0.0.1:5000/alice/get-started` (docker's words).
[[nodiscard]] Result<Pushed> push(runtime::ImageStore& store, Client& client, const Reference& ref,
                                  const Progress& progress);

struct Pulled {
  std::string id;           // the local image id
  std::string digest;       // of the manifest
  bool downloaded = false;  // false: the tag named this image already
};

// Pulls ref into the store and tags it ref.str() (registry/repository:tag).
[[nodiscard]] Result<Pulled> pull(runtime::ImageStore& store, Client& client, const Reference& ref,
                                  const Progress& progress);

// The name an image pulled by `ref` gets locally: registry/repository:tag,
// and for docker.io docker's short form ("nginx:1.25", "alice/app:1").
std::string localName(const Reference& ref);

}  // namespace skiff::registry
