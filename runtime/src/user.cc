// Users from the image's /etc/passwd and /etc/group (see user.h).
#include "skiff/runtime/user.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace skiff::runtime {
namespace {

bool isNumber(const std::string& s) {
  return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> f;
  std::istringstream in(line);
  std::string field;
  while (std::getline(in, field, ':')) f.push_back(field);
  return f;
}

std::string readAllOrEmpty(const char* path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

Result<UserIds> resolveUser(const std::string& user, std::string_view passwd, std::string_view group) {
  UserIds ids;
  std::string name = user;
  std::string groupName;
  if (auto colon = user.find(':'); colon != std::string::npos) {
    name = user.substr(0, colon);
    groupName = user.substr(colon + 1);
  }
  bool found = false;
  std::istringstream users{std::string(passwd)};
  std::string line;
  while (std::getline(users, line)) {
    const auto f = fields(line);
    if (f.size() < 6 || !isNumber(f[2]) || !isNumber(f[3])) continue;
    if (f[0] == name || (isNumber(name) && f[2] == name)) {
      ids.uid = static_cast<uid_t>(std::stoul(f[2]));
      ids.gid = static_cast<gid_t>(std::stoul(f[3]));
      ids.home = f[5];
      found = true;
      break;
    }
  }
  if (!found) {
    if (!isNumber(name)) return Error::msg("unable to find user " + name + ": no matching entries in passwd file");
    ids.uid = static_cast<uid_t>(std::stoul(name));
    ids.gid = ids.uid;
  }
  if (groupName.empty()) return ids;
  if (isNumber(groupName)) {
    ids.gid = static_cast<gid_t>(std::stoul(groupName));
    return ids;
  }
  std::istringstream groups{std::string(group)};
  while (std::getline(groups, line)) {
    const auto f = fields(line);
    if (f.size() >= 3 && f[0] == groupName && isNumber(f[2])) {
      ids.gid = static_cast<gid_t>(std::stoul(f[2]));
      return ids;
    }
  }
  return Error::msg("unable to find group " + groupName + ": no matching entries in group file");
}

Result<UserIds> resolveUserInRoot(const std::string& user) {
  return resolveUser(user, readAllOrEmpty("/etc/passwd"), readAllOrEmpty("/etc/group"));
}

}  // namespace skiff::runtime
