#pragma once
// One logging facade for every component. Lines go to stderr as
//   2026-11-28T03:45:32.123Z info  overlay: network webnet up (vni 4097)
// The daemon logs one line per state change a user would want to see.
// Thread-safe: a line is written with a single write(2).

#include <sstream>
#include <string>
#include <string_view>

namespace skiff::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void setLevel(Level level);
Level level();
// Parses "debug", "info", "warn", "error"; returns false on anything else.
bool parseLevel(std::string_view text, Level* out);

void write(Level level, std::string_view component, std::string_view message);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

template <typename... Args>
void debug(std::string_view component, const Args&... args) {
  if (level() <= Level::kDebug) write(Level::kDebug, component, detail::concat(args...));
}
template <typename... Args>
void info(std::string_view component, const Args&... args) {
  if (level() <= Level::kInfo) write(Level::kInfo, component, detail::concat(args...));
}
template <typename... Args>
void warn(std::string_view component, const Args&... args) {
  if (level() <= Level::kWarn) write(Level::kWarn, component, detail::concat(args...));
}
template <typename... Args>
void error(std::string_view component, const Args&... args) {
  write(Level::kError, component, detail::concat(args...));
}

}  // namespace skiff::log
