// Names become host paths (issue 7, point 2): netd writes configs to
// <data root>/configs/<stack>/<config> and volumes to
// <data root>/volumes/<stack>_<volume>/_data, as root. A deploy through the
// API whose names could leave those folders is refused with a 400 naming the
// value, and nothing is written outside the data root. The data root is
// nested three levels deep in a temp folder, so that even a traversal that
// got through would land in the test's own folder, where it is looked for.
//
// The fixture is the orchestrator's (fake launcher, fake netlink, real image
// and state stores in a temp folder, a real uv loop): no root, no kernel
// objects.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "orchestrator_fixture.h"
#include "skiff/netd/api.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/overlay/netlink.h"

namespace skiff::netd {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

class ApiNamesTest : public testing::OrchestratorFixture {
 protected:
  // Three levels deep: a traversal that got through lands in the test's
  // own folder, where strayFiles() looks for it.
  fs::path dataRootIn(const fs::path& dir) override { return dir / "a" / "b" / "data"; }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(OrchestratorFixture::SetUp());
    fs::create_directories(root_ / "configs");
    fs::create_directories(root_ / "volumes");
    ASSERT_FALSE(std::holds_alternative<ApiError>(orch_->swarmInit("")));
    api_ = std::make_unique<Api>(*orch_, *images_);
  }
  void TearDown() override {
    api_.reset();
    OrchestratorFixture::TearDown();
  }

  HttpResponse deploy(const std::string& stack, const json& spec) {
    HttpResponse r = api_->handle({"POST", "/v1/stacks/" + stack, {}, json{{"stack", spec}}.dump(), ""});
    for (int i = 0; i < 20; i++) uv_run(&loop_, UV_RUN_NOWAIT);
    return r;
  }

  // Files a traversal could have written: anything under the temp folder
  // except the build context, the image and container stores, the state
  // store, and configs/s/ where a good config goes; also any folder in
  // configs/ or volumes/ other than the ones good names make.
  std::vector<std::string> strayFiles() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const fs::path& p = it->path();
      if (p == dir_ / "ctx" || p == root_ / "images" || p == root_ / "containers") {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory()) {
        if ((p.parent_path() == root_ / "configs" && p.filename() != "s") || (p.parent_path() == root_ / "volumes"))
          out.push_back(p.string());
        continue;
      }
      bool stateStore = p.parent_path() == root_ && p.filename().string().starts_with("state.db");
      bool goodConfig = p.parent_path() == root_ / "configs" / "s";
      if (!stateStore && !goodConfig) out.push_back(p.string());
    }
    return out;
  }

  static json service(json extra) {
    json svc = {{"image", "app:1"}, {"deploy", {{"replicas", 1}}}};
    svc.update(extra);
    return svc;
  }

  std::unique_ptr<Api> api_;
};

const std::string kReason =
    ": a name must start with a letter or digit and contain only letters, digits, '_', '.' and '-'";

std::string messageOf(const HttpResponse& r) { return json::parse(r.body).value("message", ""); }

TEST_F(ApiNamesTest, AConfigNamedWithDotDotIsRefusedAndNothingIsWritten) {
  for (std::string name : {"../../x", "../../../x", "../../../../x", "../../../../../x"}) {
    json spec = {{"services", {{"web", service({{"configs", {{{"source", name}, {"target", "/c"}}}}})}}},
                 {"configs", {{name, {{"content", "* * * * * root pwned\n"}}}}}};
    // Services are read first: the reference is what the message names.
    HttpResponse r = deploy("s", spec);
    EXPECT_EQ(r.status, 400) << name << ": " << r.body;
    EXPECT_EQ(messageOf(r), "services.web.configs[0].source: invalid config name \"" + name + "\"" + kReason);
    // Declared and not used.
    spec["services"]["web"] = service(json::object());
    r = deploy("s", spec);
    EXPECT_EQ(r.status, 400) << name << ": " << r.body;
    EXPECT_EQ(messageOf(r), "configs: invalid config name \"" + name + "\"" + kReason);
  }
  EXPECT_TRUE(launcher_.launched.empty());
  EXPECT_EQ(strayFiles(), std::vector<std::string>{});
}

