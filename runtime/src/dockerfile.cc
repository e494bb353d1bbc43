// Dockerfile instruction finder and word lexer; see dockerfile.h.
#include "skiff/runtime/dockerfile.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "skiff/runtime/compose.h"

namespace skiff::runtime::dockerfile {
namespace {

constexpr int kMaxExpansionDepth = 32;  // bounds recursion on `${a:-${b:-...}}`

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

Error lineError(int line, const std::string& text) { return Error::msg("line " + std::to_string(line) + ": " + text); }

bool isKnown(const std::string& kw) {
  static const char* const kKnown[] = {"FROM",  "COPY", "ADD", "ENV",        "WORKDIR", "EXPOSE",
                                       "LABEL", "USER", "CMD", "ENTRYPOINT", "ARG",     "HEALTHCHECK"};
  return std::any_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return kw == k; });
}

bool takesFlags(const std::string& kw) { return kw == "COPY" || kw == "ADD" || kw == "FROM" || kw == "HEALTHCHECK"; }

// A HEALTHCHECK duration flag's value in seconds; 0 (docker: "use the
// default") as given. Docker refuses anything between 0 and 1ms.
Result<double> healthcheckDuration(int line, const std::string& flag, const std::string& value) {
  std::string what = "HEALTHCHECK --";
  what.append(flag).append("=").append(value).append(": ");
  double seconds = 0;
  try {
    seconds = parseDurationSeconds(value);
  } catch (const std::exception& e) {  // invalid_argument; out_of_range from a huge number
    return lineError(line, what + e.what());
  }
  if (seconds != 0 && seconds < 0.001) return lineError(line, what + "cannot be less than 1ms");
  return seconds;
}

Result<Instruction> parseInstruction(int line, std::string_view text) {
  Instruction ins;
  ins.line = line;
  text = trim(text);
  size_t end = 0;
  while (end < text.size() && !isSpace(text[end])) ++end;
  ins.keyword = upper(text.substr(0, end));
  std::string_view rest = trim(text.substr(end));

  if (ins.keyword == "RUN") {
    return lineError(line, "RUN is not supported (skiff builds images without running containers)");
  }
  if (ins.keyword == "SHELL") {
    return lineError(line, "SHELL is not supported (shell-form commands always use /bin/sh -c)");
  }
  if (!isKnown(ins.keyword) && !isIgnoredInstruction(ins.keyword)) {
    return lineError(line, "unknown instruction: " + std::string(text.substr(0, end)));
  }
  if (takesFlags(ins.keyword)) {
    while (rest.size() > 2 && rest.substr(0, 2) == "--") {
      size_t e = 0;
      while (e < rest.size() && !isSpace(rest[e])) ++e;
      std::string_view flag = rest.substr(2, e - 2);
      size_t eq = flag.find('=');
      if (eq == std::string_view::npos) {
        ins.flags.emplace_back(std::string(flag), "");
      } else {
        ins.flags.emplace_back(std::string(flag.substr(0, eq)), std::string(flag.substr(eq + 1)));
      }
      rest = trim(rest.substr(e));
    }
  }
  ins.args = std::string(rest);
  if (ins.args.empty()) return lineError(line, ins.keyword + " requires at least one argument");
  if (ins.args.front() == '[') {
    // Not valid JSON means shell form, exactly as docker decides.
    auto parsed = nlohmann::json::parse(ins.args, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_array() && std::all_of(parsed.begin(), parsed.end(), [](const auto& v) { return v.is_string(); })) {
      std::vector<std::string> words;
      for (const auto& v : parsed) words.push_back(v.template get<std::string>());
      ins.json = std::move(words);
    }
  }
  return ins;
}

class Lexer {
 public:
  Lexer(std::string_view text, const Vars& vars, bool split, int depth)
      : s_(text), vars_(vars), split_(split), depth_(depth) {}

