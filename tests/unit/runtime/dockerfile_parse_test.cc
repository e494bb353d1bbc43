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
  auto r = parseDockerfile("FROM scratch\nVOLUME /data\nSTOPSIGNAL SIGINT\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(isIgnoredInstruction("volume"));
  EXPECT_FALSE(isIgnoredInstruction("COPY"));
  EXPECT_FALSE(isIgnoredInstruction("HEALTHCHECK"));  // applied now
}

// The one HEALTHCHECK of a Dockerfile, parsed and interpreted.
Result<Healthcheck> healthcheckOf(const std::string& line) {
  auto r = parseDockerfile("FROM scratch\n" + line + "\n");
  if (!r.ok()) return r.error();
  return parseHealthcheck(r->back());
}

TEST(DockerfileHealthcheck, ShellFormWithEveryFlag) {
  auto hc = healthcheckOf(
      "HEALTHCHECK --interval=5s --timeout=2s --start-period=1m30s --retries=5 \\\n"
      "  CMD curl -f http://localhost/ || exit 1");
  ASSERT_TRUE(hc.ok()) << hc.error().message;
  EXPECT_EQ(hc->test, (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}));
  EXPECT_EQ(hc->intervalSeconds, 5);
  EXPECT_EQ(hc->timeoutSeconds, 2);
  EXPECT_EQ(hc->startPeriodSeconds, 90);
  EXPECT_EQ(hc->retries, 5u);
  EXPECT_FALSE(hc->disable);
}

TEST(DockerfileHealthcheck, ExecFormAndDockersDefaults) {
  auto hc = healthcheckOf("healthcheck cmd [\"/hello\", \"--check\", \"$NOT_SUBSTITUTED\"]");
  ASSERT_TRUE(hc.ok()) << hc.error().message;
  EXPECT_EQ(hc->test, (std::vector<std::string>{"CMD", "/hello", "--check", "$NOT_SUBSTITUTED"}));
  EXPECT_EQ(hc->intervalSeconds, 30);
  EXPECT_EQ(hc->timeoutSeconds, 30);
  EXPECT_EQ(hc->startPeriodSeconds, 0);
  EXPECT_EQ(hc->retries, 3u);
  // 0 means "the default", as docker reads it; not valid JSON is shell form.
  hc = healthcheckOf("HEALTHCHECK --interval=0s --retries=0 CMD [not json");
  ASSERT_TRUE(hc.ok()) << hc.error().message;
  EXPECT_EQ(hc->intervalSeconds, 30);
  EXPECT_EQ(hc->retries, 3u);
  EXPECT_EQ(hc->test, (std::vector<std::string>{"CMD-SHELL", "[not json"}));
  // Checked but not kept.
  EXPECT_TRUE(healthcheckOf("HEALTHCHECK --start-interval=2s CMD true").ok());
}

TEST(DockerfileHealthcheck, NoneDisablesTheImagesCheck) {
  auto hc = healthcheckOf("HEALTHCHECK NONE");
  ASSERT_TRUE(hc.ok()) << hc.error().message;
  EXPECT_EQ(hc->test, (std::vector<std::string>{"NONE"}));
  EXPECT_TRUE(hc->disable);
}

TEST(DockerfileHealthcheck, ErrorsNameTheLineAndTheFlag) {
  auto error = [](const std::string& line) {
    auto hc = healthcheckOf(line);
    return hc.ok() ? std::string("<ok>") : hc.error().message;
  };
  EXPECT_EQ(error("HEALTHCHECK --interval=5x CMD true"),
            "line 2: HEALTHCHECK --interval=5x: unknown unit \"x\" in duration \"5x\"");
  EXPECT_EQ(error("HEALTHCHECK --timeout=soon CMD true"),
            "line 2: HEALTHCHECK --timeout=soon: invalid duration \"soon\"");
  EXPECT_EQ(error("HEALTHCHECK --start-period=10us CMD true"),
            "line 2: HEALTHCHECK --start-period=10us: cannot be less than 1ms");
  EXPECT_EQ(error("HEALTHCHECK --retries=-1 CMD true"), "line 2: HEALTHCHECK: --retries cannot be negative (-1)");
  EXPECT_EQ(error("HEALTHCHECK --retries=three CMD true"), "line 2: HEALTHCHECK --retries=three: not a number");
  EXPECT_EQ(error("HEALTHCHECK --interval CMD true"), "line 2: HEALTHCHECK: missing a value on flag: --interval");
  EXPECT_EQ(error("HEALTHCHECK --every=5s CMD true"), "line 2: HEALTHCHECK: unknown flag: --every");
  EXPECT_EQ(error("HEALTHCHECK --retries=1 --retries=2 CMD true"),
            "line 2: HEALTHCHECK: duplicate flag specified: --retries");
  EXPECT_EQ(error("HEALTHCHECK NONE please"), "line 2: HEALTHCHECK NONE takes no arguments");
  EXPECT_EQ(error("HEALTHCHECK RUN true"), "line 2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
  EXPECT_EQ(error("HEALTHCHECK CMD"), "line 2: Missing command after HEALTHCHECK CMD");
  EXPECT_EQ(error("HEALTHCHECK CMD []"), "line 2: Missing command after HEALTHCHECK CMD");
  EXPECT_EQ(error("HEALTHCHECK"), "line 2: HEALTHCHECK requires at least one argument");
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
