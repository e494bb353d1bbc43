// security_opt in a compose file: seccomp=FILE reads and checks the profile
// client-side (a bad one is refused with the file's name and line), seccomp=
// unconfined turns the filter off, and both travel in the StackSpec JSON.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {
namespace {

class ComposeSecurityOpt : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("skiff-compose-seccomp-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string yaml(const std::string& opts) {
    return "services:\n"            // 1
           "  web:\n"               // 2
           "    image: nginx\n"     // 3
           "    security_opt:\n" +  // 4
           opts;                    // 5...
  }
  ComposeResult parse(const std::string& text) {
    return parseComposeString(text, "docker-compose.yml", dir_.string(), {});
  }
  std::string errorOf(const std::string& text) {
    try {
      parse(text);
    } catch (const ComposeError& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir_;
};

const char* kProfile = R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
  {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]})";

TEST_F(ComposeSecurityOpt, AProfileFileIsReadNextToTheComposeFile) {
  write("profile.json", kProfile);
  auto r = parse(yaml("      - seccomp=./profile.json\n"));
  const ServiceSpec& web = r.stack.services.at("web");
  EXPECT_EQ(web.seccomp, (dir_ / "profile.json").string());
  EXPECT_EQ(web.seccompProfile, kProfile);
  EXPECT_TRUE(r.warnings.empty());
  // The CLI sends it to netd as JSON; netd reads the same back.
  EXPECT_EQ(stackFromJson(toJson(r.stack)), r.stack);
  EXPECT_EQ(toJson(r.stack)["services"]["web"]["security_opt"],
            nlohmann::json::array({"seccomp=" + (dir_ / "profile.json").string()}));
}

TEST_F(ComposeSecurityOpt, UnconfinedAndNoNewPrivileges) {
  auto r = parse(yaml("      - no-new-privileges:true\n      - seccomp:unconfined\n"));
  EXPECT_EQ(r.stack.services.at("web").seccomp, "unconfined");
  EXPECT_EQ(r.stack.services.at("web").seccompProfile, "");
  EXPECT_EQ(stackFromJson(toJson(r.stack)), r.stack);
}

TEST_F(ComposeSecurityOpt, WithoutItTheServiceGetsTheDefaultAndNoKeyInJson) {
  auto r = parse("services:\n  web:\n    image: nginx\n");
  EXPECT_EQ(r.stack.services.at("web").seccomp, "");
  EXPECT_FALSE(toJson(r.stack)["services"]["web"].contains("security_opt"));
}

TEST_F(ComposeSecurityOpt, ABadProfileIsRefusedWithTheFileAndWhatIsWrong) {
  write("bad.json", R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "DENY"}]})");
  EXPECT_EQ(errorOf(yaml("      - seccomp=bad.json\n")),
            "docker-compose.yml:5: services.web.security_opt: seccomp profile \"" + (dir_ / "bad.json").string() +
                "\": syscalls[0].action: unknown action \"DENY\"");
  write("notjson.json", "defaultAction: allow\n");
  EXPECT_EQ(errorOf(yaml("      - seccomp=notjson.json\n")),
            "docker-compose.yml:5: services.web.security_opt: seccomp profile \"" + (dir_ / "notjson.json").string() +
                "\": invalid JSON: parse error at line 1, column 1: syntax error while parsing "
                "value - invalid literal; last read: 'd'");
}

TEST_F(ComposeSecurityOpt, AMissingFileAndUnknownOptionsAreRefused) {
  EXPECT_EQ(
      errorOf(yaml("      - seccomp=missing.json\n")),
      "docker-compose.yml:5: services.web.security_opt: cannot read \"" + (dir_ / "missing.json").string() + "\"");
  EXPECT_EQ(errorOf(yaml("      - apparmor=unconfined\n")),
            "docker-compose.yml:5: services.web.security_opt: unsupported security option "
            "\"apparmor=unconfined\" (skiff knows seccomp=PROFILE.json, seccomp=unconfined, "
            "no-new-privileges)");
}

TEST_F(ComposeSecurityOpt, TheApiRefusesABadProfileSentAsJson) {
  auto r = parse(yaml("      - seccomp=unconfined\n"));
  auto j = toJson(r.stack);
  j["services"]["web"]["security_opt"] = {"seccomp=/x.json"};
  j["services"]["web"]["seccomp_profile"] = "{}";
  try {
    stackFromJson(j);
    FAIL() << "accepted a profile without defaultAction";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "services.web.seccomp_profile: seccomp profile /x.json: missing \"defaultAction\"");
  }
}

}  // namespace
}  // namespace skiff::runtime
