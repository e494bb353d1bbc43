// CgroupManager and the two CgroupFs implementations.

#include "skiff/runtime/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "skiff/common/fd.h"
#include "skiff/common/file.h"
#include "skiff/common/log.h"

namespace skiff::runtime {
namespace {

constexpr int kRemoveAttempts = 50;  // x 20 ms = 1 s for killed processes to leave
constexpr int kRemovePauseMillis = 20;

class RealCgroupFs : public CgroupFs {
 public:
  Status makeDir(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return Error::msg("create cgroup " + path + ": " + ec.message(), ec.value());
    return okStatus();
  }
  Status removeDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return Error::fromErrno("remove cgroup " + path);
    return okStatus();
  }
  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  Status writeFile(const std::string& path, const std::string& value) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return Error::fromErrno("open " + path);
    // cgroupfs takes one value per write(2).
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
      return Error::fromErrno("write " + value + " to " + path);
    }
    return okStatus();
  }
  Result<std::string> readFile(const std::string& path) override { return ::skiff::readFile(path); }
  Status killProcess(pid_t pid, int sig) override {
    if (::kill(pid, sig) != 0 && errno != ESRCH) return Error::fromErrno("kill " + std::to_string(pid));
    return okStatus();
  }
  void pauseMillis(int millis) override { std::this_thread::sleep_for(std::chrono::milliseconds(millis)); }
};

std::string dirOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

std::vector<pid_t> parsePids(const std::string& text) {
  std::vector<pid_t> out;
  std::istringstream in(text);
  long pid = 0;
  while (in >> pid) out.push_back(static_cast<pid_t>(pid));
  return out;
}