  Result<std::vector<std::string>> run() {
    if (depth_ > kMaxExpansionDepth) return Error::msg("variable substitution nested too deeply");
    std::vector<std::string> words;
    std::string cur;
    bool inWord = false;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (split_ && isSpace(c)) {
        if (inWord) words.push_back(std::move(cur));
        cur.clear();
        inWord = false;
        ++i_;
        continue;
      }
      inWord = true;
      if (c == '\\') {
        if (i_ + 1 < s_.size()) cur += s_[i_ + 1];
        i_ += 2;
      } else if (c == '\'') {
        size_t close = s_.find('\'', i_ + 1);
        if (close == std::string_view::npos) {
          return Error::msg("unexpected end of statement while looking for matching single-quote");
        }
        cur.append(s_.substr(i_ + 1, close - i_ - 1));
        i_ = close + 1;
      } else if (c == '"') {
        ++i_;
        bool closed = false;
        while (i_ < s_.size()) {
          char d = s_[i_];
          if (d == '"') {
            closed = true;
            ++i_;
            break;
          }
          if (d == '\\' && i_ + 1 < s_.size() && (s_[i_ + 1] == '"' || s_[i_ + 1] == '\\' || s_[i_ + 1] == '$')) {
            cur += s_[i_ + 1];
            i_ += 2;
          } else if (d == '$') {
            auto r = expand();
            if (!r.ok()) return r.error();
            cur += *r;
          } else {
            cur += d;
            ++i_;
          }
        }
        if (!closed) {
          return Error::msg("unexpected end of statement while looking for matching double-quote");
        }
      } else if (c == '$') {
        auto r = expand();
        if (!r.ok()) return r.error();
        cur += *r;
      } else {
        cur += c;
        ++i_;
      }
    }
    if (inWord || !split_) words.push_back(std::move(cur));
    return words;
  }

 private:
  static bool isNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

  std::string lookup(const std::string& name, bool* set) const {
    auto it = vars_.find(name);
    *set = it != vars_.end();
    return *set ? it->second : std::string();
  }

  // At s_[i_] == '$'.
  Result<std::string> expand() {
    ++i_;
    if (i_ >= s_.size()) return std::string("$");
    if (s_[i_] != '{') {
      size_t start = i_;
      while (i_ < s_.size() && isNameChar(s_[i_])) ++i_;
      if (start == i_) return std::string("$");
      bool set = false;
      return lookup(std::string(s_.substr(start, i_ - start)), &set);
    }
    // ${...}: find the matching brace, allowing nesting in the default word.
    size_t open = i_;
    int level = 0;
    size_t close = std::string_view::npos;
    for (size_t j = open; j < s_.size(); ++j) {
      if (s_[j] == '{') ++level;
      if (s_[j] == '}' && --level == 0) {
        close = j;
        break;
      }
    }
    if (close == std::string_view::npos) {
      return Error::msg("missing '}' in '" + std::string(s_) + "'");
    }
    std::string_view inner = s_.substr(open + 1, close - open - 1);
    i_ = close + 1;
    size_t n = 0;
    while (n < inner.size() && isNameChar(inner[n])) ++n;
    if (n == 0) return Error::msg("bad substitution in '" + std::string(s_) + "'");
    bool set = false;
    std::string value = lookup(std::string(inner.substr(0, n)), &set);
    std::string_view op = inner.substr(n);
    if (op.empty()) return value;
    if (op.size() >= 2 && op[0] == ':' && (op[1] == '-' || op[1] == '+')) {
      Lexer sub(op.substr(2), vars_, /*split=*/false, depth_ + 1);
      auto word = sub.run();
      if (!word.ok()) return word.error();
      std::string alt = word->empty() ? std::string() : (*word)[0];
      bool nonEmpty = set && !value.empty();
      if (op[1] == '-') return nonEmpty ? value : alt;
      return nonEmpty ? alt : std::string();
    }
    return Error::msg("unsupported modifier in '${" + std::string(inner) + "}'");
  }

  std::string_view s_;
  const Vars& vars_;
  bool split_;
  int depth_;
  size_t i_ = 0;
};

}  // namespace

