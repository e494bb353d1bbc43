#pragma once
// The orchestrator against fakes, shared by netd's orchestrator tests:
// FakeContainerLauncher (pidfds are eventfds, exits are simulated),
// FakeNetlink (every request ACKed), a real image store and state store in a
// temp folder, a real uv loop, and the real proxy or a fake mesh. No root, no
// kernel objects.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "fake_link_netlink.h"
#include "skiff/netd/cluster_client.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/overlay/netlink.h"
#include "skiff/runtime/compose.h"

namespace skiff::netd::testing {
namespace fs = std::filesystem;
using json = nlohmann::json;

class OrchestratorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skiff-orch-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    root_ = dataRootIn(dir_);
    fs::create_directories(root_);
    fs::create_directories(dir_ / "ctx");
    std::ofstream(dir_ / "ctx" / "hello") << "binary";
    std::ofstream(dir_ / "ctx" / "Dockerfile")
        << "FROM scratch\nCOPY hello /hello\nENV NAME=World\nCMD [\"/hello\", \"80\"]\n";
    uv_loop_init(&loop_);
    auto st = Store::open((root_ / "state.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    store_ = std::move(*st);
    images_ = std::make_unique<runtime::ImageStore>(root_.string());
    std::vector<std::string> log;
    auto built = images_->build((dir_ / "ctx").string(), "app:1", &log);
    ASSERT_TRUE(built.ok()) << built.error().message;
    imageId_ = built->id;
    overlay_ =
        std::make_unique<overlay::Overlay>(netlink_, [](int) -> Result<std::unique_ptr<overlay::NetlinkTransport>> {
          auto inside = std::make_unique<FakeLinkNetlink>();
          inside->everyLinkExists = true;
          return std::unique_ptr<overlay::NetlinkTransport>(std::move(inside));
        });
    if (mesh() == nullptr) {
      proxy::Options popts;
      popts.threads = 1;
      auto p = proxy::Proxy::start(popts);
      ASSERT_TRUE(p.ok());
      proxy_ = std::move(*p);
    }
    orch_ = std::make_unique<Orchestrator>(deps());
  }

  // A fixture that drives a fake mesh returns it; otherwise the real proxy
  // (one thread, no listeners unless a test publishes a port) serves.
  virtual Mesh* mesh() { return nullptr; }
  // The data root under the test's temp folder (the folder itself unless a
  // test wants it deeper), and the way to a manager (none unless set).
  virtual fs::path dataRootIn(const fs::path& dir) { return dir; }
  virtual ClusterClient* cluster() { return nullptr; }

  OrchestratorDeps deps() {
    OrchestratorDeps d;
    d.loop = &loop_;
    d.store = store_.get();
    d.images = images_.get();
    d.launcher = &launcher_;
    d.overlay = overlay_.get();
    d.proxy = proxy_.get();
    d.mesh = mesh();
    d.cluster = cluster();
    d.dataRoot = root_.string();
    d.hostname = "node1";
    // Any fd stands for the container's netns: the netns-side netlink is fake.
    d.openNetns = [](pid_t) -> Result<UniqueFd> { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); };
    // Fake replicas listen nowhere: a port accepts as soon as the test says.
    d.probeTcp = [this](const std::string& host, uint16_t port, std::function<void(bool)> done) {
      probes_.push_back(host + ":" + std::to_string(port));
      done(portsAccept_);
    };
    return d;
  }

  void TearDown() override {
    if (orch_) {
      bool done = false;
      orch_->shutdown([&] { done = true; });
      for (pid_t pid : std::vector<pid_t>(launcher_.running)) launcher_.exit(pid, 0);
      // Bounded by time, not turns (a loaded machine needs more of them); a
      // shutdown that never ends fails here instead of hanging below.
      for (int i = 0; i < 20000 && !done; i++) {
        uv_run(&loop_, UV_RUN_NOWAIT);
        if (!done) ::usleep(1000);
      }
      EXPECT_TRUE(done) << "shutdown did not finish";
      orch_.reset();
    }
    for (int i = 0; i < 5000 && uv_loop_alive(&loop_); i++) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open on the loop";
    proxy_.reset();
    fs::remove_all(dir_);
  }

  runtime::StackSpec stack(const std::string& yaml) {
    return runtime::parseComposeString(yaml, "docker-compose.yml", dir_.string(), {}).stack;
  }

  json ok(const ApiResult<json>& r) {
    if (const auto* e = std::get_if<ApiError>(&r)) {
      ADD_FAILURE() << httpStatus(e->kind) << " " << e->message;
      return json();
    }
    return std::get<json>(r);
  }

  // Lets pending pidfd events and zero-delay timers run.
  void settle() {
    for (int i = 0; i < 20; i++) uv_run(&loop_, UV_RUN_NOWAIT);
  }

  // Runs the loop one turn at a time until done() (at most 200 turns): the
  // state at the first moment something happened, e.g. the first signal of
  // a rolling update before its next step.
  bool settleUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 200; i++) {
      if (done()) return true;
      uv_run(&loop_, UV_RUN_NOWAIT);
    }
    return done();
  }

  std::string replicas(const std::string& service) {
    for (const auto& s : ok(orch_->listServices(""))) {
      if (s["name"] == service) return s["replicas"];
    }
    return "missing";
  }

  fs::path dir_, root_;  // the test's temp folder, and the data root in it
  std::string imageId_;  // of app:1
  uv_loop_t loop_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<runtime::ImageStore> images_;
  FakeLinkNetlink netlink_;
  std::unique_ptr<overlay::Overlay> overlay_;
  std::unique_ptr<proxy::Proxy> proxy_;
  runtime::FakeContainerLauncher launcher_;
  std::unique_ptr<Orchestrator> orch_;
  // The readiness probes asked for ("ip:port") and their answer.
  std::vector<std::string> probes_;
  bool portsAccept_ = true;
};

}  // namespace skiff::netd::testing
