// Unit conversions and the small grammars (ports, shell words) on their own.

#include <gtest/gtest.h>

#include "skiff/runtime/compose.h"
#include "units.h"

namespace skiff::runtime {
namespace {

TEST(ComposeUnits, MemoryBinaryUnits) {
  EXPECT_EQ(parseMemoryBytes("50M"), 52428800);
  EXPECT_EQ(parseMemoryBytes("1.5G"), 1610612736);
  EXPECT_EQ(parseMemoryBytes("512m"), 536870912);
  EXPECT_EQ(parseMemoryBytes("1024"), 1024);
  EXPECT_EQ(parseMemoryBytes("100k"), 102400);
  EXPECT_EQ(parseMemoryBytes("1kb"), 1024);
  EXPECT_EQ(parseMemoryBytes("2MiB"), 2097152);
  EXPECT_EQ(parseMemoryBytes("1t"), 1099511627776);
  EXPECT_EQ(parseMemoryBytes("10b"), 10);
  for (const char* bad : {"50Q", "", "M", "-1M", "1.5.5G", "5 MBx", "0x10"}) {
    EXPECT_THROW(parseMemoryBytes(bad), std::invalid_argument) << bad;
  }
  try {
    parseMemoryBytes("50Q");
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "invalid memory value \"50Q\"");
  }
}

TEST(ComposeUnits, Durations) {
  EXPECT_DOUBLE_EQ(parseDurationSeconds("1m30s"), 90);
  EXPECT_DOUBLE_EQ(parseDurationSeconds("10s"), 10);
  EXPECT_DOUBLE_EQ(parseDurationSeconds("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(parseDurationSeconds("1h"), 3600);
  EXPECT_DOUBLE_EQ(parseDurationSeconds("2.5s"), 2.5);
  EXPECT_DOUBLE_EQ(parseDurationSeconds("0"), 0);
  EXPECT_DOUBLE_EQ(parseDurationSeconds("1h2m3s4ms"), 3723.004);
  for (const char* bad : {"", "10", "s", "1d", "1.s.", "-5s", "10 s"}) {
    EXPECT_THROW(parseDurationSeconds(bad), std::invalid_argument) << bad;
  }
}

TEST(ComposeUnits, ShellWords) {
  using units::splitShellWords;
  using V = std::vector<std::string>;
  EXPECT_EQ(splitShellWords("python app.py"), (V{"python", "app.py"}));
  EXPECT_EQ(splitShellWords("  sh  -c 'echo $HOME; ls'  "), (V{"sh", "-c", "echo $HOME; ls"}));
  EXPECT_EQ(splitShellWords(R"(echo "a \"b\" c" d\ e '')"), (V{"echo", "a \"b\" c", "d e", ""}));
  EXPECT_EQ(splitShellWords(""), V{});
  EXPECT_THROW(splitShellWords("echo \"x"), std::invalid_argument);
}

TEST(ComposeUnits, PortShortSyntax) {
  using units::parsePortShort;
  using V = std::vector<PortSpec>;
  EXPECT_EQ(parsePortShort("4000:80"), (V{{80, 4000, Protocol::kTcp, PortMode::kIngress, ""}}));
  EXPECT_EQ(parsePortShort("80"), (V{{80, 0, Protocol::kTcp, PortMode::kIngress, ""}}));
  EXPECT_EQ(parsePortShort("127.0.0.1:4000:80"), (V{{80, 4000, Protocol::kTcp, PortMode::kIngress, "127.0.0.1"}}));
  EXPECT_EQ(parsePortShort("4000:80/udp"), (V{{80, 4000, Protocol::kUdp, PortMode::kIngress, ""}}));
  EXPECT_EQ(parsePortShort("[::1]:4000:80"), (V{{80, 4000, Protocol::kTcp, PortMode::kIngress, "::1"}}));
  EXPECT_EQ(parsePortShort("9000-9002:8000-8002"), (V{{8000, 9000, Protocol::kTcp, PortMode::kIngress, ""},
                                                      {8001, 9001, Protocol::kTcp, PortMode::kIngress, ""},
                                                      {8002, 9002, Protocol::kTcp, PortMode::kIngress, ""}}));
  EXPECT_EQ(parsePortShort("3000-3001"),
            (V{{3000, 0, Protocol::kTcp, PortMode::kIngress, ""}, {3001, 0, Protocol::kTcp, PortMode::kIngress, ""}}));
  for (const char* bad :
       {"8080-8081:80", "9000-9002:8000-8001", "0", "65536", "4000:80/sctp", "a:b", "1:2:3:4", "80-70", "", ":80"}) {
    EXPECT_THROW(parsePortShort(bad), std::invalid_argument) << bad;
  }
}

TEST(ComposeUnits, InterpolationRules) {
  std::map<std::string, std::string> env{{"A", "x"}, {"E", ""}};
  std::vector<std::string> unset;
  auto run = [&](const char* s) {
    return units::interpolate(
        s,
        [&](const std::string& n) -> std::optional<std::string> {
          auto it = env.find(n);
          return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
        },
        [&](const std::string& n) { unset.push_back(n); });
  };
  EXPECT_EQ(run("$A ${A} $$A {{.Node.ID}}"), "x x $A {{.Node.ID}}");
  EXPECT_EQ(run("${E:-d}|${E-d}|${U:-d}|${U-d}|${E:+p}|${A:+p}|${U+p}"), "d||d|d||p|");
  EXPECT_EQ(run("${A?m}${E?m}"), "x");
  EXPECT_THROW(run("${E:?empty}"), std::invalid_argument);
  EXPECT_THROW(run("${U?m}"), std::invalid_argument);
  EXPECT_THROW(run("${}"), std::invalid_argument);
  EXPECT_THROW(run("${A"), std::invalid_argument);
  EXPECT_THROW(run("$-"), std::invalid_argument);
  EXPECT_TRUE(unset.empty());
  EXPECT_EQ(run("[$U_1]"), "[]");
  EXPECT_EQ(unset, std::vector<std::string>{"U_1"});
}

// ${a:-${a:-...}} nested: 64 levels are read, one more is refused, and
// 50k levels (which overflowed the CLI's stack) are refused without a crash.
TEST(ComposeUnits, InterpolationDepthIsBoundedAt64) {
  auto nested = [](int levels, const std::string& core) {
    std::string s;
    for (int i = 0; i < levels; i++) s += "${a:-";
    s += core;
    s += std::string(static_cast<size_t>(levels), '}');
    return s;
  };
  auto run = [](const std::string& s) {
    return units::interpolate(
        s, [](const std::string&) { return std::optional<std::string>(); }, [](const std::string&) {});
  };
  EXPECT_EQ(units::kMaxInterpolationDepth, 64);
  EXPECT_EQ(run(nested(64, "deep")), "deep");
  try {
    run(nested(65, "deep"));
    ADD_FAILURE() << "65 levels were accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "interpolation nested deeper than 64 levels");
  }
  EXPECT_THROW(run(nested(50000, "x")), std::invalid_argument);
  // A set variable never reads its default, however deep.
  EXPECT_EQ(units::interpolate(
                nested(50000, "x"), [](const std::string&) { return std::optional<std::string>("v"); },
                [](const std::string&) {}),
            "v");
}

}  // namespace
}  // namespace skiff::runtime
