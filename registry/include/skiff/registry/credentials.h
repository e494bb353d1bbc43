#pragma once
// Registry credentials in docker's config.json format, so a user's existing
// file works and tools reading docker's file read skiff's:
//   {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}
// Other keys in the file are kept as they are. The file is written whole
// (temp + rename) with mode 0600; a file others can read is refused on load
// (`<path> is readable by others (mode 0644); chmod 600 it`).

#include <optional>
#include <string>

#include "skiff/common/result.h"
#include "skiff/registry/registry.h"

namespace skiff::registry {

class CredentialStore {
 public:
  explicit CredentialStore(std::string path) : path_(std::move(path)) {}

  // None when the file or the registry's entry does not exist.
  [[nodiscard]] Result<std::optional<Credentials>> get(const std::string& registry) const;
  [[nodiscard]] Status put(const std::string& registry, const Credentials& credentials);
  // True when there was an entry.
  [[nodiscard]] Result<bool> erase(const std::string& registry);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace skiff::registry
