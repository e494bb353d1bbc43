#include "skiff/runtime/names.h"

#include <string>

namespace skiff::runtime {
namespace {

bool isAsciiAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// The value as an error message shows it: quoted, and cut when it is long
// enough to drown the message (a 30k-character name from the API).
std::string shown(std::string_view name) {
  constexpr size_t kShown = 80;
  // Appended in place: GCC 12 -O3 reports a false -Wrestrict on "\"" + string.
  std::string out(1, '"');
  if (name.size() <= kShown) return out.append(name).append("\"");
  return out.append(name.substr(0, kShown))
      .append("...\" (")
      .append(std::to_string(name.size()))
      .append(" characters)");
}

}  // namespace

std::string_view nameKindText(NameKind kind) {
  switch (kind) {
    case NameKind::kStack:
      return "stack";
    case NameKind::kService:
      return "service";
    case NameKind::kNetwork:
      return "network";
    case NameKind::kVolume:
      return "volume";
    case NameKind::kConfig:
      return "config";
    case NameKind::kSecret:
      return "secret";
  }
  return "object";
}

bool isValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !isAsciiAlnum(name[0])) return false;
  for (char c : name) {
    if (!isAsciiAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

Status checkName(NameKind kind, std::string_view name) {
  if (isValidName(name)) return okStatus();
  std::string what = "invalid " + std::string(nameKindText(kind)) + " name " + shown(name) + ": ";
  if (name.size() > kMaxNameLength) {
    return Error::msg(what + "a name must be " + std::to_string(kMaxNameLength) + " characters or fewer");
  }
  return Error::msg(what +
                    "a name must start with a letter or digit and contain only letters, digits, "
                    "'_', '.' and '-'");
}

Status checkHostname(std::string_view hostname, bool templated) {
  std::string what = "invalid hostname " + shown(hostname) + ": ";
  if (!templated && hostname.size() > kMaxHostnameLength) {
    return Error::msg(what + "a hostname must be " + std::to_string(kMaxHostnameLength) + " bytes or fewer");
  }
  for (char c : hostname) {
    const auto u = static_cast<unsigned char>(c);
    if (u < ' ' || u == 0x7f) return Error::msg(what + "a hostname must not contain control characters");
  }
  return okStatus();
}

}  // namespace skiff::runtime
