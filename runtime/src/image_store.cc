// ImageStore: the Dockerfile-subset builder and the content-addressed local
// image store; see image.h for the layout on disk.
#include <glob.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "image_fs.h"
#include "layer_tar.h"
#include "skiff/common/file.h"
#include "skiff/common/log.h"
#include "skiff/runtime/dockerfile.h"
#include "skiff/runtime/image.h"

namespace skiff::runtime {
namespace {

using nlohmann::json;
namespace df = dockerfile;

constexpr const char* kSha = "sha256:";
constexpr size_t kMaxExposedRange = 1024;  // bounds `EXPOSE 1-65535`-style ranges

struct ImageMeta {
  int64_t created = 0;
  int64_t size = 0;
};

// repositories.json in memory.
struct Index {
  std::map<std::string, std::string> tags;  // "name:tag" -> id
  std::map<std::string, ImageMeta> images;  // id -> meta
};

std::string hexOf(const std::string& id) { return id.rfind(kSha, 0) == 0 ? id.substr(std::string(kSha).size()) : id; }

std::string shortId(const std::string& id) { return hexOf(id).substr(0, 12); }

bool isHex(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Error lineError(int line, const std::string& text) { return Error::msg("line " + std::to_string(line) + ": " + text); }

const char* architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

// A registry host as docker's reference grammar has it: dot-separated
// components of letters, digits and inner '-', then an optional ":port".
bool validHost(const std::string& host) {
  std::string name = host;
  if (auto colon = host.find(':'); colon != std::string::npos) {
    std::string port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return false;
    name = host.substr(0, colon);
  }
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t dot = name.find('.', pos);
    if (dot == std::string::npos) dot = name.size();
    std::string comp = name.substr(pos, dot - pos);
    if (comp.empty() || comp.front() == '-' || comp.back() == '-') return false;
    for (char c : comp) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    pos = dot + 1;
  }
  return true;
}

// docker's reference grammar, simplified: lower-case path components of
// [a-z0-9._-] (a first component with '.' or ':' or "localhost" is a
// registry host and may hold upper case and a port), tag [A-Za-z0-9_.-]{1,128},
// the name at most 255 characters (docker's NameTotalLengthMax).
Status validateRef(const std::string& ref) {
  const std::string bad = "invalid reference format: " + (ref.size() > 300 ? ref.substr(0, 300) + "..." : ref);
  if (ref.empty() || ref.find('@') != std::string::npos) return Error::msg(bad);
  std::string name = ref, tagPart;
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    name = ref.substr(0, colon);
    tagPart = ref.substr(colon + 1);
    if (tagPart.empty() || tagPart.size() > 128 || tagPart[0] == '.' || tagPart[0] == '-') {
      return Error::msg(bad);
    }
    for (char c : tagPart) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) {
        return Error::msg(bad);
      }
    }
  }
  if (name.size() > 255) return Error::msg(bad + " (repository name must not be more than 255 characters)");
  size_t pos = 0;
  bool first = true;
  while (pos <= name.size()) {
    size_t s = name.find('/', pos);
    if (s == std::string::npos) s = name.size();
    std::string comp = name.substr(pos, s - pos);
    bool last = s == name.size();
    pos = s + 1;
    if (comp.empty()) return Error::msg(bad);
    bool host = first && !last &&
                (comp.find('.') != std::string::npos || comp.find(':') != std::string::npos || comp == "localhost");
    first = false;
    if (host) {
      // "..", "b:.." or "a..b" are no hosts: "../x" must not pass as one.
      if (!validHost(comp)) return Error::msg(bad);
      continue;
    }
    for (char c : comp) {
      if (std::isupper(static_cast<unsigned char>(c))) {
        return Error::msg("invalid reference format: repository name (" + name + ") must be lowercase");
      }
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
            c == '_' || c == '-')) {
        return Error::msg(bad);
      }
    }
    if (!std::isalnum(static_cast<unsigned char>(comp.front())) ||
        !std::isalnum(static_cast<unsigned char>(comp.back()))) {
      return Error::msg(bad);
    }
    if (last) break;
  }
  return okStatus();
}

// Docker's HealthConfig: durations in nanoseconds, NONE with nothing else.
json healthcheckToJson(const Healthcheck& h) {
  if (h.disable) return json{{"Test", std::vector<std::string>{"NONE"}}};
  auto ns = [](double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); };
  return json{{"Test", h.test},
              {"Interval", ns(h.intervalSeconds)},
              {"Timeout", ns(h.timeoutSeconds)},
              {"StartPeriod", ns(h.startPeriodSeconds)},
              {"Retries", h.retries}};
}

// Absent, null or an empty Test (docker: "inherit") is no health check;
// zero fields keep the defaults. Throws nlohmann::json::exception.
std::optional<Healthcheck> healthcheckFromJson(const json& c) {
  auto it = c.find("Healthcheck");
  if (it == c.end() || it->is_null()) return std::nullopt;
  Healthcheck h;
  h.test = it->value("Test", std::vector<std::string>{});
  if (h.test.empty()) return std::nullopt;
  if (h.test[0] == "NONE") {
    h.test = {"NONE"};
    h.disable = true;
    return h;
  }
  auto seconds = [&](const char* key, double fallback) {
    const int64_t ns = it->value(key, int64_t{0});
    return ns > 0 ? static_cast<double>(ns) / 1e9 : fallback;
  };
  h.intervalSeconds = seconds("Interval", h.intervalSeconds);
  h.timeoutSeconds = seconds("Timeout", h.timeoutSeconds);
  h.startPeriodSeconds = seconds("StartPeriod", h.startPeriodSeconds);
  const int64_t retries = it->value("Retries", int64_t{0});
  if (retries > 0) h.retries = static_cast<uint64_t>(retries);
  return h;
}

