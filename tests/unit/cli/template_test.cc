#include "skiff/cli/template.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

const std::vector<Field> kFields = {{"ID", "ID"}, {"Name", "NAME"}, {"Replicas", "REPLICAS"}};
const std::vector<Row> kRows = {{{"ID", "abc"}, {"Name", "getstartedlab_web"}, {"Replicas", "5/5"}},
                                {{"ID", "def"}, {"Name", "db"}, {"Replicas", "1/1"}}};

std::string render(const std::string& format, const std::vector<Row>& rows = kRows) {
  auto tmpl = Template::parse(format, kFields);
  EXPECT_TRUE(tmpl.ok()) << (tmpl.ok() ? "" : tmpl.error().message);
  return tmpl.ok() ? tmpl->render(rows) : "";
}

TEST(Template, RendersFieldsAndLiteralsPerRow) {
  EXPECT_EQ(render("{{.Name}}"), "getstartedlab_web\ndb\n");
  EXPECT_EQ(render("{{.Name}}: {{.Replicas}}"), "getstartedlab_web: 5/5\ndb: 1/1\n");
  EXPECT_EQ(render("{{ .Name }}"), "getstartedlab_web\ndb\n");
}

TEST(Template, TabEscapeBecomesTabWithoutTablePrefix) {
  EXPECT_EQ(render("{{.ID}}\\t{{.Name}}"), "abc\tgetstartedlab_web\ndef\tdb\n");
}

TEST(Template, TablePrefixPrintsAlignedHeader) {
  EXPECT_EQ(render("table {{.Name}}\\t{{.Replicas}}"),
            "NAME                REPLICAS\n"
            "getstartedlab_web   5/5\n"
            "db                  1/1\n");
}

TEST(Template, TableHeaderPrintedEvenWithoutRows) {
  EXPECT_EQ(render("table {{.Name}}\\t{{.Replicas}}", {}), "NAME      REPLICAS\n");
}

TEST(Template, JsonOfRowAndOfField) {
  EXPECT_EQ(render("{{json .}}", {kRows[1]}), "{\"ID\":\"def\",\"Name\":\"db\",\"Replicas\":\"1/1\"}\n");
  EXPECT_EQ(render("{{json .Name}}", {kRows[1]}), "\"db\"\n");
  EXPECT_EQ(render("{{upper .Name}}", {kRows[1]}), "DB\n");
}

TEST(Template, UnknownFieldIsGoError) {
  auto tmpl = Template::parse("{{.Foo}}", kFields);
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.error().message, "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo");
}

TEST(Template, UnknownFieldPositionCountsFromAfterTablePrefix) {
  auto tmpl = Template::parse("table {{.Name}}\\t{{.Nope}}", kFields);
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.error().message, "template: :1:12: executing \"\" at <.Nope>: can't evaluate field Nope");
}

TEST(Template, SyntaxErrors) {
  auto unclosed = Template::parse("{{.Name", kFields);
  ASSERT_FALSE(unclosed.ok());
  EXPECT_EQ(unclosed.error().message, "template: :1: unclosed action");
  auto function = Template::parse("{{title .Name}}", kFields);
  ASSERT_FALSE(function.ok());
  EXPECT_EQ(function.error().message, "template: :1: function \"title\" not defined");
}

}  // namespace
}  // namespace skiff::cli

namespace skiff::cli {
namespace {

TEST(InspectFormat, FollowsNestedFieldsLikeDocker) {
  nlohmann::json c = {{"Id", "abc"},
                      {"State", {{"Pid", 1234}, {"Running", true}}},
                      {"NetworkSettings", {{"Networks", {{"web", {{"IPAddress", "10.0.1.2"}}}}}}}};
  EXPECT_EQ(*renderInspectFormat("{{.State.Pid}}", c), "1234");
  EXPECT_EQ(*renderInspectFormat("{{ .Id }} {{.State.Running}}", c), "abc true");
  EXPECT_EQ(*renderInspectFormat("ip={{.NetworkSettings.Networks.web.IPAddress}}", c), "ip=10.0.1.2");
  EXPECT_EQ(*renderInspectFormat("{{json .State}}", c), R"({"Pid":1234,"Running":true})");
  EXPECT_EQ(*renderInspectFormat("{{.State.Nope}}", c), "<no value>");
}

TEST(InspectFormat, BadTemplatesAreErrors) {
  nlohmann::json c = {{"Id", "abc"}};
  auto unclosed = renderInspectFormat("{{.Id", c);
  ASSERT_FALSE(unclosed.ok());
  EXPECT_EQ(unclosed.error().message, "template: :1: unclosed action");
  auto unknown = renderInspectFormat("{{index .Id}}", c);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "template: :1:3: function \"index\" not defined");
}

}  // namespace
}  // namespace skiff::cli
