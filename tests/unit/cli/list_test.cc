#include "skiff/cli/list.h"

#include <gtest/gtest.h>

#include "skiff/cli/format.h"

namespace skiff::cli {
namespace {

using nlohmann::json;

TEST(ListTemplate, QuietWinsOverFormatAndNoFormatIsTheTable) {
  ListFlags flags;
  EXPECT_EQ(listFormatText(imageView(), flags), imageView().defaultFormat);
  flags.format = "{{.Repository}}";
  EXPECT_EQ(listFormatText(imageView(), flags), "{{.Repository}}");
  flags.quiet = true;
  EXPECT_EQ(listFormatText(imageView(), flags), imageView().quietFormat);
}

TEST(ListTemplate, RendersRowsAndRejectsUnknownFieldBeforeAnyCall) {
  ListFlags flags;
  flags.format = "{{.Name}}={{.Services}}";
  auto tmpl = listTemplate(stackView(), flags);
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message;
  EXPECT_EQ(tmpl->render(stackRows(json::parse(R"([{"name":"web","services":2}])"))), "web=2\n");
  flags.format = "{{.Nope}}";
  auto bad = listTemplate(stackView(), flags);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("Nope"), std::string::npos) << bad.error().message;
}

TEST(QueryParam, KeepsUnreservedAndPercentEncodesTheRest) {
  EXPECT_EQ(queryParam("stack", "get-started_lab.1~"), "stack=get-started_lab.1~");
  EXPECT_EQ(queryParam("service", "a b&c=d/é"), "service=a%20b%26c%3Dd%2F%C3%A9");
}

TEST(NodeList, QuietAndCustomFormatsPrintBareIds) {
  const auto rows = nodeRows(json::parse(R"([{"id":"n1","hostname":"a","self":true},{"id":"n2","hostname":"b"}])"));
  ListFlags flags;
  flags.quiet = true;
  auto quiet = listTemplate(nodeView(), flags);
  ASSERT_TRUE(quiet.ok()) << quiet.error().message;
  EXPECT_EQ(quiet->render(rows), "n1\nn2\n");
  flags = ListFlags{};
  flags.format = "{{.ID}}:{{.Self}}";
  auto custom = listTemplate(nodeView(), flags);
  ASSERT_TRUE(custom.ok()) << custom.error().message;
  EXPECT_EQ(custom->render(rows), "n1:true\nn2:false\n");
}

TEST(BinarySize, DockersBytesSizeForMemoryLimits) {
  EXPECT_EQ(binarySize(0), "0B");
  EXPECT_EQ(binarySize(1023), "1023B");
  EXPECT_EQ(binarySize(50.0 * 1024 * 1024), "50MiB");
  EXPECT_EQ(binarySize(1.5 * 1024 * 1024 * 1024), "1.5GiB");
  EXPECT_EQ(binarySize(3.0 * 1024 * 1024 * 1024 * 1024 * 1024), "3072TiB");
}

}  // namespace
}  // namespace skiff::cli