json configToJson(const ImageConfig& c, const std::vector<std::string>& layers) {
  json ports = json::object();
  for (const auto& p : c.exposedPorts) ports[p] = json::object();
  json cfg = {{"Env", c.env},   {"Entrypoint", c.entrypoint}, {"Cmd", c.cmd},      {"WorkingDir", c.workingDir},
              {"User", c.user}, {"ExposedPorts", ports},      {"Labels", c.labels}};
  if (c.healthcheck) cfg["Healthcheck"] = healthcheckToJson(*c.healthcheck);
  return json{{"architecture", architecture()},
              {"os", "linux"},
              {"config", cfg},
              {"rootfs", {{"type", "layers"}, {"diff_ids", layers}}}};
}

// Parses a stored config; exceptions from nlohmann stay inside this function.
Result<ImageRecord> recordFromJson(const std::string& id, const std::string& text) {
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error::msg("corrupt image config " + id);
  try {
    ImageRecord r;
    r.id = id;
    // Other tools write null (or nothing) for what is not set.
    static const json kNone = json::object();
    auto field = [](const json& obj, const char* key) -> const json& {
      auto it = obj.find(key);
      return it == obj.end() || it->is_null() ? kNone : *it;
    };
    const json& c = field(j, "config");
    auto strings = [&](const char* key) {
      const json& v = field(c, key);
      return v.is_array() ? v.get<std::vector<std::string>>() : std::vector<std::string>{};
    };
    auto textOf = [&](const char* key) {
      const json& v = field(c, key);
      return v.is_string() ? v.get<std::string>() : std::string();
    };
    r.config.env = strings("Env");
    r.config.entrypoint = strings("Entrypoint");
    r.config.cmd = strings("Cmd");
    r.config.workingDir = textOf("WorkingDir");
    r.config.user = textOf("User");
    for (auto it = field(c, "ExposedPorts").begin(); it != field(c, "ExposedPorts").end(); ++it) {
      r.config.exposedPorts.push_back(it.key());
    }
    if (field(c, "Labels").is_object()) r.config.labels = field(c, "Labels").get<std::map<std::string, std::string>>();
    r.config.healthcheck = healthcheckFromJson(c);
    r.layers = j.at("rootfs").value("diff_ids", std::vector<std::string>{});
    return r;
  } catch (const std::exception& e) {
    return Error::msg("corrupt image config " + id + ": " + e.what());
  }
}

// What <layer>/<rel> is, without following any symlink on the way (a
// layer's absolute symlink must never resolve into the host).
enum class InLayer { kAbsent, kPresent, kWhiteout };
InLayer lookInLayer(const std::string& layer, const std::string& rel) {
  std::string cur = layer;
  size_t pos = 0;
  while (pos <= rel.size()) {
    size_t s = rel.find('/', pos);
    if (s == std::string::npos) s = rel.size();
    // In place, not "/" + substr: that form trips GCC 12's false-positive
    // -Wrestrict at -O3 (Release builds with -Werror), and copies twice.
    cur += '/';
    cur.append(rel, pos, s - pos);
    pos = s + 1;
    struct stat st {};
    if (::lstat(cur.c_str(), &st) != 0) return InLayer::kAbsent;
    // An overlayfs whiteout (a char device 0/0) hides this path and all below.
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return InLayer::kWhiteout;
    if (s == rel.size()) return InLayer::kPresent;
    if (!S_ISDIR(st.st_mode)) return InLayer::kAbsent;
  }
  return InLayer::kAbsent;
}

// Whether a container of these layers (topmost first) sees /bin/sh.
bool hasShellIn(const std::vector<std::string>& dirs) {
  for (const char* sh : {"bin/sh", "usr/bin/sh"}) {
    for (const auto& dir : dirs) {
      InLayer found = lookInLayer(dir, sh);
      if (found == InLayer::kPresent) return true;
      if (found == InLayer::kWhiteout) break;
    }
  }
  return false;
}

// mkdir -p with a fixed 0755 mode, whatever the umask, so that parent dirs in
// a layer hash the same on every machine.
Status layerMkdirs(const std::string& base, const std::string& rel) {
  std::string cur = base;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t s = rel.find('/', pos);
    if (s == std::string::npos) s = rel.size();
    std::string comp = rel.substr(pos, s - pos);
    pos = s + 1;
    if (comp.empty()) continue;
    cur += "/" + comp;
    if (::mkdir(cur.c_str(), 0755) == 0) {
      if (::chmod(cur.c_str(), 0755) != 0) return Error::fromErrno("chmod " + cur);
    } else if (errno != EEXIST) {
      return Error::fromErrno("mkdir " + cur);
    }
  }
  return okStatus();
}

std::string joinAbs(const std::string& base, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  if (base.empty() || base == "/") return "/" + path;
  return base + "/" + path;
}

bool isRemote(const std::string& src) { return src.find("://") != std::string::npos || src.rfind("git@", 0) == 0; }

void setEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env) {
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

// Removes a directory tree when the scope ends, also on every error path.
class TreeGuard {
 public:
  explicit TreeGuard(std::string path) : path_(std::move(path)) {}
  ~TreeGuard() { imagefs::removeTree(path_); }
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;

 private:
  std::string path_;
};

// Layers a build stored that did not exist before it: removed again when the
// build fails, so a failed build leaves nothing behind.
class NewLayers {
 public:
  ~NewLayers() {
    if (committed_) return;
    for (const auto& dir : dirs_) imagefs::removeTree(dir);
  }
  void add(std::string dir) { dirs_.push_back(std::move(dir)); }
  void commit() { committed_ = true; }

 private:
  std::vector<std::string> dirs_;
  bool committed_ = false;
};

// The state of one build while its instructions are applied.
struct BuildState {
  bool haveFrom = false;
  ImageConfig config;
  std::vector<std::string> layers;
  df::Vars args;
  bool cmdSet = false;
  int cmdShellLine = 0, entrypointShellLine = 0, healthcheckShellLine = 0;

  df::Vars vars() const {
    df::Vars v = args;
    for (const auto& e : config.env) {
      size_t eq = e.find('=');
      if (eq != std::string::npos) v[e.substr(0, eq)] = e.substr(eq + 1);
    }
    return v;
  }
};

// "K=V K2=V2" or the legacy "K V" form (ENV, LABEL).
Result<std::vector<std::pair<std::string, std::string>>> parsePairs(const df::Instruction& ins, const df::Vars& vars) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t firstSpace = ins.args.find_first_of(" \t");
  std::string first = ins.args.substr(0, firstSpace);
  if (first.find('=') == std::string::npos) {
    if (firstSpace == std::string::npos) {
      return lineError(
          ins.line, ins.keyword + " " + ins.args + ": missing value (use " + ins.keyword + " " + ins.args + "=value)");
    }
    auto key = df::lexWord(first, vars);
    if (!key.ok()) return lineError(ins.line, key.error().message);
    size_t start = ins.args.find_first_not_of(" \t", firstSpace);
    auto value = df::lexWord(ins.args.substr(start), vars);
    if (!value.ok()) return lineError(ins.line, value.error().message);
    out.emplace_back(*key, *value);
    return out;
  }
  auto words = df::lexWords(ins.args, vars);
  if (!words.ok()) return lineError(ins.line, words.error().message);
  for (const auto& w : *words) {
    size_t eq = w.find('=');
    if (eq == std::string::npos || eq == 0) {
      return lineError(ins.line, ins.keyword + ": can't find = in \"" + w + "\"; must be of the form: name=value");
    }
    out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return out;
}

Result<std::vector<std::string>> parseExpose(const df::Instruction& ins, const df::Vars& vars) {
  auto words = df::lexWords(ins.args, vars);
  if (!words.ok()) return lineError(ins.line, words.error().message);
  std::vector<std::string> out;
  for (const auto& w : *words) {
    std::string port = w, proto = "tcp";
    size_t slash = w.find('/');
    if (slash != std::string::npos) {
      port = w.substr(0, slash);
      proto = lower(w.substr(slash + 1));
    }
    if (proto != "tcp" && proto != "udp" && proto != "sctp") {
      return lineError(ins.line, "EXPOSE " + w + ": invalid protocol " + proto);
    }
    size_t dash = port.find('-');
    std::string lo = port.substr(0, dash), hi = dash == std::string::npos ? lo : port.substr(dash + 1);
    auto num = [](const std::string& s) -> long {
      if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit)) return -1;
      long v = std::strtol(s.c_str(), nullptr, 10);
      return v >= 1 && v <= 65535 ? v : -1;
    };
    long a = num(lo), b = num(hi);
    if (a < 0 || b < 0 || b < a || static_cast<size_t>(b - a) >= kMaxExposedRange) {
      return lineError(ins.line, "EXPOSE " + w + ": invalid port");
    }
    for (long p = a; p <= b; ++p) out.push_back(std::to_string(p) + "/" + proto);
  }
  return out;
}

}  // namespace

nlohmann::json imageToJson(const ImageRecord& r) {
  const ImageConfig& c = r.config;
  json j{{"Id", r.id},
         {"RepoTags", r.tags},
         {"Created", r.created},
         {"Size", r.size},
         {"Layers", r.layers},
         {"Config",
          {{"Env", c.env},
           {"Entrypoint", c.entrypoint},
           {"Cmd", c.cmd},
           {"WorkingDir", c.workingDir},
           {"User", c.user},
           {"ExposedPorts", c.exposedPorts},
           {"Labels", c.labels},
           {"HasShell", c.hasShell}}}};
  if (c.healthcheck) j["Config"]["Healthcheck"] = healthcheckToJson(*c.healthcheck);
  return j;
}

ImageRecord imageFromJson(const nlohmann::json& j) {
  ImageRecord r;
  r.id = j.at("Id").get<std::string>();
  r.tags = j.value("RepoTags", std::vector<std::string>{});
  r.created = j.value("Created", int64_t{0});
  r.size = j.value("Size", int64_t{0});
  r.layers = j.value("Layers", std::vector<std::string>{});
  const json& c = j.at("Config");
  r.config.env = c.value("Env", std::vector<std::string>{});
  r.config.entrypoint = c.value("Entrypoint", std::vector<std::string>{});
  r.config.cmd = c.value("Cmd", std::vector<std::string>{});
  r.config.workingDir = c.value("WorkingDir", "");
  r.config.user = c.value("User", "");
  r.config.exposedPorts = c.value("ExposedPorts", std::vector<std::string>{});
  r.config.labels = c.value("Labels", std::map<std::string, std::string>{});
  r.config.hasShell = c.value("HasShell", false);
  r.config.healthcheck = healthcheckFromJson(c);
  return r;
}

std::string normalizeImageRef(const std::string& ref) {
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) return ref;
  return ref + ":latest";
}

namespace {

class Store {
 public:
  explicit Store(const std::string& root) : root_(root) {}

  std::string layersDir() const { return root_ + "/layers"; }
  std::string configsDir() const { return root_ + "/configs"; }
  std::string reposPath() const { return root_ + "/repositories.json"; }
  std::string configPath(const std::string& id) const { return configsDir() + "/" + hexOf(id) + ".json"; }
  // A layer's gzip tar, as pushed and fetched, beside its directory.
  std::string blobPath(const std::string& diffHex) const { return layersDir() + "/" + diffHex + ".tar.gz"; }

  Status ensureDirs() const {
    SKIFF_TRY(imagefs::mkdirs(layersDir(), 0700));
    SKIFF_TRY(imagefs::mkdirs(configsDir(), 0700));
    return imagefs::mkdirs(root_ + "/tmp", 0700);
  }

  Result<Index> loadIndex() const {
    Index idx;
    struct stat st {};
    if (::stat(reposPath().c_str(), &st) != 0) return idx;  // a fresh store
    auto text = skiff::readFile(reposPath());
    if (!text.ok()) return text.error();
    auto j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return Error::msg("corrupt " + reposPath());
    try {
      if (j.contains("tags")) idx.tags = j.at("tags").get<std::map<std::string, std::string>>();
      if (j.contains("images")) {
        for (auto it = j.at("images").begin(); it != j.at("images").end(); ++it) {
          idx.images[it.key()] = ImageMeta{it->value("created", int64_t{0}), it->value("size", int64_t{0})};
        }
      }
    } catch (const std::exception& e) {
      return Error::msg("corrupt " + reposPath() + ": " + e.what());
    }
    return idx;
  }

