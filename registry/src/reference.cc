// Reference parsing (docker's distribution/reference rules, the subset
// skiff needs), digests and WWW-Authenticate challenges: pure functions.

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "skiff/registry/registry.h"

namespace skiff::registry {
namespace {

bool lowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A path component: [a-z0-9]+ joined by '.', '_', '__' or one or more '-'.
bool validComponent(std::string_view c) {
  size_t i = 0;
  auto alnumRun = [&] {
    const size_t b = i;
    while (i < c.size() && lowerAlnum(c[i])) ++i;
    return i > b;
  };
  if (!alnumRun()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnumRun()) return false;
  }
  return true;
}

bool validTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t.front())) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool validHost(std::string_view h) {
  if (h.empty()) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
  });
}

}  // namespace

std::string Reference::str() const {
  std::string s = registry;
  s.append("/").append(repository);
  if (!tag.empty()) s.append(":").append(tag);
  if (!digest.empty()) s.append("@").append(digest);
  return s;
}

Result<Reference> parseReference(std::string_view text) {
  auto bad = [&](const std::string& why) {
    std::string m = "invalid reference \"";
    m.append(text).append("\": ").append(why);
    return Error::msg(m);
  };
  if (text.empty()) return bad("empty");
  if (text.size() > 255 + 128 + 72) return bad("too long");
  Reference r;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    if (!validDigest(r.digest)) return bad("digest must be sha256:<64 hex>");
    rest = rest.substr(0, at);
  }
  // A ':' after the last '/' separates the tag.
  const size_t slash = rest.rfind('/');
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    if (!validTag(r.tag)) return bad(r.tag.empty() ? "empty tag" : "invalid tag \"" + r.tag + "\"");
    rest = rest.substr(0, colon);
  }
  std::string_view path = rest;
  if (const size_t first = rest.find('/'); first != std::string_view::npos) {
    std::string_view head = rest.substr(0, first);
    if (head.find('.') != std::string_view::npos || head.find(':') != std::string_view::npos || head == "localhost") {
      if (!validHost(head)) return bad("invalid registry \"" + std::string(head) + "\"");
      r.registry = std::string(head);
      path = rest.substr(first + 1);
    }
  }
  if (r.registry.empty()) r.registry = "docker.io";
  if (path.empty()) return bad("empty repository");
  size_t start = 0;
  while (true) {
    size_t end = path.find('/', start);
    std::string_view c = path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!validComponent(c))
      return bad("repository name must be lowercase letters, digits and separators (\"" + std::string(c) + "\")");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  r.repository = std::string(path);
  if (r.registry == "docker.io" && r.repository.find('/') == std::string::npos) r.repository.insert(0, "library/");
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

std::string sha256Digest(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

bool validDigest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  return std::all_of(d.begin() + 7, d.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<Challenge> parseChallenge(std::string_view h) {
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  auto token = [&] {
    size_t b = i;
    while (i < h.size() && h[i] != ' ' && h[i] != '\t' && h[i] != '=' && h[i] != ',') ++i;
    return std::string(h.substr(b, i - b));
  };
  skipSpace();
  Challenge c;
  c.scheme = lower(token());
  if (c.scheme.empty()) return std::nullopt;
  while (true) {
    skipSpace();
    if (i >= h.size()) break;
    std::string key = lower(token());
    skipSpace();
    if (key.empty() || i >= h.size() || h[i] != '=') break;  // another challenge, or junk: stop
    ++i;
    skipSpace();
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        char ch = h[i++];
        if (ch == '\\' && i < h.size()) {
          value.push_back(h[i++]);
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value.push_back(ch);
        }
      }
      if (!closed) return std::nullopt;
    } else {
      value = token();
    }
    c.params[key] = value;
    skipSpace();
    if (i < h.size() && h[i] == ',') ++i;
  }
  return c;
}

}  // namespace skiff::registry
