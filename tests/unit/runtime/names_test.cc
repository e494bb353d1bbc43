// The one name rule (skiff/runtime/names.h): literal lists of names docker
// accepts and names that could leave a folder once joined into a host path.
#include "skiff/runtime/names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace skiff::runtime {
namespace {

TEST(Names, DockerStyleNamesAreAccepted) {
  const std::vector<std::string> names = {
      "getstartedlab", "web",  "webnet", "a",  "0",  "A.b-c_1", "my_config.v2",
      "data-1",        "a..b", "x.",     "x-", "x_", "1.2.3",   std::string(63, 'a')};
  for (const std::string& name : names) {
    EXPECT_TRUE(isValidName(name)) << name;
    EXPECT_TRUE(checkName(NameKind::kConfig, name).ok()) << name;
  }
}

TEST(Names, NamesThatCouldLeaveTheirFolderAreRefused) {
  const std::vector<std::string> names = {"",
                                          ".",
                                          "..",
                                          "../x",
                                          "../../../../etc/cron.d/x",
                                          "a/b",
                                          "/etc",
                                          "a/../b",
                                          ".hidden",
                                          "-x",
                                          "_x",
                                          "a b",
                                          "a\tb",
                                          "a\nb",
                                          "a\\b",
                                          "a:b",
                                          "a$b",
                                          "a*",
                                          "~root",
                                          "\xc3\xa9t\xc3\xa9" /* été */,
                                          "caf\xc3\xa9",
                                          "a\xe2\x80\x8b" /* zero-width space */,
                                          std::string("a\0b", 3),
                                          std::string(64, 'a'),
                                          std::string(300, 'a')};
  for (const std::string& name : names) {
    EXPECT_FALSE(isValidName(name)) << name;
    EXPECT_FALSE(checkName(NameKind::kVolume, name).ok()) << name;
  }
}

TEST(Names, TheErrorNamesTheKindAndTheValue) {
  auto st = checkName(NameKind::kConfig, "../../x");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "invalid config name \"../../x\": a name must start with a letter or digit and contain "
            "only letters, digits, '_', '.' and '-'");
  EXPECT_EQ(checkName(NameKind::kStack, "").error().message,
            "invalid stack name \"\": a name must start with a letter or digit and contain only "
            "letters, digits, '_', '.' and '-'");
}

TEST(Names, ALongNameIsRefusedByItsLengthAndShownCut) {
  auto st = checkName(NameKind::kService, std::string(300, 'a'));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "invalid service name \"" + std::string(80, 'a') +
                                    "...\" (300 characters): a name must be 63 characters or fewer");
}

TEST(Names, EveryKindHasItsWord) {
  EXPECT_EQ(nameKindText(NameKind::kStack), "stack");
  EXPECT_EQ(nameKindText(NameKind::kService), "service");
  EXPECT_EQ(nameKindText(NameKind::kNetwork), "network");
  EXPECT_EQ(nameKindText(NameKind::kVolume), "volume");
  EXPECT_EQ(nameKindText(NameKind::kConfig), "config");
  EXPECT_EQ(nameKindText(NameKind::kSecret), "secret");
}

TEST(Names, AHostnameIsWhatTheKernelAndEtcHostsTake) {
  EXPECT_TRUE(checkHostname("web-1.example").ok());
  EXPECT_TRUE(checkHostname("my host").ok()) << "the kernel and docker take a space";
  EXPECT_TRUE(checkHostname(std::string(64, 'h')).ok());
  EXPECT_TRUE(checkHostname("").ok()) << "empty: the container id's first 12 characters";
  EXPECT_EQ(checkHostname(std::string(65, 'h')).error().message,
            "invalid hostname \"" + std::string(65, 'h') + "\": a hostname must be 64 bytes or fewer");
  EXPECT_TRUE(checkHostname(std::string(65, 'h') + "{{.Task.Slot}}", true).ok()) << "length checked once expanded";
  for (const std::string& bad : std::vector<std::string>{"a\tb", "a\nb", std::string("a\0b", 3), "a\x7f", "a\rb"}) {
    for (bool templated : {false, true}) {
      auto st = checkHostname(bad, templated);
      ASSERT_FALSE(st.ok()) << bad;
      EXPECT_EQ(st.error().message.substr(0, 17), "invalid hostname ") << bad;
      EXPECT_NE(st.error().message.find("a hostname must not contain control characters"), std::string::npos) << bad;
    }
  }
}

}  // namespace
}  // namespace skiff::runtime