  Status saveIndex(const Index& idx) const {
    SKIFF_TRY(ensureDirs());
    json images = json::object();
    for (const auto& [id, m] : idx.images) images[id] = {{"created", m.created}, {"size", m.size}};
    json j = {{"tags", idx.tags}, {"images", images}};
    return skiff::writeFileAtomic(reposPath(), j.dump(2) + "\n");
  }

  Result<ImageRecord> readImage(const std::string& id, const Index& idx) const {
    auto text = skiff::readFile(configPath(id));
    if (!text.ok()) return text.error();
    auto rec = recordFromJson(id, *text);
    if (!rec.ok()) return rec;
    std::vector<std::string> dirs;
    for (auto it = rec->layers.rbegin(); it != rec->layers.rend(); ++it) dirs.push_back(layersDir() + "/" + hexOf(*it));
    rec->config.hasShell = hasShellIn(dirs);
    for (const auto& [t, tid] : idx.tags) {
      if (tid == id) rec->tags.push_back(t);
    }
    auto m = idx.images.find(id);
    if (m != idx.images.end()) {
      rec->created = m->second.created;
      rec->size = m->second.size;
    } else {
      struct stat st {};
      if (::stat(configPath(id).c_str(), &st) == 0) rec->created = st.st_mtime;
    }
    return rec;
  }

  std::vector<std::string> allIds() const {
    std::vector<std::string> ids;
    glob_t g{};
    std::string pattern = configsDir() + "/*.json";
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::string p = g.gl_pathv[i];
        std::string base = p.substr(p.rfind('/') + 1);
        std::string hex = base.substr(0, base.size() - 5);
        if (hex.size() == 64 && isHex(hex)) ids.push_back(kSha + hex);
      }
    }
    ::globfree(&g);
    return ids;
  }

  // Removes the config and every layer dir no remaining config refers to.
  // Removes the image's config and those of its layers no other image
  // names. Only its own: a layer a build or an import has stored but not yet
  // named in a config (both run beside `image rm`) is not this removal's.
  void deleteImage(const std::string& id) const {
    Index empty;
    auto gone = readImage(id, empty);
    ::unlink(configPath(id).c_str());
    if (!gone.ok()) return;
    std::set<std::string> keep;
    for (const auto& other : allIds()) {
      auto rec = readImage(other, empty);
      if (!rec.ok()) continue;
      for (const auto& l : rec->layers) keep.insert(hexOf(l));
    }
    for (const auto& l : gone->layers) {
      const std::string hex = hexOf(l);
      if (keep.count(hex)) continue;
      imagefs::removeTree(layersDir() + "/" + hex);
      ::unlink(blobPath(hex).c_str());
      log::info("image", "removed layer ", hex.substr(0, 12));
    }
  }

  std::string notFound(const std::string& ref) const {
    std::string name = ref.rfind(kSha, 0) == 0 ? ref : normalizeImageRef(ref);
    return "image " + name + " not found locally; build it with skiff image build";
  }

  // Finds the image id for ref; "" when there is none.
  Result<std::string> findId(const std::string& ref, const Index& idx) const {
    if (ref.empty()) return std::string();
    if (ref.rfind(kSha, 0) != 0) {
      auto t = idx.tags.find(normalizeImageRef(ref));
      if (t != idx.tags.end()) return t->second;
    }
    std::string hex = hexOf(ref);
    if (hex.size() < 4 || !isHex(hex)) return std::string();
    std::string found;
    for (const auto& id : allIds()) {
      if (hexOf(id).compare(0, hex.size(), hex) == 0) {
        if (!found.empty()) return Error::msg("image ID prefix " + ref + " is ambiguous");
        found = id;
      }
    }
    return found;
  }

 private:
  std::string root_;
};

}  // namespace

ImageStore::ImageStore(std::string dataRoot, std::function<bool(const std::string&)> inUse)
    : root_(std::move(dataRoot) + "/images"), inUse_(std::move(inUse)) {}

Result<ImageRecord> ImageStore::resolve(const std::string& ref) const {
  Store s(root_);
  auto idx = s.loadIndex();
  if (!idx.ok()) return idx.error();
  auto id = s.findId(ref, *idx);
  if (!id.ok()) return id.error();
  if (id->empty()) return Error::msg(s.notFound(ref), ENOENT);
  return s.readImage(*id, *idx);
}

std::vector<ImageRecord> ImageStore::list() const {
  Store s(root_);
  std::vector<ImageRecord> out;
  auto idx = s.loadIndex();
  if (!idx.ok()) {
    log::warn("image", idx.error().message);
    return out;
  }
  for (const auto& id : s.allIds()) {
    auto rec = s.readImage(id, *idx);
    if (rec.ok()) out.push_back(std::move(*rec));
  }
  std::sort(out.begin(), out.end(), [](const ImageRecord& a, const ImageRecord& b) {
    return a.created != b.created ? a.created > b.created : a.id < b.id;
  });
  return out;
}

Status ImageStore::tag(const std::string& source, const std::string& target) {
  SKIFF_TRY(validateRef(target));
  auto rec = resolve(source);
  if (!rec.ok()) return rec.error();
  std::lock_guard index(indexMu_);
  Store s(root_);
  auto idx = s.loadIndex();
  if (!idx.ok()) return idx.error();
  idx->tags[normalizeImageRef(target)] = rec->id;
  SKIFF_TRY(s.saveIndex(*idx));
  log::info("image", "tagged ", shortId(rec->id), " as ", normalizeImageRef(target));
  return okStatus();
}

