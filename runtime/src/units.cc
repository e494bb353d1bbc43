#include "units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {

namespace {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Parses "123" or "1.5" at the front of s; returns the number of chars used.
size_t parseDecimal(std::string_view s, double& out) {
  size_t i = 0;
  while (i < s.size() && isDigit(s[i])) ++i;
  size_t intEnd = i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && isDigit(s[i])) ++i;
  }
  if (intEnd == 0 && i <= 1) return 0;  // neither "5" nor ".5"
  out = std::stod(std::string(s.substr(0, i)));
  return i;
}

}  // namespace

int64_t parseMemoryBytes(std::string_view text) {
  auto bad = [&]() { return std::invalid_argument("invalid memory value " + quote(text)); };
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  double value = 0;
  size_t used = parseDecimal(s, value);
  if (used == 0 || !isDigit(s[0])) throw bad();
  std::string_view rest = s.substr(used);
  if (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
  // Suffix grammar as docker's regexp: ([kKmMgGtTpP])?[iI]?[bB]?
  double mult = 1;
  if (!rest.empty()) {
    switch (std::tolower(static_cast<unsigned char>(rest[0]))) {
      case 'k':
        mult = 1024.0;
        break;
      case 'm':
        mult = 1024.0 * 1024;
        break;
      case 'g':
        mult = 1024.0 * 1024 * 1024;
        break;
      case 't':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
      case 'p':
        mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
        break;
      default:
        break;
    }
    if (mult != 1) rest.remove_prefix(1);
  }
  if (!rest.empty() && mult != 1 && (rest[0] == 'i' || rest[0] == 'I')) rest.remove_prefix(1);
  if (!rest.empty() && (rest[0] == 'b' || rest[0] == 'B')) rest.remove_prefix(1);
  if (!rest.empty()) throw bad();
  double bytes = value * mult;
  if (!std::isfinite(bytes) || bytes >= 9.2e18) throw bad();
  return static_cast<int64_t>(bytes);
}

double parseDurationSeconds(std::string_view text) {
  auto bad = [&]() { return std::invalid_argument("invalid duration " + quote(text)); };
  std::string_view s = text;
  if (s == "0") return 0;
  if (s.empty()) throw bad();
  double total = 0;
  while (!s.empty()) {
    double value = 0;
    size_t used = parseDecimal(s, value);
    if (used == 0) throw bad();
    s.remove_prefix(used);
    size_t u = 0;
    while (u < s.size() && !isDigit(s[u]) && s[u] != '.') ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double scale = 0;
    if (unit == "ns")
      scale = 1e-9;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
      scale = 1e-6;
    else if (unit == "ms")
      scale = 1e-3;
    else if (unit == "s")
      scale = 1;
    else if (unit == "m")
      scale = 60;
    else if (unit == "h")
      scale = 3600;
    else
      throw std::invalid_argument(unit.empty() ? "missing unit in duration " + quote(text)
                                               : "unknown unit " + quote(unit) + " in duration " + quote(text));
    total += value * scale;
  }
  if (!std::isfinite(total)) throw bad();
  return total;
}

namespace units {

std::vector<std::string> splitShellWords(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  bool inWord = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (inWord) words.push_back(std::move(cur));
      cur.clear();
      inWord = false;
      continue;
    }
    inWord = true;
    if (c == '\\') {
      if (i + 1 < text.size()) cur += text[++i];
      continue;
    }
    if (c == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) throw std::invalid_argument("unterminated quote in " + quote(text));
      cur.append(text.substr(i + 1, end - i - 1));
      i = end;
      continue;
    }
    if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`')) {
          cur += text[++j];
        } else {
          cur += text[j];
        }
      }
      if (j >= text.size()) throw std::invalid_argument("unterminated quote in " + quote(text));
      i = j;
      continue;
    }
    cur += c;
  }
  if (inWord) words.push_back(std::move(cur));
  return words;
}

uint64_t parseUnsigned(std::string_view text) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw std::invalid_argument("invalid non-negative integer " + quote(text));
  return v;
}

double parseNonNegativeDouble(std::string_view text) {
  double v = 0;
  size_t used = 0;
  try {
    v = std::stod(std::string(text), &used);
  } catch (const std::exception&) {
    throw std::invalid_argument("invalid number " + quote(text));
  }
  if (used != text.size() || !std::isfinite(v)) throw std::invalid_argument("invalid number " + quote(text));
  if (v < 0) throw std::invalid_argument("negative value " + quote(text));
  return v;
}

bool parseBool(std::string_view text) {
  std::string s;
  for (char c : text) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "yes" || s == "on" || s == "y") return true;
  if (s == "false" || s == "no" || s == "off" || s == "n") return false;
  throw std::invalid_argument("invalid boolean " + quote(text));
}

uint16_t parsePortNumber(std::string_view text) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v == 0 || v > 65535)
    throw std::invalid_argument("invalid port " + quote(text));
  return static_cast<uint16_t>(v);
}

namespace {

// "8000" -> {8000,8000}; "8000-8002" -> {8000,8002}.
std::pair<uint16_t, uint16_t> parseRange(std::string_view r, std::string_view whole) {
  size_t dash = r.find('-');
  try {
    if (dash == std::string_view::npos) {
      uint16_t p = parsePortNumber(r);
      return {p, p};
    }
    uint16_t a = parsePortNumber(r.substr(0, dash));
    uint16_t b = parsePortNumber(r.substr(dash + 1));
    if (b < a) throw std::invalid_argument("");
    return {a, b};
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("invalid port " + quote(whole));
  }
}

}  // namespace

std::vector<PortSpec> parsePortShort(std::string_view text) {
  std::string_view s = text;
  Protocol proto = Protocol::kTcp;
  if (size_t slash = s.rfind('/'); slash != std::string_view::npos) {
    std::string protocol(s.substr(slash + 1));
    s = s.substr(0, slash);
    auto parsed = parseKind<Protocol>(protocol);
    if (!parsed) throw std::invalid_argument("invalid protocol " + quote(protocol) + " in port " + quote(text));
    proto = *parsed;
  }
  std::string hostIp;
  if (!s.empty() && s[0] == '[') {  // "[::1]:80:80"
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      throw std::invalid_argument("invalid port " + quote(text));
    hostIp = std::string(s.substr(1, close - 1));
    s = s.substr(close + 2);
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ':') {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string_view published, target;
  if (!hostIp.empty()) {
    if (parts.size() != 2) throw std::invalid_argument("invalid port " + quote(text));
    published = parts[0];
    target = parts[1];
  } else if (parts.size() == 1) {
    target = parts[0];
  } else if (parts.size() == 2) {
    published = parts[0];
    target = parts[1];
    if (published.empty()) throw std::invalid_argument("invalid port " + quote(text));
  } else if (parts.size() == 3) {
    hostIp = std::string(parts[0]);
    published = parts[1];
    target = parts[2];
    if (hostIp.empty()) throw std::invalid_argument("invalid port " + quote(text));
  } else {
    throw std::invalid_argument("invalid port " + quote(text));
  }
  auto [t0, t1] = parseRange(target, text);
  std::vector<PortSpec> out;
  if (published.empty()) {
    for (uint32_t t = t0; t <= t1; ++t)
      out.push_back(PortSpec{static_cast<uint16_t>(t), 0, proto, PortMode::kIngress, hostIp});
    return out;
  }
  auto [p0, p1] = parseRange(published, text);
  if (p1 - p0 != t1 - t0) {
    // Docker maps a host range onto one container port only for plain
    // containers; a swarm service needs one published port per target.
    throw std::invalid_argument("port ranges don't match in " + quote(text));
  }
  for (uint32_t i = 0; i <= static_cast<uint32_t>(t1 - t0); ++i)
    out.push_back(
        PortSpec{static_cast<uint16_t>(t0 + i), static_cast<uint16_t>(p0 + i), proto, PortMode::kIngress, hostIp});
  return out;
}

namespace {

bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

namespace {

using Lookup = std::function<std::optional<std::string>(const std::string&)>;
using OnUnset = std::function<void(const std::string&)>;

// nesting counts the ${...} around text; each nested default recurses once, so
// the bound also bounds the stack (a 50k-level default crashed the CLI).
std::string interpolateAt(std::string_view text, const Lookup& lookup, const OnUnset& onUnset, int nesting) {
  if (nesting > kMaxInterpolationDepth) {
    throw std::invalid_argument("interpolation nested deeper than " + std::to_string(kMaxInterpolationDepth) +
                                " levels");
  }
  auto interpolate = [&](std::string_view arg, const Lookup& l, const OnUnset& u) {
    return interpolateAt(arg, l, u, nesting + 1);
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '$') {
      out += c;
      continue;
    }
    if (i + 1 >= text.size()) throw std::invalid_argument("invalid interpolation format for " + quote(text));
    char n = text[i + 1];
    if (n == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (isNameStart(n)) {
      size_t j = i + 1;
      while (j < text.size() && isNameChar(text[j])) ++j;
      std::string name(text.substr(i + 1, j - i - 1));
      auto v = lookup(name);
      if (v)
        out += *v;
      else
        onUnset(name);
      i = j - 1;
      continue;
    }
    if (n != '{') throw std::invalid_argument("invalid interpolation format for " + quote(text));
    // Find the matching '}' (defaults may nest ${...}).
    size_t j = i + 2;
    int depth = 1;
    for (; j < text.size(); ++j) {
      if (text[j] == '{')
        ++depth;
      else if (text[j] == '}' && --depth == 0)
        break;
    }
    if (j >= text.size()) throw std::invalid_argument("invalid interpolation format for " + quote(text));
    std::string_view inner = text.substr(i + 2, j - i - 2);
    size_t k = 0;
    while (k < inner.size() && isNameChar(inner[k])) ++k;
    std::string name(inner.substr(0, k));
    if (name.empty() || !isNameStart(name[0]))
      throw std::invalid_argument("invalid interpolation format for " + quote(text));
    std::string_view op = inner.substr(k);
    auto v = lookup(name);
    if (op.empty()) {
      if (v)
        out += *v;
      else
        onUnset(name);
    } else {
      bool colon = op[0] == ':';
      if (colon) op.remove_prefix(1);
      if (op.empty()) throw std::invalid_argument("invalid interpolation format for " + quote(text));
      char kind = op[0];
      std::string_view arg = op.substr(1);
      bool set = v.has_value() && (!colon || !v->empty());
      if (kind == '-') {
        out += set ? *v : interpolate(arg, lookup, onUnset);
      } else if (kind == '?') {
        if (!set) {
          throw std::invalid_argument("required variable " + name +
                                      " is missing a value: " + interpolate(arg, lookup, onUnset));
        }
        out += *v;
      } else if (kind == '+') {
        if (set) out += interpolate(arg, lookup, onUnset);
      } else {
        throw std::invalid_argument("invalid interpolation format for " + quote(text));
      }
    }
    i = j;
  }
  return out;
}

}  // namespace

std::string interpolate(std::string_view text, const Lookup& lookup, const OnUnset& onUnset) {
  return interpolateAt(text, lookup, onUnset, 0);
}

}  // namespace units
}  // namespace skiff::runtime
