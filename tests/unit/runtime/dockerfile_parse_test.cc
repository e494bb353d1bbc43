// Dockerfile subset: what the parser finds, and the errors a user reads.
#include <gtest/gtest.h>

#include "skiff/runtime/dockerfile.h"

namespace skiff::runtime::dockerfile {
namespace {

TEST(DockerfileParse, GetStartedLabDockerfile) {
  auto r = parseDockerfile(
      "# The seed's app\n"
      "FROM scratch\n"
      "COPY hello /hello\n"
      "EXPOSE 80\n"
      "ENV NAME=World\n"
      "CMD [\"/hello\", \"80\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].keyword, "FROM");
  EXPECT_EQ((*r)[0].line, 2);
  EXPECT_EQ((*r)[1].args, "hello /hello");
  EXPECT_EQ((*r)[4].keyword, "CMD");
  ASSERT_TRUE((*r)[4].json.has_value());
  EXPECT_EQ(*(*r)[4].json, (std::vector<std::string>{"/hello", "80"}));
}

TEST(DockerfileParse, ContinuationsCommentsAndCase) {
  auto r = parseDockerfile(
      "from scratch\n"
      "\n"
      "copy a \\\n"
      "  # a comment inside the continuation is dropped\n"
      "  b \\\n"
      "  /dst/\n"
      "Label k=v\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[1].keyword, "COPY");
  EXPECT_EQ((*r)[1].line, 3);
  auto words = lexWords((*r)[1].args, {});
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(*words, (std::vector<std::string>{"a", "b", "/dst/"}));
  EXPECT_EQ((*r)[2].keyword, "LABEL");
  EXPECT_EQ((*r)[2].line, 7);
}

TEST(DockerfileParse, FlagsOnCopy) {
  auto r = parseDockerfile("FROM scratch\nCOPY --chown=1000:1000 --chmod=755 app /app\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& c = (*r)[1];
  ASSERT_EQ(c.flags.size(), 2u);
  EXPECT_EQ(c.flags[0].first, "chown");
  EXPECT_EQ(c.flags[0].second, "1000:1000");
  EXPECT_EQ(c.flags[1].first, "chmod");
  EXPECT_EQ(c.args, "app /app");
}

TEST(DockerfileParse, ShellFormIsNotJson) {
  auto r = parseDockerfile("FROM scratch\nCMD [not json\nENTRYPOINT [\"a\", 1]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)[1].json.has_value());
  EXPECT_EQ((*r)[1].args, "[not json");
  EXPECT_FALSE((*r)[2].json.has_value());  // not all strings: shell form, as docker reads it
}

TEST(DockerfileParse, RunIsRejectedWithItsLine) {
  auto r = parseDockerfile("FROM scratch\n\n# build\nRUN make \\\n  all\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "line 4: RUN is not supported (skiff builds images without running containers)");
}

TEST(DockerfileParse, UnknownInstructionNamesLineAndWord) {
  auto r = parseDockerfile("FROM scratch\nCOPY a /a\nFETCH http://x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "line 3: unknown instruction: FETCH");
}

TEST(DockerfileParse, MissingArgumentsAndEmptyFile) {
  auto r = parseDockerfile("FROM scratch\nWORKDIR\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "line 2: WORKDIR requires at least one argument");
  auto empty = parseDockerfile("# only a comment\n\n");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "the Dockerfile has no instructions");
}

TEST(DockerfileParse, CrlfLineEndings) {
  auto r = parseDockerfile("FROM scratch\r\nUSER nobody\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[1].args, "nobody");
}

TEST(DockerfileParse, IgnoredInstructionsAreKnown) {
  auto r = parseDockerfile("FROM scratch\nVOLUME /data\nHEALTHCHECK NONE\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(isIgnoredInstruction("volume"));
  EXPECT_FALSE(isIgnoredInstruction("COPY"));
}

TEST(DockerfileLex, QuotesEscapesAndVariables) {
  Vars vars{{"NAME", "World"}, {"EMPTY", ""}};
  auto w = lexWords(R"(a "b c" 'd $NAME' $NAME ${NAME}x \$NAME "q\"uote")", vars);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(*w, (std::vector<std::string>{"a", "b c", "d $NAME", "World", "Worldx", "$NAME", "q\"uote"}));
  auto d = lexWord("${MISSING:-fallback} ${EMPTY:-e} ${NAME:+set} ${MISSING:+no}|", vars);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, "fallback e set |");
  auto nested = lexWord("${A:-${NAME}}", vars);
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(*nested, "World");
}

TEST(DockerfileLex, Errors) {
  EXPECT_FALSE(lexWords("\"open", {}).ok());
  EXPECT_FALSE(lexWords("'open", {}).ok());
  EXPECT_FALSE(lexWord("${NAME", {}).ok());
  EXPECT_FALSE(lexWord("${NAME?err}", {}).ok());
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "${A:-";
  deep += "x";
  for (int i = 0; i < 100; ++i) deep += "}";
  auto r = lexWord(deep, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "variable substitution nested too deeply");
}

}  // namespace
}  // namespace skiff::runtime::dockerfile