Status ImageStore::remove(const std::string& ref, bool force) {
  std::lock_guard index(indexMu_);
  Store s(root_);
  auto idx = s.loadIndex();
  if (!idx.ok()) return idx.error();
  auto found = s.findId(ref, *idx);
  if (!found.ok()) return found.error();
  if (found->empty()) return Error::msg(s.notFound(ref), ENOENT);
  const std::string id = *found;
  std::vector<std::string> tagsOf;
  for (const auto& [t, tid] : idx->tags) {
    if (tid == id) tagsOf.push_back(t);
  }
  const std::string norm = normalizeImageRef(ref);
  const bool byTag = ref.rfind(kSha, 0) != 0 && idx->tags.count(norm) != 0;
  const bool used = inUse_ && inUse_(id);

  if (byTag && tagsOf.size() > 1) {
    // Other names still point at the image: only the name goes, as docker does.
    idx->tags.erase(norm);
    SKIFF_TRY(s.saveIndex(*idx));
    log::info("image", "untagged ", norm);
    return okStatus();
  }
  if (!byTag && tagsOf.size() > 1 && !force) {
    return Error::msg("conflict: unable to delete " + shortId(id) +
                      " (must be forced) - image is referenced in multiple repositories");
  }
  if (used && !force) {
    return Error::msg("conflict: unable to remove image " + (byTag ? norm : shortId(id)) +
                      " (must force) - image is being used by a service or container");
  }
  for (const auto& t : tagsOf) idx->tags.erase(t);
  if (used) {
    // Forced while in use: running containers keep their lowerdirs, so the
    // files stay as a dangling image that `image rm <id>` removes later.
    SKIFF_TRY(s.saveIndex(*idx));
    log::info("image", "untagged ", shortId(id), " (in use, kept as dangling image)");
    return okStatus();
  }
  idx->images.erase(id);
  // The index goes first: a crash after it leaves only unreferenced files,
  // which the next removal collects.
  SKIFF_TRY(s.saveIndex(*idx));
  s.deleteImage(id);
  log::info("image", "deleted ", id);
  return okStatus();
}

std::vector<std::string> ImageStore::layerDirs(const ImageRecord& image) const {
  std::vector<std::string> dirs;
  for (auto it = image.layers.rbegin(); it != image.layers.rend(); ++it) {
    dirs.push_back(root_ + "/layers/" + hexOf(*it));
  }
  return dirs;
}

