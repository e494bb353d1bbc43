#include "skiff/cli/format.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

TEST(RenderTable, PadsColumnsLikeDockerAndLeavesLastColumnUnpadded) {
  const std::string out = renderTable({{"NAME", "SERVICES"}, {"getstartedlab", "1"}});
  // "getstartedlab" (13) + 3 of padding = 16 columns; header padded to the same width.
  EXPECT_EQ(out,
            "NAME            SERVICES\n"
            "getstartedlab   1\n");
}

TEST(RenderTable, ShortColumnsAreAtLeastTenWide) {
  EXPECT_EQ(renderTable({{"ID", "NAME"}, {"ab", "x"}}), "ID        NAME\nab        x\n");
}

TEST(RenderTable, CountsEllipsisAsOneColumn) {
  const std::string out = renderTable({{"ERROR", "PORTS"}, {"\"abcdefgh…\"", ""}});
  // 11 code points + 3 padding = 14 columns: the header gets 9 spaces.
  EXPECT_EQ(out, "ERROR         PORTS\n\"abcdefgh…\"   \n");
}

TEST(AlignTabs, SplitsCellsOnTabs) {
  EXPECT_EQ(alignTabs({"A\tB\tC", "long-value-here\tb\tc"}),
            "A                 B         C\n"
            "long-value-here   b         c\n");
}

TEST(HumanDuration, MatchesGoUnits) {
  EXPECT_EQ(humanDuration(0.4), "Less than a second");
  EXPECT_EQ(humanDuration(1), "1 second");
  EXPECT_EQ(humanDuration(5.9), "5 seconds");
  EXPECT_EQ(humanDuration(59), "59 seconds");
  EXPECT_EQ(humanDuration(60), "About a minute");
  EXPECT_EQ(humanDuration(119), "About a minute");
  EXPECT_EQ(humanDuration(120), "2 minutes");
  EXPECT_EQ(humanDuration(3599), "59 minutes");
  EXPECT_EQ(humanDuration(3600), "About an hour");
  EXPECT_EQ(humanDuration(2 * 3600), "2 hours");
  EXPECT_EQ(humanDuration(47 * 3600), "47 hours");
  EXPECT_EQ(humanDuration(3 * 86400), "3 days");
  EXPECT_EQ(humanDuration(21 * 86400), "3 weeks");
  EXPECT_EQ(humanDuration(90 * 86400), "3 months");
  EXPECT_EQ(humanDuration(3 * 365 * 86400), "3 years");
}

TEST(HumanSize, MatchesDockerImageLs) {
  EXPECT_EQ(humanSize(0), "0B");
  EXPECT_EQ(humanSize(999), "999B");
  EXPECT_EQ(humanSize(1200000), "1.2MB");
  EXPECT_EQ(humanSize(532000), "532kB");
  EXPECT_EQ(humanSize(1234567), "1.23MB");
  EXPECT_EQ(humanSize(52428800), "52.4MB");
  EXPECT_EQ(humanSize(2e9), "2GB");
}

TEST(ParseRfc3339, ReadsUtcFractionsAndOffsets) {
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:10Z"), 10.0);
  EXPECT_EQ(parseRfc3339("2024-05-01T12:00:00Z"), 1714564800.0);
  EXPECT_EQ(parseRfc3339("2024-05-01T14:00:00+02:00"), 1714564800.0);
  EXPECT_EQ(parseRfc3339("2024-05-01T12:00:00.5Z"), 1714564800.5);
  EXPECT_FALSE(parseRfc3339("2024-05-01 garbage").has_value());
  EXPECT_FALSE(parseRfc3339("").has_value());
  EXPECT_FALSE(parseRfc3339("2024-05-01T12:00:00").has_value());  // no zone
}

TEST(HumanSince, SaysAgoOrNothing) {
  EXPECT_EQ(humanSince("2024-05-01T12:00:00Z", 1714564805.0), "5 seconds ago");
  EXPECT_EQ(humanSince("2024-05-01T12:00:00Z", 1714564800.0 + 90), "About a minute ago");
  EXPECT_EQ(humanSince("", 1714564805.0), "");
}

TEST(Ellipsis, CutsToWidthWithEllipsis) {
  EXPECT_EQ(ellipsis("short", 30), "short");
  EXPECT_EQ(ellipsis("abcdef", 4), "abc…");
  EXPECT_EQ(displayWidth(ellipsis("exec: \"nosuch\": executable file not found in $PATH", 30)), 30u);
}

TEST(GoQuote, EscapesLikePercentQ) {
  EXPECT_EQ(goQuote("exec: \"nosuch\": executable…"), "\"exec: \\\"nosuch\\\": executable…\"");
  EXPECT_EQ(goQuote("a\\b\nc"), "\"a\\\\b\\nc\"");
}

TEST(ShortId, DropsDigestPrefixAndTruncates) {
  EXPECT_EQ(shortId("sha256:0123456789abcdef0123"), "0123456789ab");
  EXPECT_EQ(shortId("abc"), "abc");
}

}  // namespace
}  // namespace skiff::cli
