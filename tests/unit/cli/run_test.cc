// `skiff run`'s flags -> POST /v1/containers body: what each flag becomes in
// the service spec, docker's defaults (restart "no", no network but its
// ports), no ${VAR} interpolation, and errors naming the flag and the value.
#include "skiff/cli/run.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {
using json = nlohmann::json;

json body(const RunFlags& f, const std::map<std::string, std::string>& env = {}) {
  auto b = runBody(f, "/work/here", env);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
  return b.ok() ? *b : json();
}
std::string error(const RunFlags& f) {
  auto b = runBody(f, "/work/here", {});
  return b.ok() ? "(accepted)" : b.error().message;
}

TEST(RunBody, EachFlagBecomesThePartOfTheServiceItNames) {
  RunFlags f;
  f.image = "friendlyhello";
  f.name = "hello";
  f.command = {"/hello", "8080"};
  f.publish = {"127.0.0.1:4000:80", "5353:53/udp"};
  f.env = {"NAME=skiff", "HOME_DIR", "UNSET"};
  f.volumes = {"./data:/data:ro", "cache:/cache"};
  f.cpus = "0.5";
  f.memory = "64m";
  f.restart = "on-failure:3";
  f.stopTimeout = "3";
  f.autoRemove = true;
  json b = body(f, {{"HOME_DIR", "/home/u"}});
  EXPECT_EQ(b["name"], "hello");
  EXPECT_EQ(b["autoRemove"], true);
  const json& s = b["service"];
  EXPECT_EQ(s["image"], "friendlyhello");
  EXPECT_EQ(s["command"], json({"/hello", "8080"}));
  EXPECT_EQ(s["environment"], json({{"HOME_DIR", "/home/u"}, {"NAME", "skiff"}})) << s["environment"].dump();
  ASSERT_EQ(s["ports"].size(), 2u);
  EXPECT_EQ(s["ports"][0]["published"], 4000);
  EXPECT_EQ(s["ports"][0]["target"], 80);
  EXPECT_EQ(s["ports"][0]["host_ip"], "127.0.0.1");
  EXPECT_EQ(s["ports"][1]["protocol"], "udp");
  ASSERT_EQ(s["volumes"].size(), 2u);
  EXPECT_EQ(s["volumes"][0]["source"], "/work/here/data") << "a relative bind source resolves against the cwd";
  EXPECT_EQ(s["volumes"][0]["read_only"], true);
  EXPECT_EQ(s["volumes"][1]["type"], "volume");
  EXPECT_EQ(s["deploy"]["resources"]["limits"]["cpus"], 0.5);
  EXPECT_EQ(s["deploy"]["resources"]["limits"]["memory"], 64 * 1024 * 1024);
  EXPECT_EQ(s["deploy"]["restart_policy"]["condition"], "on-failure");
  EXPECT_EQ(s["deploy"]["restart_policy"]["max_attempts"], 3);
  EXPECT_EQ(s["stop_grace_period"], 3);
  EXPECT_FALSE(s.contains("networks")) << "without --network: no network but ingress";
}

TEST(RunBody, DockersDefaultsAndNoInterpolation) {
  RunFlags f;
  f.image = "app";
  f.env = {"PRICE=$5 ${HOME}"};
  json b = body(f);
  EXPECT_EQ(b["service"]["deploy"]["restart_policy"]["condition"], "none") << "docker run's default is --restart no";
  EXPECT_EQ(b["service"]["environment"]["PRICE"], "$5 ${HOME}");
  EXPECT_EQ(b["autoRemove"], false);
  const std::string name = b["name"];
  EXPECT_NE(name.find('_'), std::string::npos) << "a made-up name is adjective_surname: " << name;
  f.restart = "always";
  EXPECT_EQ(body(f)["service"]["deploy"]["restart_policy"]["condition"], "any");
  f.restart = "unless-stopped";
  EXPECT_EQ(body(f)["service"]["deploy"]["restart_policy"]["condition"], "any");
}

TEST(RunBody, ErrorsNameTheFlagAndTheValue) {
  RunFlags f;
  f.image = "app";
  f.publish = {"4000:80", "4000:x"};
  EXPECT_EQ(error(f), "invalid argument for \"-p, --publish\" flag: invalid port \"4000:x\"");
  f.publish.clear();
  f.memory = "5Q";
  EXPECT_EQ(error(f), "invalid argument \"5Q\" for \"-m, --memory\" flag: invalid memory value \"5Q\"");
  f.memory.clear();
  f.cpus = "many";
  EXPECT_NE(error(f).find("for \"--cpus\" flag"), std::string::npos) << error(f);
  f.cpus.clear();
  f.restart = "sometimes";
  EXPECT_NE(error(f).find("invalid argument \"sometimes\" for \"--restart\" flag"), std::string::npos);
  f.restart = "on-failure:x";
  EXPECT_NE(error(f).find("for \"--restart\" flag: maximum retry count must be a number"), std::string::npos);
  f.restart = "no";
  f.name = "-bad";
  EXPECT_EQ(error(f), "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  f.name = "ok";
  f.stopTimeout = "soon";
  EXPECT_NE(error(f).find("for \"--stop-timeout\" flag"), std::string::npos);
  f.stopTimeout.clear();
  f.image.clear();
  EXPECT_EQ(error(f), "\"skiff run\" requires at least 1 argument.");
}

}  // namespace
}  // namespace skiff::cli
