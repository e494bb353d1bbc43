#include "skiff/cli/format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace skiff::cli {

namespace {

// docker's tabwriter settings (cli/command/formatter: NewWriter(out, 10, 1, 3, ' ', 0)).
constexpr size_t kMinWidth = 10;
constexpr size_t kPadding = 3;

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> cells;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    if (tab == std::string::npos) {
      cells.push_back(line.substr(start));
      return cells;
    }
    cells.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

int digits(std::string_view text, size_t pos, size_t count) {
  if (pos + count > text.size()) return -1;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

size_t displayWidth(std::string_view text) {
  size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string renderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    // The last cell of a row is not a column (tabwriter leaves it unaligned).
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      if (widths.size() <= i) widths.resize(i + 1, kMinWidth);
      widths[i] = std::max(widths[i], displayWidth(row[i]) + kPadding);
    }
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(widths[i] - displayWidth(row[i]), ' ');
    }
    out += '\n';
  }
  return out;
}

std::string alignTabs(const std::vector<std::string>& lines) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(lines.size());
  for (const auto& line : lines) rows.push_back(splitTabs(line));
  return renderTable(rows);
}

namespace {

// go-units' CustomSize: divide by base while a larger unit fits, then print
// with `format` (a "%.Ng%s" of the unit's precision).
template <size_t N>
std::string scaledSize(double bytes, double base, const char* const (&units)[N], const char* format) {
  size_t unit = 0;
  while (bytes >= base && unit + 1 < N) {
    bytes /= base;
    ++unit;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, bytes, units[unit]);
  return buf;
}

}  // namespace

std::string humanSize(double bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  return scaledSize(bytes, 1000.0, kUnits, "%.3g%s");
}

std::string binarySize(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  return scaledSize(bytes, 1024.0, kUnits, "%.4g%s");
}

std::optional<double> parseRfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (text.size() < 20) return std::nullopt;
  const int year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  const int hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
  if (year < 0 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return std::nullopt;
  if (text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':') {
    return std::nullopt;
  }
  size_t pos = 19;
  double fraction = 0;
  if (pos < text.size() && text[pos] == '.') {
    double scale = 0.1;
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
  }
  if (pos >= text.size()) return std::nullopt;
  int offsetSeconds = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int oh = digits(text, pos + 1, 2), om = digits(text, pos + 4, 2);
    if (oh < 0 || om < 0 || text[pos + 3] != ':') return std::nullopt;
    offsetSeconds = (oh * 3600 + om * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const time_t utc = timegm(&tm);
  return static_cast<double>(utc) - offsetSeconds + fraction;
}

std::string humanSince(std::string_view rfc3339, double now) {
  auto when = parseRfc3339(rfc3339);
  if (!when) return "";
  return humanDuration(now - *when) + " ago";
}

std::string ellipsis(std::string_view text, size_t maxChars) {
  if (displayWidth(text) <= maxChars) return std::string(text);
  if (maxChars == 0) return "";
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (chars == maxChars - 1) break;
      ++chars;
    }
    out += text[i];
  }
  return out + "…";
}

std::string goQuote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string shortId(std::string_view id) {
  constexpr std::string_view kPrefix = "sha256:";
  if (id.substr(0, kPrefix.size()) == kPrefix) id.remove_prefix(kPrefix.size());
  return std::string(id.substr(0, 12));
}

}  // namespace skiff::cli
