#include "skiff/cli/args.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

TEST(ParseScaleArgs, ReadsSeveralPairs) {
  auto parsed = parseScaleArgs({"getstartedlab_web=3", "db=0"});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].service, "getstartedlab_web");
  EXPECT_EQ((*parsed)[0].replicas, 3u);
  EXPECT_EQ((*parsed)[1].service, "db");
  EXPECT_EQ((*parsed)[1].replicas, 0u);
}

TEST(ParseScaleArgs, MissingEqualsIsDockersSpecifierError) {
  for (const std::string bad : {"web", "=3", "web="}) {
    auto parsed = parseScaleArgs({bad});
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().message, "Invalid scale specifier '" + bad + "'.");
  }
}

TEST(ParseScaleArgs, NonNumberNamesServiceAndValue) {
  auto parsed = parseScaleArgs({"web=3", "db=-1"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "db: invalid replicas value -1: must be a non-negative integer");
  EXPECT_FALSE(parseScaleArgs({"web=99999999999999999999999"}).ok());
  EXPECT_FALSE(parseScaleArgs({}).ok());
}

TEST(NormalizeImageTag, AddsLatestAndKeepsRegistryPort) {
  EXPECT_EQ(normalizeImageTag("s3ich4n/get-started:pt02").value(), "s3ich4n/get-started:pt02");
  EXPECT_EQ(normalizeImageTag("hello").value(), "hello:latest");
  EXPECT_EQ(normalizeImageTag("localhost:5000/hello").value(), "localhost:5000/hello:latest");
  EXPECT_FALSE(normalizeImageTag("Hello").ok());
  EXPECT_FALSE(normalizeImageTag("hello:").ok());
  EXPECT_FALSE(normalizeImageTag("").ok());
}

TEST(ValidateStackName, DockersRule) {
  EXPECT_TRUE(validateStackName("getstartedlab").ok());
  EXPECT_TRUE(validateStackName("a.b-c_1").ok());
  EXPECT_FALSE(validateStackName("").ok());
  EXPECT_FALSE(validateStackName("-x").ok());
  EXPECT_FALSE(validateStackName("a/b").ok());
}

}  // namespace
}  // namespace skiff::cli
