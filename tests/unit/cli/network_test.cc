// `skiff network create`'s flags -> POST /v1/networks/NAME body: read back by
// the reader netd uses (a stack's network JSON), each flag is the field it
// names; malformed -o / --label items and a gateway without a subnet are
// refused naming the flag.
#include "skiff/cli/network.h"

#include <gtest/gtest.h>

#include "skiff/runtime/compose.h"

namespace skiff::cli {
namespace {

runtime::NetworkSpec asNetd(const NetworkFlags& f) {
  auto body = networkCreateBody(f);
  EXPECT_TRUE(body.ok()) << (body.ok() ? "" : body.error().message);
  return runtime::stackFromJson(nlohmann::json{{"networks", {{"labnet", body.ok() ? *body : nlohmann::json()}}}})
      .networks.at("labnet");
}

TEST(NetworkCreateBody, EachFlagIsTheFieldNetdReads) {
  NetworkFlags f;
  f.attachable = true;
  f.subnet = "10.9.0.0/24";
  f.gateway = "10.9.0.1";
  f.opts = {"com.docker.network.driver.mtu=1400"};
  f.labels = {"lab=delay", "bare"};
  const runtime::NetworkSpec n = asNetd(f);
  EXPECT_EQ(n.driver, "overlay");
  EXPECT_TRUE(n.attachable);
  EXPECT_FALSE(n.internal);
  EXPECT_FALSE(n.external);
  EXPECT_EQ(n.subnet, "10.9.0.0/24");
  EXPECT_EQ(n.gateway, "10.9.0.1");
  EXPECT_EQ(n.driverOpts, (std::map<std::string, std::string>{{"com.docker.network.driver.mtu", "1400"}}));
  EXPECT_EQ(n.labels, (std::map<std::string, std::string>{{"bare", ""}, {"lab", "delay"}}));
}

TEST(NetworkCreateBody, DefaultsAreAnOverlayFromThePool) {
  const runtime::NetworkSpec n = asNetd(NetworkFlags{});
  EXPECT_EQ(n.driver, "overlay");
  EXPECT_FALSE(n.attachable);
  EXPECT_EQ(n.subnet, "");
}

TEST(NetworkCreateBody, BadItemsAreRefusedNamingTheFlag) {
  NetworkFlags f;
  f.opts = {"=1400"};
  auto b = networkCreateBody(f);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "invalid argument \"=1400\" for \"-o, --opt\" flag: a key is required");
  f = NetworkFlags{};
  f.gateway = "10.9.0.1";
  b = networkCreateBody(f);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "invalid argument \"10.9.0.1\" for \"--gateway\" flag: it needs --subnet");
}

}  // namespace
}  // namespace skiff::cli