Result<ImageRecord> ImageStore::build(const std::string& contextDir, const std::string& tag,
                                      std::vector<std::string>* buildLog) {
  auto out = [&](const std::string& line) {
    if (buildLog != nullptr) buildLog->push_back(line);
  };
  std::string normTag;
  if (!tag.empty()) {
    SKIFF_TRY(validateRef(tag));
    normTag = normalizeImageRef(tag);
  }
  char real[PATH_MAX];
  if (::realpath(contextDir.c_str(), real) == nullptr) {
    return Error::fromErrno("unable to prepare context: path \"" + contextDir + "\" not found");
  }
  const std::string ctx = real;
  auto text = skiff::readFile(ctx + "/Dockerfile");
  if (!text.ok()) {
    return Error::msg("cannot read the Dockerfile in " + contextDir + ": " + text.error().message, text.error().code);
  }
  auto parsed = df::parseDockerfile(*text);
  if (!parsed.ok()) return parsed.error();
  std::string ignoreText;
  if (auto ig = skiff::readFile(ctx + "/.dockerignore"); ig.ok()) ignoreText = std::move(*ig);
  imagefs::IgnoreMatcher ignore(ignoreText);

  std::lock_guard oneBuild(buildMu_);
  Store s(root_);
  SKIFF_TRY(s.ensureDirs());
  static std::atomic<int> buildCounter = 0;
  const std::string work = root_ + "/tmp/build-" + std::to_string(::getpid()) + "-" + std::to_string(++buildCounter);
  imagefs::removeTree(work);
  SKIFF_TRY(imagefs::mkdirs(work, 0700));
  TreeGuard guard(work);

  BuildState st;
  NewLayers newLayers;
  const auto& steps = *parsed;
  int layerNo = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const df::Instruction& ins = steps[i];
    out("Step " + std::to_string(i + 1) + "/" + std::to_string(steps.size()) + " : " + ins.keyword + " " + ins.args);
    const std::string& kw = ins.keyword;
    if (!st.haveFrom && kw != "FROM" && kw != "ARG") {
      return lineError(ins.line, kw + " before FROM: a Dockerfile must start with FROM");
    }
    const df::Vars vars = st.vars();

    if (kw == "FROM") {
      if (st.haveFrom) return lineError(ins.line, "multi-stage builds are not supported (a second FROM)");
      auto words = df::lexWords(ins.args, st.args);
      if (!words.ok()) return lineError(ins.line, words.error().message);
      if (!(words->size() == 1 || (words->size() == 3 && upper((*words)[1]) == "AS"))) {
        return lineError(ins.line, "FROM requires either one or three arguments");
      }
      st.haveFrom = true;
      const std::string& base = (*words)[0];
      if (lower(base) != "scratch") {
        auto parent = resolve(base);
        if (!parent.ok()) return lineError(ins.line, parent.error().message);
        st.config = parent->config;
        st.layers = parent->layers;
        out(" ---> " + shortId(parent->id));
      }
    } else if (kw == "ARG") {
      auto words = df::lexWords(ins.args, vars);
      if (!words.ok()) return lineError(ins.line, words.error().message);
      for (const auto& w : *words) {
        size_t eq = w.find('=');
        if (eq == 0) return lineError(ins.line, "ARG names can not be blank");
        if (eq != std::string::npos) st.args[w.substr(0, eq)] = w.substr(eq + 1);
      }
    } else if (kw == "ENV") {
      auto pairs = parsePairs(ins, vars);
      if (!pairs.ok()) return pairs.error();
      for (const auto& [k, v] : *pairs) setEnv(st.config.env, k, v);
    } else if (kw == "LABEL") {
      auto pairs = parsePairs(ins, vars);
      if (!pairs.ok()) return pairs.error();
      for (const auto& [k, v] : *pairs) st.config.labels[k] = v;
    } else if (kw == "WORKDIR") {
      auto dir = df::lexWord(ins.args, vars);
      if (!dir.ok()) return lineError(ins.line, dir.error().message);
      std::string clean;
      imagefs::cleanRelative(joinAbs(st.config.workingDir, *dir), &clean);
      st.config.workingDir = "/" + clean;
    } else if (kw == "USER") {
      auto user = df::lexWord(ins.args, vars);
      if (!user.ok()) return lineError(ins.line, user.error().message);
      st.config.user = *user;
    } else if (kw == "EXPOSE") {
      auto ports = parseExpose(ins, vars);
      if (!ports.ok()) return ports.error();
      for (const auto& p : *ports) {
        auto& e = st.config.exposedPorts;
        if (std::find(e.begin(), e.end(), p) == e.end()) e.push_back(p);
      }
    } else if (kw == "CMD" || kw == "ENTRYPOINT") {
      // Not substituted: the shell (shell form) or nobody (exec form) sees
      // the text at run time, as in docker.
      std::vector<std::string> argv = ins.json ? *ins.json : std::vector<std::string>{"/bin/sh", "-c", ins.args};
      int shellLine = ins.json ? 0 : ins.line;
      if (kw == "CMD") {
        st.config.cmd = argv;
        st.cmdShellLine = shellLine;
        st.cmdSet = true;
      } else {
        st.config.entrypoint = argv;
        st.entrypointShellLine = shellLine;
        if (!st.cmdSet) {
          // docker: a new ENTRYPOINT drops the CMD inherited from the base.
          st.config.cmd.clear();
          st.cmdShellLine = 0;
        }
      }
    } else if (kw == "COPY" || kw == "ADD") {
      imagefs::CopyOptions opts;
      opts.contextRoot = ctx;
      opts.skip = [&ignore](const std::string& rel) { return ignore.ignored(rel); };
      for (const auto& [name, value] : ins.flags) {
        if (name == "chown") {
          std::string u = value.substr(0, value.find(':'));
          std::string g = value.find(':') == std::string::npos ? u : value.substr(value.find(':') + 1);
          auto id = [](const std::string& x) -> int {
            if (x == "root") return 0;
            if (x.empty() || !std::all_of(x.begin(), x.end(), ::isdigit) || x.size() > 9) return -2;
            return std::atoi(x.c_str());
          };
          opts.uid = id(u);
          opts.gid = id(g);
          if (opts.uid == -2 || opts.gid == -2) {
            out("warning: line " + std::to_string(ins.line) + ": --chown=" + value +
                ": only numeric ids and root are applied; files stay owned by root");
            opts.uid = opts.gid = -1;
          }
        } else if (name == "chmod") {
          char* end = nullptr;
          long m = std::strtol(value.c_str(), &end, 8);
          if (value.empty() || *end != '\0' || m < 0 || m > 07777) {
            return lineError(ins.line, "invalid --chmod=" + value + ": must be octal");
          }
          opts.chmodMode = static_cast<int>(m);
        } else if (name == "from") {
          return lineError(ins.line, kw + " --from is not supported (multi-stage builds are not supported)");
        } else if (name != "link") {
          return lineError(ins.line, "unknown flag: --" + name);
        }
      }
      std::vector<std::string> words;
      if (ins.json) {
        for (const auto& w : *ins.json) {
          auto x = df::lexWord(w, vars);
          if (!x.ok()) return lineError(ins.line, x.error().message);
          words.push_back(*x);
        }
      } else {
        auto x = df::lexWords(ins.args, vars);
        if (!x.ok()) return lineError(ins.line, x.error().message);
        words = std::move(*x);
      }
      if (words.size() < 2) {
        return lineError(ins.line, kw + " requires at least two arguments, but only one was provided. "
                                        "Destination could not be determined.");
      }
      std::string dest = words.back();
      words.pop_back();
      // Expand sources (globs allowed) to absolute paths inside the context.
      std::vector<std::string> sources;
      for (const auto& src : words) {
        if (isRemote(src)) {
          if (kw == "ADD") return lineError(ins.line, "ADD of remote URLs is not supported");
          return lineError(ins.line, "COPY of remote URLs is not supported");
        }
        std::string rel;
        if (!imagefs::cleanRelative(src, &rel)) {
          return lineError(ins.line, kw + " failed: forbidden path outside the build context: " + src);
        }
        std::string path = rel.empty() ? ctx : ctx + "/" + rel;
        if (src.find_first_of("*?[") != std::string::npos) {
          glob_t g{};
          int rc = ::glob(path.c_str(), 0, nullptr, &g);
          size_t before = sources.size();
          if (rc == 0) {
            for (size_t k = 0; k < g.gl_pathc; ++k) {
              std::string m = g.gl_pathv[k];
              if (!ignore.ignored(m.substr(ctx.size() + 1))) sources.push_back(m);
            }
          }
          ::globfree(&g);
          if (sources.size() == before) {
            return lineError(ins.line, kw + " failed: no source files were specified (" + src + ")");
          }
          continue;
        }
        struct stat sst {};
        if (::lstat(path.c_str(), &sst) != 0 || (!rel.empty() && ignore.ignored(rel))) {
          return lineError(ins.line, kw +
                                         " failed: file not found in build context or excluded "
                                         "by .dockerignore: stat " +
                                         src + ": file does not exist");
        }
        sources.push_back(path);
      }
      std::string destRel;
      imagefs::cleanRelative(joinAbs(st.config.workingDir, dest), &destRel);
      // As docker: a destination is a directory when written as one, when
      // several sources go there, or when it already is one in the image.
      bool destIsDir =
          dest.back() == '/' || dest == "." || dest.ends_with("/.") || destRel.empty() || sources.size() > 1;
      for (const auto& dir : layerDirs(ImageRecord{"", {}, st.layers, {}, 0, 0})) {
        if (destIsDir) break;
        InLayer found = lookInLayer(dir, destRel);
        if (found == InLayer::kWhiteout) break;
        if (found == InLayer::kAbsent) continue;
        struct stat dst {};  // the topmost layer that has it decides
        destIsDir = ::stat((dir + "/" + destRel).c_str(), &dst) == 0 && S_ISDIR(dst.st_mode);
        break;
      }
      const std::string layer = work + "/layer-" + std::to_string(++layerNo);
      SKIFF_TRY(imagefs::mkdirs(layer, 0755));
      if (::chmod(layer.c_str(), 0755) != 0) return Error::fromErrno("chmod " + layer);
      for (const auto& src : sources) {
        char rp[PATH_MAX];
        if (::realpath(src.c_str(), rp) == nullptr) {
          return lineError(ins.line, kw + " failed: " + Error::fromErrno("resolve " + src).message);
        }
        std::string resolved = rp;
        if (resolved != ctx && resolved.rfind(ctx + "/", 0) != 0) {
          return lineError(ins.line,
                           kw + " failed: forbidden path outside the build context: " + src.substr(ctx.size()));
        }
        struct stat sst {};
        if (::stat(resolved.c_str(), &sst) != 0) return Error::fromErrno("stat " + resolved);
        std::string target;
        if (S_ISDIR(sst.st_mode)) {
          // A directory source copies its contents, not the directory itself.
          target = destRel.empty() ? layer : layer + "/" + destRel;
          SKIFF_TRY(layerMkdirs(layer, destRel));
        } else {
          std::string fileRel =
              destIsDir ? (destRel.empty() ? "" : destRel + "/") + src.substr(src.rfind('/') + 1) : destRel;
          if (fileRel.empty()) return lineError(ins.line, kw + ": cannot copy a file onto /");
          size_t slash = fileRel.rfind('/');
          SKIFF_TRY(layerMkdirs(layer, slash == std::string::npos ? "" : fileRel.substr(0, slash)));
          target = layer + "/" + fileRel;
        }
        auto copied = imagefs::copyPath(resolved, target, opts);
        if (!copied.ok()) return lineError(ins.line, kw + " failed: " + copied.error().message);
      }
      auto packed = layertar::pack(layer);
      if (!packed.ok()) return packed.error();
      const std::string hex = hexOf(packed->diffId);
      const std::string final = s.layersDir() + "/" + hex;
      struct stat lst {};
      if (::stat(final.c_str(), &lst) == 0) {
        imagefs::removeTree(layer);  // the same content is already stored
      } else {
        SKIFF_TRY(skiff::writeFileAtomic(s.blobPath(hex), packed->blob));
        if (::rename(layer.c_str(), final.c_str()) != 0) return Error::fromErrno("store layer " + final);
        newLayers.add(final);
      }
      st.layers.push_back(packed->diffId);
      out(" ---> layer " + hex.substr(0, 12));
    } else if (kw == "HEALTHCHECK") {
      auto hc = df::parseHealthcheck(ins);
      if (!hc.ok()) return hc.error();
      for (const auto& flag : ins.flags) {
        if (flag.first == "start-interval") {
          out("warning: line " + std::to_string(ins.line) + ": HEALTHCHECK --start-interval is ignored by skiff");
        }
      }
      st.config.healthcheck = std::move(*hc);
      st.healthcheckShellLine = st.config.healthcheck->test[0] == "CMD-SHELL" ? ins.line : 0;
    } else if (df::isIgnoredInstruction(kw)) {
      out("warning: line " + std::to_string(ins.line) + ": " + kw + " is ignored by skiff");
    } else {
      return lineError(ins.line, "unknown instruction: " + kw);
    }
  }
  if (!st.haveFrom) return Error::msg("no FROM instruction in the Dockerfile");

  st.config.hasShell = hasShellIn(layerDirs(ImageRecord{"", {}, st.layers, {}, 0, 0}));
  if (!st.config.hasShell) {
    if (st.entrypointShellLine != 0) {
      return lineError(st.entrypointShellLine,
                       "ENTRYPOINT in shell form needs /bin/sh, which the image does not have; "
                       "use the exec form: ENTRYPOINT [\"/path/to/binary\", \"arg\"]");
    }
    if (st.cmdShellLine != 0) {
      return lineError(st.cmdShellLine,
                       "CMD in shell form needs /bin/sh, which the image does not have; "
                       "use the exec form: CMD [\"/path/to/binary\", \"arg\"]");
    }
    // It would fail every time and keep the replica unhealthy.
    if (st.healthcheckShellLine != 0) {
      return lineError(st.healthcheckShellLine,
                       "HEALTHCHECK in shell form needs /bin/sh, which the image does not have; "
                       "use the exec form: HEALTHCHECK CMD [\"/path/to/binary\", \"arg\"]");
    }
  }

  const std::string configText = configToJson(st.config, st.layers).dump();
  const std::string id = kSha + imagefs::sha256Hex(configText);
  std::lock_guard index(indexMu_);
  // A layer this build found already stored may have gone with an image
  // removed while the build ran (builds run beside the loop in netd).
  for (const auto& layer : st.layers) {
    if (!hasLayer(layer)) return Error::msg("layer " + layer + " was removed during the build; build again", ENOENT);
  }
  struct stat cst {};
  if (::stat(s.configPath(id).c_str(), &cst) != 0) {
    SKIFF_TRY(skiff::writeFileAtomic(s.configPath(id), configText));
  }
  auto idx = s.loadIndex();
  if (!idx.ok()) return idx.error();
  if (!idx->images.count(id)) {
    int64_t size = 0;
    for (const auto& dir : layerDirs(ImageRecord{"", {}, st.layers, {}, 0, 0})) {
      size += imagefs::treeSize(dir);
    }
    idx->images[id] = ImageMeta{static_cast<int64_t>(std::time(nullptr)), size};
  }
  if (!normTag.empty()) idx->tags[normTag] = id;
  SKIFF_TRY(s.saveIndex(*idx));
  newLayers.commit();
  out(" ---> " + shortId(id));
  out("Successfully built " + shortId(id));
  if (!normTag.empty()) out("Successfully tagged " + normTag);
  log::info("image", "built ", shortId(id), normTag.empty() ? "" : " as ", normTag);
  return s.readImage(id, *idx);
}