Result<std::string> readAll(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::fromErrno("read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::shared_ptr<CgroupFs> makeRealCgroupFs() { return std::make_shared<RealCgroupFs>(); }

// ---- FakeCgroupFs ----

Status FakeCgroupFs::makeDir(const std::string& path) {
  std::string p;
  for (const auto& part : std::filesystem::path(path)) {
    if (part == "/") continue;
    // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false
    // positive) on "/" + std::string, which breaks Release builds with -Werror.
    p += '/';
    p += part.string();
    if (dirs.insert(p).second) files[p + "/cgroup.procs"] = "";
  }
  return okStatus();
}

Status FakeCgroupFs::removeDir(const std::string& path) {
  if (!dirs.count(path)) return okStatus();
  if (!files[path + "/cgroup.procs"].empty()) return Error::fromErrno("remove cgroup " + path, EBUSY);
  for (const auto& d : dirs) {
    if (d.rfind(path + "/", 0) == 0) return Error::fromErrno("remove cgroup " + path, EBUSY);
  }
  dirs.erase(path);
  for (auto it = files.begin(); it != files.end();) {
    it = dirOf(it->first) == path ? files.erase(it) : std::next(it);
  }
  return okStatus();
}

bool FakeCgroupFs::exists(const std::string& path) { return dirs.count(path) || files.count(path); }

Status FakeCgroupFs::writeFile(const std::string& path, const std::string& value) {
  for (const auto& suffix : failWrites) {
    if (path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return Error::fromErrno("write " + value + " to " + path, EACCES);
    }
  }
  if (!dirs.count(dirOf(path))) return Error::fromErrno("open " + path, ENOENT);
  if (path.ends_with("/cgroup.procs")) {
    // A process is in exactly one group per hierarchy: take it out of the others.
    auto rootOf = [this](const std::string& p) {
      for (const auto& r : hierarchyRoots) {
        if (p.rfind(r + "/", 0) == 0) return r;
      }
      return std::string();
    };
    const std::string root = rootOf(path);
    for (auto& [p, content] : files) {
      if (!p.ends_with("/cgroup.procs") || rootOf(p) != root) continue;
      auto pids = parsePids(content);
      std::string kept;
      for (pid_t pid : pids) {
        if (std::to_string(pid) != value) kept += std::to_string(pid) + "\n";
      }
      content = kept;
    }
    files[path] += value + "\n";
    return okStatus();
  }
  files[path] = value;
  return okStatus();
}

Result<std::string> FakeCgroupFs::readFile(const std::string& path) {
  auto it = files.find(path);
  if (it == files.end()) return Error::fromErrno("open " + path, ENOENT);
  return it->second;
}

Status FakeCgroupFs::killProcess(pid_t pid, int sig) {
  signals.emplace_back(pid, sig);
  if (sig == SIGKILL) {
    for (auto& [p, content] : files) {
      if (!p.ends_with("/cgroup.procs")) continue;
      std::string kept;
      for (pid_t q : parsePids(content)) {
        if (q != pid) kept += std::to_string(q) + "\n";
      }
      content = kept;
    }
  }
  return okStatus();
}

// ---- CgroupManager ----

CgroupManager::CgroupManager(std::shared_ptr<CgroupFs> fs, CgroupLayout layout, std::string parent)
    : fs_(std::move(fs)), layout_(std::move(layout)), parent_(std::move(parent)) {}

Result<std::shared_ptr<CgroupManager>> CgroupManager::detect(std::string parent, std::string mountBase) {
  auto mountinfo = readAll("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.error();
  auto procCgroups = readAll("/proc/cgroups");
  // /proc/cgroups may be absent on v2-only kernels; then it is v2.
  CgroupLayout layout = detectCgroupLayout(*mountinfo, procCgroups.ok() ? *procCgroups : "");
  for (const auto& h : layout.missingV1) {
    std::string dir = mountBase + "/" + h.options;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error::msg("create " + dir + ": " + ec.message(), ec.value());
    if (::mount("cgroup", dir.c_str(), "cgroup", 0, h.options.c_str()) != 0 && errno != EBUSY) {
      return Error::fromErrno("mount cgroup -o " + h.options + " on " + dir);
    }
    log::info("cgroup", "mounted v1 hierarchy ", h.options, " on ", dir);
    for (const auto& c : h.controllers) layout.v1Roots[c] = dir;
  }
  layout.missingV1.clear();
  if (layout.needsUnifiedMount) {
    std::string dir = mountBase + "/unified";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error::msg("create " + dir + ": " + ec.message(), ec.value());
    if (::mount("cgroup2", dir.c_str(), "cgroup2", 0, nullptr) != 0 && errno != EBUSY) {
      return Error::fromErrno("mount cgroup2 on " + dir);
    }
    log::info("cgroup", "mounted cgroup2 on ", dir);
    layout.unifiedRoot = dir;
    layout.needsUnifiedMount = false;
  }
  log::info("cgroup", "using cgroup ", toString(layout.version));
  return std::make_shared<CgroupManager>(makeRealCgroupFs(), std::move(layout), std::move(parent));
}

std::vector<std::string> CgroupManager::parentDirs() const {
  std::vector<std::string> out;
  if (layout_.version == CgroupVersion::kV2) {
    out.push_back(layout_.unifiedRoot + "/" + parent_);
  } else {
    for (const auto& c : wantedControllers()) {
      auto it = layout_.v1Roots.find(c);
      if (it == layout_.v1Roots.end()) continue;
      std::string dir = it->second + "/" + parent_;
      // Co-mounted controllers share a directory; list it once.
      if (std::find(out.begin(), out.end(), dir) == out.end()) out.push_back(dir);
    }
  }
  return out;
}

std::vector<std::string> CgroupManager::groupDirs(const std::string& id) const {
  std::vector<std::string> out = parentDirs();
  for (auto& d : out) d += "/" + id;
  return out;
}

Status CgroupManager::create(const std::string& id, const Resources& limits) {
  if (layout_.version == CgroupVersion::kNone) return Error::msg("no cgroup hierarchy found");
  if (id.empty() || id.find('/') != std::string::npos) return Error::msg("bad container id for cgroup: " + id);
  const auto writes = limitWrites(layout_.version, limits);
  auto fail = [&](Error e) -> Status {
    (void)remove(id);
    return e;
  };
  if (layout_.version == CgroupVersion::kV2) {
    // Controllers must be enabled in every ancestor's subtree_control.
    const std::string parentDir = layout_.unifiedRoot + "/" + parent_;
    if (auto s = fs_->makeDir(parentDir); !s.ok()) return s;
    for (const std::string& dir : {layout_.unifiedRoot, parentDir}) {
      for (const auto& c : wantedControllers()) {
        auto s = fs_->writeFile(dir + "/cgroup.subtree_control", "+" + c);
        if (!s.ok()) {
          bool needed = false;
          for (const auto& w : writes) needed = needed || w.controller == c;
          if (needed) return s;
          log::debug("cgroup", "controller ", c, " not enabled: ", s.error().message);
        }
      }
    }
    const std::string group = parentDir + "/" + id;
    if (auto s = fs_->makeDir(group); !s.ok()) return fail(s.error());
    for (const auto& w : writes) {
      if (auto s = fs_->writeFile(group + "/" + w.file, w.value); !s.ok()) return fail(s.error());
    }
    return okStatus();
  }
  for (const auto& w : writes) {
    if (!layout_.v1Roots.count(w.controller)) {
      return Error::msg("cgroup v1 controller " + w.controller + " is not mounted");
    }
  }
  for (const auto& dir : groupDirs(id)) {
    if (auto s = fs_->makeDir(dir); !s.ok()) return fail(s.error());
  }
  for (const auto& w : writes) {
    const std::string dir = layout_.v1Roots.at(w.controller) + "/" + parent_ + "/" + id;
    if (auto s = fs_->writeFile(dir + "/" + w.file, w.value); !s.ok()) return fail(s.error());
  }
  return okStatus();
}

Status CgroupManager::addProcess(const std::string& id, pid_t pid) {
  for (const auto& dir : groupDirs(id)) {
    SKIFF_TRY(fs_->writeFile(dir + "/cgroup.procs", std::to_string(pid)));
  }
  return okStatus();
}

Result<std::vector<pid_t>> CgroupManager::processes(const std::string& id) {
  std::vector<pid_t> out;
  for (const auto& dir : groupDirs(id)) {
    if (!fs_->exists(dir)) continue;
    auto text = fs_->readFile(dir + "/cgroup.procs");
    if (!text.ok()) return text.error();
    for (pid_t p : parsePids(*text)) {
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
  }
  return out;
}

Status CgroupManager::remove(const std::string& id) {
  Status last;
  for (const auto& dir : groupDirs(id)) {
    if (!fs_->exists(dir)) continue;
    bool removed = false;
    for (int attempt = 0; attempt < kRemoveAttempts && !removed; ++attempt) {
      auto procs = fs_->readFile(dir + "/cgroup.procs");
      if (procs.ok()) {
        for (pid_t p : parsePids(*procs)) (void)fs_->killProcess(p, SIGKILL);
      }
      last = fs_->removeDir(dir);
      removed = last.ok();
      if (!removed) fs_->pauseMillis(kRemovePauseMillis);
    }
    if (!removed) log::warn("cgroup", "could not remove ", dir, ": ", last.error().message);
  }
  return last;
}

}  // namespace skiff::runtime
