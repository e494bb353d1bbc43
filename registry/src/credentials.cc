#include "skiff/registry/credentials.h"

#include <sys/stat.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "skiff/common/base64.h"
#include "skiff/common/file.h"

namespace skiff::registry {
namespace {
using json = nlohmann::json;

// The file's JSON; an empty object when it does not exist.
Result<json> load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return json::object();
    return Error::fromErrno("stat " + path);
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error::msg(path + " is readable by others (mode " + mode + "); chmod 600 it");
  }
  auto text = readFile(path);
  if (!text.ok()) return text.error();
  try {
    json j = json::parse(*text);
    if (!j.is_object()) return Error::msg(path + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    return Error::msg(path + ": invalid JSON: " + e.what());
  }
}

}  // namespace

Result<std::optional<Credentials>> CredentialStore::get(const std::string& registry) const {
  auto j = load(path_);
  if (!j.ok()) return j.error();
  auto auths = j->find("auths");
  if (auths == j->end() || !auths->is_object()) return std::optional<Credentials>();
  auto entry = auths->find(registry);
  if (entry == auths->end() || !entry->is_object()) return std::optional<Credentials>();
  auto decoded = base64Decode(entry->value("auth", ""));
  auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (!decoded || colon == std::string::npos)
    return Error::msg(path_ + ": the entry for " + registry + " is not base64 of user:password");
  return std::optional<Credentials>(Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
}

Status CredentialStore::put(const std::string& registry, const Credentials& c) {
  auto j = load(path_);
  if (!j.ok()) return j.error();
  if (!j->contains("auths") || !(*j)["auths"].is_object()) (*j)["auths"] = json::object();
  std::string pair = c.username;
  pair.append(":").append(c.password);
  (*j)["auths"][registry] = json{{"auth", base64Encode(pair)}};
  return writeFileAtomic(path_, j->dump(1, '\t') + "\n", 0600);
}

Result<bool> CredentialStore::erase(const std::string& registry) {
  auto j = load(path_);
  if (!j.ok()) return j.error();
  auto auths = j->find("auths");
  if (auths == j->end() || !auths->is_object() || auths->erase(registry) == 0) return false;
  SKIFF_TRY(writeFileAtomic(path_, j->dump(1, '\t') + "\n", 0600));
  return true;
}

}  // namespace skiff::registry