// Moving images between stores (a worker fetching from the manager): see the
// notes in image.h and runtime/src/layer_archive.h.

namespace {

// Only "sha256:<64 lower-case hex>": the hex becomes a path under layers/,
// and a digest comes from another machine.
bool validDigest(const std::string& digest) {
  return digest.size() == std::string(kSha).size() + 64 && digest.rfind(kSha, 0) == 0 && isHex(hexOf(digest));
}

Error badDigest(const std::string& digest) {
  return Error::msg("invalid layer digest \"" + digest + "\": want sha256:<64 hex digits>", EINVAL);
}

// Removes an import's temp dir when the scope ends (after the rename into
// layers/ there is nothing left to remove).
class ImportGuard {
 public:
  explicit ImportGuard(std::string path) : path_(std::move(path)) {}
  ~ImportGuard() { layertar::removeUnpacked(path_); }
  ImportGuard(const ImportGuard&) = delete;
  ImportGuard& operator=(const ImportGuard&) = delete;

 private:
  std::string path_;
};

}  // namespace

bool ImageStore::hasLayer(const std::string& digest) const {
  if (!validDigest(digest)) return false;
  const std::string dir = Store(root_).layersDir() + "/" + hexOf(digest);
  struct stat st {};
  return ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::string> ImageStore::exportLayer(const std::string& digest) const {
  if (!validDigest(digest)) return badDigest(digest);
  if (!hasLayer(digest)) return Error::msg("layer " + digest + " not found", ENOENT);
  const std::string path = Store(root_).blobPath(hexOf(digest));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error::msg("layer " + digest + " has no archive (it was stored before skiff kept layers as tars): " +
                          "build the image again",
                      ENOENT);
  }
  return skiff::readFile(path);
}

