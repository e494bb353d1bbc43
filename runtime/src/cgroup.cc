// CgroupManager and the two CgroupFs implementations.

#include "skiff/runtime/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

// v1 reports "no limit" as LONG_MAX rounded down to a page; anything from
// 2^62 up is no limit a host could honour.
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

std::optional<uint64_t> digits(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  return n;
}

}  // namespace

std::optional<uint64_t> parseKeyedValue(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
      return digits(trimmed(line.substr(key.size() + 1)));
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> parseSingleValue(std::string_view text) { return digits(trimmed(text)); }

std::optional<uint64_t> parseMemoryLimit(std::string_view text) {
  if (trimmed(text) == "max") return 0;
  auto n = parseSingleValue(text);
  if (n && *n >= kV1Unlimited) return 0;
  return n;
}

uint64_t parseMemTotal(std::string_view meminfo) {
  // "MemTotal:       16314424 kB"
  const size_t at = meminfo.find("MemTotal:");
  if (at == std::string_view::npos) return 0;
  std::string_view rest = meminfo.substr(at + 9);
  rest = rest.substr(0, rest.find('\n'));
  rest = trimmed(rest);
  const bool kb = rest.ends_with(" kB");
  if (kb) rest.remove_suffix(3);
  auto n = digits(trimmed(rest));
  if (!n) return 0;
  return kb ? *n * 1024 : *n;
}

uint64_t shownMemoryLimit(uint64_t limit, uint64_t hostMemory) {
  if (hostMemory == 0) return limit;
  return limit == 0 || limit > hostMemory ? hostMemory : limit;
}

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
    for (const auto& c : v1Controllers()) {
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

Result<CgroupStats> CgroupManager::stats(const std::string& id) const {
  CgroupStats out;
  auto number = [&](const std::string& path) -> std::optional<uint64_t> {
    auto text = fs_->readFile(path);
    return text.ok() ? parseSingleValue(*text) : std::nullopt;
  };
  std::string memDir, cpuFile, pidsDir;
  const char* inactiveKey = "inactive_file";
  std::string usageFile, limitFile;
  if (layout_.version == CgroupVersion::kV2) {
    const std::string g = layout_.unifiedRoot + "/" + parent_ + "/" + id;
    memDir = pidsDir = g;
    usageFile = g + "/memory.current";
    limitFile = g + "/memory.max";
    if (auto text = fs_->readFile(g + "/cpu.stat"); text.ok()) {
      if (auto usec = parseKeyedValue(*text, "usage_usec")) out.cpuNs = *usec * 1000;
    }
  } else if (layout_.version == CgroupVersion::kV1) {
    auto dirOf = [&](const char* controller) {
      auto it = layout_.v1Roots.find(controller);
      return it == layout_.v1Roots.end() ? std::string() : it->second + "/" + parent_ + "/" + id;
    };
    memDir = dirOf("memory");
    pidsDir = dirOf("pids");
    usageFile = memDir + "/memory.usage_in_bytes";
    limitFile = memDir + "/memory.limit_in_bytes";
    inactiveKey = "total_inactive_file";
    // cpuacct co-mounted with cpu or on its own: the group is in its hierarchy.
    if (const std::string acct = dirOf("cpuacct"); !acct.empty()) out.cpuNs = number(acct + "/cpuacct.usage");
  } else {
    return Error::msg("no cgroup hierarchy found");
  }
  if (memDir.empty()) return Error::msg("cgroup v1 controller memory is not mounted");
  auto usage = fs_->readFile(usageFile);
  if (!usage.ok()) return usage.error();
  auto used = parseSingleValue(*usage);
  if (!used) return Error::msg("unreadable memory usage in " + usageFile + ": " + std::string(trimmed(*usage)));
  out.memoryUsage = *used;
  if (auto stat = fs_->readFile(memDir + "/memory.stat"); stat.ok()) {
    // docker's calculateMemUsageUnixNoCache: the inactive page cache is not use.
    if (auto inactive = parseKeyedValue(*stat, inactiveKey); inactive && *inactive < out.memoryUsage) {
      out.memoryUsage -= *inactive;
    }
  }
  if (auto limit = fs_->readFile(limitFile); limit.ok()) out.memoryLimit = parseMemoryLimit(*limit).value_or(0);
  if (!pidsDir.empty()) out.pids = number(pidsDir + "/pids.current").value_or(0);
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
