// Pure helpers of the container concern: /etc files' text, PATH lookup, and
// the spec's JSON form.

#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

#include "container_internal.h"

namespace skiff::runtime {
namespace {
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}
}  // namespace

std::string hostsFileText(const std::string& hostname,
                          const std::vector<std::pair<std::string, std::string>>& extraHosts) {
  std::string out =
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "ff00::0\tip6-mcastprefix\n"
      "ff02::1\tip6-allnodes\n"
      "ff02::2\tip6-allrouters\n";
  bool ownName = false;
  for (const auto& [ip, name] : extraHosts) {
    out += ip + "\t" + name + "\n";
    ownName = ownName || name == hostname;
  }
  // Without an address of its own, the container still resolves its name.
  if (!ownName && !hostname.empty()) out += "127.0.1.1\t" + hostname + "\n";
  return out;
}

std::string resolvConfText(std::string_view hostResolvConf) {
  std::istringstream in{std::string(hostResolvConf)};
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    std::string value;
    words >> key >> value;
    if (key == "nameserver" && (value.rfind("127.", 0) == 0 || value == "::1")) continue;
    out += line + "\n";
  }
  return out;
}

Result<std::string> lookPath(const std::string& rootDir, const std::string& argv0,
                             const std::vector<std::string>& env) {
  if (argv0.empty()) return Error::msg("exec: \"\": executable file not found in $PATH", ENOENT);
  if (argv0.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat((rootDir + argv0).c_str(), &st) != 0) {
      return Error::msg("exec: \"" + argv0 + "\": stat " + argv0 + ": no such file or directory", ENOENT);
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
      return Error::msg("exec: \"" + argv0 + "\": permission denied", EACCES);
    }
    return argv0;
  }
  std::string path = kDefaultPath;
  for (const auto& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  }
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir.empty() ? std::string(".") : dir;
    candidate.append("/").append(argv0);
    if (isExecutableFile(rootDir + candidate)) return candidate;
  }
  return Error::msg("exec: \"" + argv0 + "\": executable file not found in $PATH", ENOENT);
}

std::vector<std::string> healthcheckArgv(const Healthcheck& check) {
  if (check.disable || check.test.empty()) return {};
  const std::string& kind = check.test[0];
  if (kind == "CMD" && check.test.size() > 1) return {check.test.begin() + 1, check.test.end()};
  // Docker joins what follows CMD-SHELL into one script (compose writes one string).
  if (kind == "CMD-SHELL" && check.test.size() > 1) {
    std::string script;
    for (size_t i = 1; i < check.test.size(); ++i) {
      if (i > 1) script += ' ';
      script += check.test[i];
    }
    return {"/bin/sh", "-c", script};
  }
  return {};
}

namespace detail {

std::vector<std::string> execEnvironment(const std::vector<std::string>& containerEnv,
                                         const std::vector<std::string>& execEnv, const std::string& hostname,
                                         const std::string& home) {
  std::vector<std::string> env;
  auto keyOf = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  auto set = [&](const std::string& kv) {
    const std::string key = keyOf(kv);
    for (auto& e : env) {
      if (keyOf(e) == key) {
        e = kv;
        return;
      }
    }
    env.push_back(kv);
  };
  for (const auto& kv : containerEnv) set(kv);
  for (const auto& kv : execEnv) set(kv);
  auto has = [&](const std::string& key) {
    for (const auto& e : env) {
      if (keyOf(e) == key) return true;
    }
    return false;
  };
  if (!has("PATH")) env.push_back(std::string("PATH=") + kDefaultPath);
  if (!has("HOSTNAME")) env.push_back("HOSTNAME=" + hostname);
  if (!has("HOME")) env.push_back("HOME=" + home);
  return env;
}

nlohmann::json specToJson(const ContainerSpec& s) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : s.mounts) {
    mounts.push_back({{"source", m.source}, {"target", m.target}, {"readOnly", m.readOnly}});
  }
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto& [ip, name] : s.extraHosts) hosts.push_back({ip, name});
  return {{"id", s.id},
          {"lowerDirs", s.lowerDirs},
          {"stateDir", s.stateDir},
          {"argv", s.argv},
          {"env", s.env},
          {"workingDir", s.workingDir},
          {"user", s.user},
          {"hostname", s.hostname},
          {"extraHosts", hosts},
          {"mounts", mounts},
          {"limits", {{"cpus", s.limits.cpus}, {"memoryBytes", s.limits.memoryBytes}, {"pids", s.limits.pids}}},
          {"logPath", s.logPath},
          {"seccomp", toString(s.seccomp)},
          {"seccompProfile", s.seccompProfile}};
}

ContainerSpec specFromJson(const nlohmann::json& j) {
  ContainerSpec s;
  s.id = j.at("id").get<std::string>();
  s.lowerDirs = j.at("lowerDirs").get<std::vector<std::string>>();
  s.stateDir = j.at("stateDir").get<std::string>();
  s.argv = j.at("argv").get<std::vector<std::string>>();
  s.env = j.at("env").get<std::vector<std::string>>();
  s.workingDir = j.at("workingDir").get<std::string>();
  s.user = j.at("user").get<std::string>();
  s.hostname = j.at("hostname").get<std::string>();
  for (const auto& h : j.at("extraHosts"))
    s.extraHosts.emplace_back(h.at(0).get<std::string>(), h.at(1).get<std::string>());
  for (const auto& m : j.at("mounts")) {
    s.mounts.push_back(
        {m.at("source").get<std::string>(), m.at("target").get<std::string>(), m.at("readOnly").get<bool>()});
  }
  const auto& l = j.at("limits");
  s.limits.cpus = l.at("cpus").get<double>();
  s.limits.memoryBytes = l.at("memoryBytes").get<int64_t>();
  s.limits.pids = l.at("pids").get<int64_t>();
  s.logPath = j.at("logPath").get<std::string>();
  // A spec without the field (an older netd's) gets Docker's default.
  const auto mode = seccompModeFromString(j.value("seccomp", "default"));
  if (!mode) throw std::invalid_argument("seccomp: unknown mode " + j.value("seccomp", ""));
  s.seccomp = *mode;
  s.seccompProfile = j.value("seccompProfile", "");
  return s;
}

}  // namespace detail
}  // namespace skiff::runtime