Status ImageStore::importLayer(const std::string& digest, std::string_view archive) {
  if (!validDigest(digest)) return badDigest(digest);
  if (hasLayer(digest)) return okStatus();

  Store s(root_);
  SKIFF_TRY(s.ensureDirs());
  static std::atomic<int> importCounter = 0;
  const std::string work = root_ + "/tmp/import-" + std::to_string(::getpid()) + "-" + std::to_string(++importCounter);
  layertar::removeUnpacked(work);
  ImportGuard guard(work);
  if (::mkdir(work.c_str(), 0755) != 0) return Error::fromErrno("mkdir " + work);
  if (::chmod(work.c_str(), 0755) != 0) return Error::fromErrno("chmod " + work);  // the umask does not apply
  auto got = layertar::unpack(archive, work);
  if (!got.ok()) return Error::msg("layer " + digest + ": " + got.error().message, EINVAL);
  // The diff id is the sha256 of the tar as read: whatever the sender
  // claimed, these are the bytes the files were written from.
  if (*got != digest) return Error::msg("layer digest mismatch: want " + digest + ", got " + *got, EINVAL);
  const std::string hex = hexOf(digest);
  const std::string final = s.layersDir() + "/" + hex;
  SKIFF_TRY(skiff::writeFileAtomic(s.blobPath(hex), archive));
  if (::rename(work.c_str(), final.c_str()) != 0) {
    // Stored meanwhile under the same digest: the same content is there.
    if (errno == EEXIST || errno == ENOTEMPTY) return okStatus();
    return Error::fromErrno("store layer " + final);
  }
  log::info("image", "imported layer ", shortId(digest));
  return okStatus();
}

Result<std::string> ImageStore::exportImageConfig(const std::string& ref) const {
  auto rec = resolve(ref);
  if (!rec.ok()) return rec.error();
  auto text = skiff::readFile(Store(root_).configPath(rec->id));
  if (!text.ok()) return text.error();
  // The receiver refuses bytes that do not hash to the id; say so here first.
  if (kSha + imagefs::sha256Hex(*text) != rec->id) {
    return Error::msg("image config of " + rec->id + " does not match its id (corrupt store)");
  }
  return text;
}

Result<ImageRecord> ImageStore::importImage(std::string_view configBytes, const std::string& tag) {
  std::string normTag;
  if (!tag.empty()) {
    SKIFF_TRY(validateRef(tag));
    normTag = normalizeImageRef(tag);
  }
  const std::string text(configBytes);
  const std::string id = kSha + imagefs::sha256Hex(text);
  auto rec = recordFromJson(id, text);
  if (!rec.ok()) {
    const std::string prefix = "corrupt image config " + id;
    const std::string& why = rec.error().message;
    std::string detail = why.substr(std::min(prefix.size(), why.size()));
    return Error::msg("invalid image config " + id + detail, EINVAL);
  }
  for (const auto& layer : rec->layers) {
    if (!validDigest(layer)) {
      return Error::msg("invalid image config " + id + ": " + badDigest(layer).message, EINVAL);
    }
  }
  for (const auto& layer : rec->layers) {
    if (!hasLayer(layer)) {
      return Error::msg("layer " + layer + " not found (needed by image " + id + ")", ENOENT);
    }
  }

  std::lock_guard index(indexMu_);
  Store s(root_);
  SKIFF_TRY(s.ensureDirs());
  struct stat cst {};
  if (::stat(s.configPath(id).c_str(), &cst) != 0) {
    SKIFF_TRY(skiff::writeFileAtomic(s.configPath(id), text));
  }
  auto idx = s.loadIndex();
  if (!idx.ok()) return idx.error();
  if (!idx->images.count(id)) {
    // The creation time is not in the config (see image.h): an imported
    // image is "created" here when it arrives.
    int64_t size = 0;
    for (const auto& dir : layerDirs(*rec)) size += imagefs::treeSize(dir);
    idx->images[id] = ImageMeta{static_cast<int64_t>(std::time(nullptr)), size};
  }
  if (!normTag.empty()) idx->tags[normTag] = id;
  SKIFF_TRY(s.saveIndex(*idx));
  log::info("image", "imported ", shortId(id), normTag.empty() ? "" : " as ", normTag);
  return s.readImage(id, *idx);
}

}  // namespace skiff::runtime
