#pragma once
// Output formatting for the skiff CLI, written to look like docker's: tables
// laid out as Go's text/tabwriter does with docker's settings (minimum cell
// width 10, padding 3, the last column unpadded), durations and sizes as
// go-units prints them ("5 seconds ago", "About a minute", "1.2MB"), error
// strings quoted as Go's %q. Everything here is pure (the clock is a
// parameter), so the tests pin exact bytes. Single-threaded use.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/duration.h"

namespace skiff::cli {

// Aligns rows of cells like tabwriter.NewWriter(out, 10, 1, 3, ' ', 0):
// each column but the last is as wide as its widest cell plus 3, at least 10;
// widths count UTF-8 code points, so "…" is one column.
std::string renderTable(const std::vector<std::vector<std::string>>& rows);

// The same, on lines whose cells are separated by '\t' (what a `table`
// template renders to).
std::string alignTabs(const std::vector<std::string>& lines);

// go-units HumanDuration (common/duration.h), for the CLI's columns.
using skiff::humanDuration;

// go-units HumanSizeWithPrecision(size, 3), decimal units: "1.2MB", "532kB", "0B".
std::string humanSize(double bytes);

// go-units BytesSize (binary units, 4 digits), as `service inspect --pretty`
// prints memory limits: "50MiB", "1.5GiB".
std::string binarySize(double bytes);

// Seconds since the epoch of an RFC 3339 time ("2024-05-01T12:00:00.5Z",
// "...+02:00"); nullopt when the text is not one.
std::optional<double> parseRfc3339(std::string_view text);

// "5 seconds ago" for an RFC 3339 time seen at `now` (epoch seconds); "" when
// the time is missing or unreadable (docker leaves the cell empty then).
std::string humanSince(std::string_view rfc3339, double now);

// Cuts to at most maxChars code points, the last being "…" (docker's Ellipsis).
std::string ellipsis(std::string_view text, size_t maxChars);

// Go's %q for printable text: quotes, with \" \\ \n \t and control bytes escaped.
std::string goQuote(std::string_view text);

// The first 12 characters of an ID, after dropping a "sha256:" prefix.
std::string shortId(std::string_view id);

// Number of UTF-8 code points (continuation bytes are not counted).
size_t displayWidth(std::string_view text);

}  // namespace skiff::cli
