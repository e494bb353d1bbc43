#pragma once
// RAII fixture for container integration tests: a temp dir with a one-layer
// image holding the static helper, a CgroupManager under a per-process parent
// group, and a real launcher. TearDown kills and cleans up everything, also
// when a test failed halfway.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <list>
#include <sstream>
#include <thread>

#include "netns_testing.h"
#include "skiff/runtime/cgroup.h"
#include "skiff/runtime/container.h"

namespace skiff::runtime::testing {

inline std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Waits (bounded) until fd is readable.
inline bool waitReadable(int fd, int timeoutMillis) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeoutMillis) == 1;
}

class ContainerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_ISOLATED();
    base_ = std::filesystem::temp_directory_path() / ("skiff-ctr-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ / "layer/bin");
    std::filesystem::copy_file(SKIFF_CTR_HELPER, base_ / "layer/bin/helper");
    std::ofstream(base_ / "msg") << "from the host\n";
    parent_ = "skiff-test-" + std::to_string(::getpid());
    auto m = CgroupManager::detect(parent_, (base_ / "cgroup").string());
    ASSERT_TRUE(m.ok()) << m.error().message;
    cgroups_ = *m;
    launcher_ = makeLinuxLauncher(cgroups_, SKIFF_CTR_INIT);
    ready_ = true;
  }

  void TearDown() override {
    if (!ready_) return;
    for (auto& [spec, launched] : started_) {
      if (launched.pid > 0) ::kill(launched.pid, SIGKILL);
      (void)launcher_->cleanup(spec, true);
      if (launched.pid > 0) ::waitpid(launched.pid, nullptr, 0);
    }
    // Parent groups of this test process.
    for (const auto& dir : cgroups_->groupDirs("x")) ::rmdir(std::filesystem::path(dir).parent_path().c_str());
    // Hierarchies the test mounted (the netns-exec case) go with our mount
    // namespace; unmount anyway so the temp dir can be removed.
    std::error_code ec;
    if (std::filesystem::exists(base_ / "cgroup", ec)) {
      for (const auto& e : std::filesystem::directory_iterator(base_ / "cgroup", ec)) {
        ::umount2(e.path().c_str(), MNT_DETACH);
      }
    }
    std::filesystem::remove_all(base_, ec);
  }

  ContainerSpec makeSpec(std::vector<std::string> argv, const std::string& idSuffix = "01") {
    ContainerSpec spec;
    char prefix[13];
    std::snprintf(prefix, sizeof prefix, "%010x%s", static_cast<unsigned>(::getpid()), idSuffix.c_str());
    spec.id = std::string(prefix) + std::string(52, 'a');
    spec.lowerDirs = {(base_ / "layer").string()};
    spec.stateDir = (base_ / "containers" / spec.id).string();
    spec.argv = std::move(argv);
    spec.env = {"FOO=bar"};
    spec.limits = Resources{0.1, 52428800, 0};
    spec.logPath = (base_ / "logs" / (spec.id + ".log")).string();
    spec.mounts = {BindMount{(base_ / "msg").string(), "/data/msg", true}};
    return spec;
  }

  // Launches and remembers the container for TearDown.
  Result<Launched*> launch(const ContainerSpec& spec, const std::function<Status(pid_t)>& beforeExec = nullptr) {
    auto r = launcher_->launch(spec, beforeExec);
    if (!r.ok()) {
      started_.emplace_back(spec, Launched{});  // still clean up its state dir
      return r.error();
    }
    started_.emplace_back(spec, std::move(*r));
    return &started_.back().second;
  }

  // Polls the log (bounded) until it has a full line.
  std::string waitForLog(const ContainerSpec& spec) {
    for (int i = 0; i < 250; ++i) {
      std::string text = readText(spec.logPath);
      if (text.find('\n') != std::string::npos) return text;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return readText(spec.logPath);
  }

  std::filesystem::path base_;
  std::string parent_;
  std::shared_ptr<CgroupManager> cgroups_;
  std::unique_ptr<ContainerLauncher> launcher_;
  std::list<std::pair<ContainerSpec, Launched>> started_;  // stable addresses
  bool ready_ = false;
};

}  // namespace skiff::runtime::testing
