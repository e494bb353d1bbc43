#pragma once
// Pure string conversions used by the compose parser: units (memory, durations),
// shell-like word splitting, port specs and ${VAR} interpolation. No YAML and
// no I/O here, so each rule is unit-testable on its own; every function throws
// std::invalid_argument whose what() names the offending value (the parser
// adds file, line and key path).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/runtime/stack.h"

namespace skiff::runtime::units {

// Splits a command line as docker does for `command: "a 'b c'"` (POSIX shell
// quoting without expansion): whitespace separates words, '...' is literal,
// "..." honours \" \\ \$ \`, a backslash outside quotes escapes the next char.
std::vector<std::string> splitShellWords(std::string_view text);

// Short port syntax ("[ip:][published[-end]:]target[-end][/proto]"), expanded
// to one PortSpec per port of a range.
std::vector<PortSpec> parsePortShort(std::string_view text);

// Checks a port number given as text, 1..65535.
uint16_t parsePortNumber(std::string_view text);

// Compose-style boolean: true/false/yes/no/on/off (any case).
bool parseBool(std::string_view text);

// Non-negative integer (decimal).
uint64_t parseUnsigned(std::string_view text);

// Non-negative finite real number ("0.1", "2").
double parseNonNegativeDouble(std::string_view text);

// How deep ${A:-${B:-...}} defaults may nest. Docker documents no bound;
// ours keeps the recursion (and the CLI's stack) small on hostile files.
inline constexpr int kMaxInterpolationDepth = 64;

// ${VAR} interpolation. lookup returns nullopt for unset variables;
// onUnset is called for each unset variable that had no default. Throws
// std::invalid_argument for bad syntax, for ${VAR:?msg} with VAR unset and
// for defaults nested deeper than kMaxInterpolationDepth.
std::string interpolate(std::string_view text,
                        const std::function<std::optional<std::string>(const std::string&)>& lookup,
                        const std::function<void(const std::string&)>& onUnset);

}  // namespace skiff::runtime::units