Result<Healthcheck> parseHealthcheck(const Instruction& ins) {
  const int line = ins.line;
  std::string_view args = trim(ins.args);
  size_t end = 0;
  while (end < args.size() && !isSpace(args[end])) ++end;
  const std::string type = upper(args.substr(0, end));
  const std::string_view rest = trim(args.substr(end));
  Healthcheck hc;
  if (type == "NONE") {
    if (!rest.empty()) return lineError(line, "HEALTHCHECK NONE takes no arguments");
    hc.test = {"NONE"};
    hc.disable = true;
    return hc;
  }
  if (type != "CMD") {
    return lineError(line, "Unknown type \"" + std::string(args.substr(0, end)) + "\" in HEALTHCHECK (try CMD)");
  }
  std::vector<std::string> seen;
  for (const auto& [name, value] : ins.flags) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return lineError(line, std::string("HEALTHCHECK: duplicate flag specified: --") + name);
    }
    seen.push_back(name);
    const bool duration = name == "interval" || name == "timeout" || name == "start-period" || name == "start-interval";
    if (!duration && name != "retries") return lineError(line, std::string("HEALTHCHECK: unknown flag: --") + name);
    if (value.empty()) return lineError(line, std::string("HEALTHCHECK: missing a value on flag: --") + name);
    if (duration) {
      auto seconds = healthcheckDuration(line, name, value);
      if (!seconds.ok()) return seconds.error();
      if (*seconds == 0) continue;
      if (name == "interval") hc.intervalSeconds = *seconds;
      if (name == "timeout") hc.timeoutSeconds = *seconds;
      if (name == "start-period") hc.startPeriodSeconds = *seconds;
      continue;
    }
    const bool negative = value[0] == '-';
    const std::string digits = negative ? value.substr(1) : value;
    if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) {
      return lineError(line, std::string("HEALTHCHECK --retries=") + value + ": not a number");
    }
    if (negative) return lineError(line, std::string("HEALTHCHECK: --retries cannot be negative (") + value + ")");
    const uint64_t retries = std::stoull(digits);
    if (retries != 0) hc.retries = retries;
  }
  if (!rest.empty() && rest.front() == '[') {
    // Not valid JSON means shell form, exactly as for CMD.
    auto parsed = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_array() && std::all_of(parsed.begin(), parsed.end(), [](const auto& v) { return v.is_string(); })) {
      if (parsed.empty()) return lineError(line, "Missing command after HEALTHCHECK CMD");
      hc.test = {"CMD"};
      for (const auto& v : parsed) hc.test.push_back(v.template get<std::string>());
      return hc;
    }
  }
  if (rest.empty()) return lineError(line, "Missing command after HEALTHCHECK CMD");
  hc.test = {"CMD-SHELL", std::string(rest)};
  return hc;
}

bool isIgnoredInstruction(std::string_view keyword) {
  static const char* const kIgnored[] = {"VOLUME", "STOPSIGNAL", "ONBUILD", "MAINTAINER"};
  std::string kw = upper(keyword);
  return std::any_of(std::begin(kIgnored), std::end(kIgnored), [&](const char* k) { return kw == k; });
}

Result<std::vector<Instruction>> parseDockerfile(std::string_view text) {
  std::vector<Instruction> out;
  std::string pending;
  int startLine = 0;
  bool continuing = false;
  int lineNo = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineNo;
    std::string_view t = trim(line);
    // Comment lines are dropped also inside a continuation, as docker does.
    if (t.empty() || t.front() == '#') {
      if (nl == text.size()) break;
      continue;
    }
    if (!continuing) startLine = lineNo;
    std::string_view body = line;
    while (!body.empty() && isSpace(body.back())) body.remove_suffix(1);
    continuing = !body.empty() && body.back() == '\\';
    if (continuing) body.remove_suffix(1);
    pending.append(body);
    if (!continuing) {
      auto ins = parseInstruction(startLine, pending);
      if (!ins.ok()) return ins.error();
      out.push_back(std::move(*ins));
      pending.clear();
    }
    if (nl == text.size()) break;
  }
  if (continuing && !trim(pending).empty()) {
    auto ins = parseInstruction(startLine, pending);
    if (!ins.ok()) return ins.error();
    out.push_back(std::move(*ins));
  }
  if (out.empty()) return Error::msg("the Dockerfile has no instructions");
  return out;
}

Result<std::vector<std::string>> lexWords(std::string_view text, const Vars& vars) {
  return Lexer(text, vars, /*split=*/true, 0).run();
}

Result<std::string> lexWord(std::string_view text, const Vars& vars) {
  auto words = Lexer(text, vars, /*split=*/false, 0).run();
  if (!words.ok()) return words.error();
  return words->empty() ? std::string() : (*words)[0];
}

}  // namespace skiff::runtime::dockerfile