TEST_F(ApiNamesTest, AVolumeNamedWithDotDotIsRefusedAndNothingIsWritten) {
  // Referred to by a mount (declared or not) or only declared: each is a
  // name joined into a path.
  json referred = {
      {"services",
       {{"web", service({{"volumes", {{{"type", "volume"}, {"source", "../../../v"}, {"target", "/d"}}}}})}}}};
  HttpResponse r = deploy("s", referred);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(messageOf(r), "services.web.volumes[0].source: invalid volume name \"../../../v\"" + kReason);
  json declared = referred;
  declared["volumes"] = {{"../../../v", json::object()}};
  r = deploy("s", declared);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(messageOf(r), "services.web.volumes[0].source: invalid volume name \"../../../v\"" + kReason);
  declared["services"]["web"] = service(json::object());
  r = deploy("s", declared);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(messageOf(r), "volumes: invalid volume name \"../../../v\"" + kReason);
  EXPECT_TRUE(launcher_.launched.empty());
  EXPECT_EQ(strayFiles(), std::vector<std::string>{});
}

TEST_F(ApiNamesTest, BadServiceNetworkAndStackNamesAreRefused) {
  HttpResponse r = deploy("s", {{"services", {{"../web", service(json::object())}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(messageOf(r), "services: invalid service name \"../web\"" + kReason);
  r = deploy("s", {{"services", {{"web", service(json::object())}}}, {"networks", {{"a/b", json::object()}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(messageOf(r), "networks: invalid network name \"a/b\"" + kReason);
  r = deploy(std::string(64, 's'), {{"services", {{"web", service(json::object())}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(messageOf(r), "invalid stack name \"" + std::string(64, 's') + "\": a name must be 63 characters or fewer");
  r = deploy(".s", {{"services", {{"web", service(json::object())}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(messageOf(r), "invalid stack name \".s\"" + kReason);
  EXPECT_TRUE(launcher_.launched.empty());
}

TEST_F(ApiNamesTest, AGoodConfigIsWrittenInsideTheDataRoot) {
  json spec = {{"services", {{"web", service({{"configs", {{{"source", "app.conf"}, {"target", "/c"}}}}})}}},
               {"configs", {{"app.conf", {{"content", "ok\n"}}}}}};
  HttpResponse r = deploy("s", spec);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(launcher_.launched.size(), 1u);
  std::ifstream in(root_ / "configs" / "s" / "app.conf");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "ok\n");
  EXPECT_EQ(strayFiles(), std::vector<std::string>{});
}

// Defence in depth: a spec that did not come through the API's reader (the
// orchestrator called directly, as restore and the agent do with their own
// parsing) still never joins an unchecked name into a path: the replica is
// rejected with the reason and nothing is written.
TEST_F(ApiNamesTest, MountsRefuseAnUncheckedNameEvenPastTheReader) {
  runtime::StackSpec spec;
  runtime::ServiceSpec web;
  web.name = "web";
  web.image = "app:1";
  web.restartPolicy.condition = runtime::RestartCondition::kNone;
  web.configs.push_back({"../../../x", "/c", 0444});
  spec.services["web"] = web;
  spec.configs["../../../x"] = runtime::ConfigSpec{"../../../x", "", "pwned\n", false};
  auto result = orch_->deployStack("s", spec);
  for (int i = 0; i < 20; i++) uv_run(&loop_, UV_RUN_NOWAIT);
  ASSERT_TRUE(std::holds_alternative<json>(result));
  EXPECT_TRUE(launcher_.launched.empty());
  EXPECT_EQ(strayFiles(), std::vector<std::string>{});
  auto tasks = orch_->listTasks("", "s", "");
  ASSERT_TRUE(std::holds_alternative<json>(tasks));
  ASSERT_FALSE(std::get<json>(tasks).empty());
  // The node's agent cannot even read such a stack: its task is rejected,
  // saying why.
  EXPECT_EQ(std::get<json>(tasks)[0]["error"],
            "stack s: services.web.configs[0].source: invalid config name "
            "\"../../../x\"" +
                kReason);
}

}  // namespace
}  // namespace skiff::netd
