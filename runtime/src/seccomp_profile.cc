// Seccomp profiles in Docker's JSON format: parsing and Docker's filtering
// by caps/arches/kernel (pure). See seccomp.h for the design note.

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "skiff/runtime/seccomp.h"
#include "skiff_default_seccomp_profile.h"

namespace skiff::runtime {
namespace {

using nlohmann::json;

// Every error of a parse is thrown as ProfileError and turned into a Result
// at the one entry point: a profile is input, so this is the parser's
// exception, never one that leaves this file.
struct ProfileError {
  std::string message;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ProfileError{(path.empty() ? "" : path + ": ") + what};
}

std::string typeName(const json& j) { return j.type_name(); }

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string stringAt(const json& j, const std::string& path) {
  if (!j.is_string()) fail(path, "expected a string, got " + typeName(j));
  return j.get<std::string>();
}

uint64_t unsignedAt(const json& j, const std::string& path, uint64_t max) {
  if (!j.is_number_integer() && !j.is_number_unsigned())
    fail(path, "expected a non-negative integer, got " + typeName(j));
  if (j.is_number_integer() && !j.is_number_unsigned() && j.get<int64_t>() < 0)
    fail(path, "expected a non-negative integer, got " + j.dump());
  const uint64_t v = j.get<uint64_t>();
  if (v > max) fail(path, j.dump() + " is out of range (at most " + std::to_string(max) + ")");
  return v;
}

std::vector<std::string> stringsAt(const json& j, const std::string& path) {
  if (!j.is_array()) fail(path, "expected a list of strings, got " + typeName(j));
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(stringAt(j[i], path + "[" + std::to_string(i) + "]"));
  return out;
}

struct ActionName {
  const char* name;
  SeccompAction action;
};
constexpr ActionName kActions[] = {{"SCMP_ACT_ALLOW", SeccompAction::kAllow},
                                   {"SCMP_ACT_ERRNO", SeccompAction::kErrno},
                                   {"SCMP_ACT_KILL", SeccompAction::kKillThread},
                                   {"SCMP_ACT_KILL_THREAD", SeccompAction::kKillThread},
                                   {"SCMP_ACT_KILL_PROCESS", SeccompAction::kKillProcess},
                                   {"SCMP_ACT_TRAP", SeccompAction::kTrap},
                                   {"SCMP_ACT_TRACE", SeccompAction::kTrace},
                                   {"SCMP_ACT_LOG", SeccompAction::kLog}};

struct OpName {
  const char* name;
  SeccompOp op;
};
constexpr OpName kOps[] = {{"SCMP_CMP_NE", SeccompOp::kNotEqual},          {"SCMP_CMP_LT", SeccompOp::kLess},
                           {"SCMP_CMP_LE", SeccompOp::kLessEqual},         {"SCMP_CMP_EQ", SeccompOp::kEqual},
                           {"SCMP_CMP_GE", SeccompOp::kGreaterEqual},      {"SCMP_CMP_GT", SeccompOp::kGreater},
                           {"SCMP_CMP_MASKED_EQ", SeccompOp::kMaskedEqual}};

SeccompAction actionAt(const json& j, const std::string& path) {
  const std::string name = stringAt(j, path);
  for (const auto& a : kActions) {
    if (name == a.name) return a.action;
  }
  // SCMP_ACT_NOTIFY needs a listener (a seccomp agent); skiff has none.
  fail(path, "unknown action \"" + name + "\"");
}

SeccompOp opAt(const json& j, const std::string& path) {
  const std::string name = stringAt(j, path);
  for (const auto& o : kOps) {
    if (name == o.name) return o.op;
  }
  fail(path, "unknown operator \"" + name + "\"");
}

// Docker's KernelVersion unmarshals from "5.8" (kernel.major only).
KernelVersion minKernelAt(const json& j, const std::string& path) {
  const std::string text = stringAt(j, path);
  auto v = parseKernelRelease(text);
  if (!v.ok() || text.find_first_not_of("0123456789.") != std::string::npos ||
      std::count(text.begin(), text.end(), '.') != 1) {
    fail(path, "invalid kernel version \"" + text + "\" (expected <kernel>.<major>, e.g. \"4.8\")");
  }
  return *v;
}

SeccompFilterCondition conditionAt(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  SeccompFilterCondition c;
  if (const json* v = member(j, "caps")) c.caps = stringsAt(*v, path + ".caps");
  if (const json* v = member(j, "arches")) c.arches = stringsAt(*v, path + ".arches");
  if (const json* v = member(j, "minKernel")) c.minKernel = minKernelAt(*v, path + ".minKernel");
  return c;
}

SeccompArg argAt(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  SeccompArg a;
  const json* index = member(j, "index");
  if (!index) fail(path, "missing \"index\"");
  a.index = static_cast<unsigned>(unsignedAt(*index, path + ".index", 5));
  if (const json* v = member(j, "value"))
    a.value = unsignedAt(*v, path + ".value", std::numeric_limits<uint64_t>::max());
  if (const json* v = member(j, "valueTwo"))
    a.valueTwo = unsignedAt(*v, path + ".valueTwo", std::numeric_limits<uint64_t>::max());
  const json* op = member(j, "op");
  if (!op) fail(path, "missing \"op\"");
  a.op = opAt(*op, path + ".op");
  return a;
}

SeccompSyscallBlock blockAt(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object, got " + typeName(j));
  SeccompSyscallBlock b;
  const json* name = member(j, "name");
  const json* names = member(j, "names");
  if (name && names && !names->empty())
    fail(path, "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'");
  if (name) b.names = {stringAt(*name, path + ".name")};
  if (names) b.names = stringsAt(*names, path + ".names");
  if (b.names.empty()) fail(path, "no syscall names (\"names\": [...])");
  for (size_t i = 0; i < b.names.size(); ++i) {
    if (b.names[i].empty()) fail(path + ".names[" + std::to_string(i) + "]", "empty syscall name");
  }
  const json* action = member(j, "action");
  if (!action) fail(path, "missing \"action\"");
  b.action = actionAt(*action, path + ".action");
  if (const json* v = member(j, "errnoRet"))
    b.errnoRet = static_cast<uint32_t>(unsignedAt(*v, path + ".errnoRet", 4095));
  if (const json* v = member(j, "args")) {
    if (!v->is_array()) fail(path + ".args", "expected a list, got " + typeName(*v));
    for (size_t i = 0; i < v->size(); ++i) b.args.push_back(argAt((*v)[i], path + ".args[" + std::to_string(i) + "]"));
  }
  if (const json* v = member(j, "includes")) b.includes = conditionAt(*v, path + ".includes");
  if (const json* v = member(j, "excludes")) b.excludes = conditionAt(*v, path + ".excludes");
  return b;
}

SeccompProfile profileAt(const json& j) {
  if (!j.is_object()) fail("", "a seccomp profile is a JSON object, got " + typeName(j));
  SeccompProfile p;
  const json* action = member(j, "defaultAction");
  if (!action) fail("", "missing \"defaultAction\"");
  p.defaultAction = actionAt(*action, "defaultAction");
  if (const json* v = member(j, "defaultErrnoRet"))
    p.defaultErrnoRet = static_cast<uint32_t>(unsignedAt(*v, "defaultErrnoRet", 4095));
  if (const json* v = member(j, "architectures")) p.architectures = stringsAt(*v, "architectures");
  if (const json* v = member(j, "archMap")) {
    if (!v->is_array()) fail("archMap", "expected a list, got " + typeName(*v));
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string path = "archMap[" + std::to_string(i) + "]";
      const json& e = (*v)[i];
      if (!e.is_object()) fail(path, "expected an object, got " + typeName(e));
      SeccompArchMapEntry entry;
      const json* arch = member(e, "architecture");
      if (!arch) fail(path, "missing \"architecture\"");
      entry.architecture = stringAt(*arch, path + ".architecture");
      if (const json* sub = member(e, "subArchitectures"))
        entry.subArchitectures = stringsAt(*sub, path + ".subArchitectures");
      p.archMap.push_back(std::move(entry));
    }
  }
  if (const json* v = member(j, "syscalls")) {
    if (!v->is_array()) fail("syscalls", "expected a list, got " + typeName(*v));
    for (size_t i = 0; i < v->size(); ++i)
      p.syscalls.push_back(blockAt((*v)[i], "syscalls[" + std::to_string(i) + "]"));
  }
  return p;
}

bool contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool atLeast(const KernelVersion& have, const KernelVersion& want) {
  return have.kernel > want.kernel || (have.kernel == want.kernel && have.major >= want.major);
}

// Go's GOARCH -> libseccomp's architecture, as Docker's goToNative and
// nativeToSeccomp maps compose them.
std::string seccompArchOf(const std::string& goArch) {
  static const std::pair<const char*, const char*> kArches[] = {
      {"386", "SCMP_ARCH_X86"},           {"amd64", "SCMP_ARCH_X86_64"},
      {"arm", "SCMP_ARCH_ARM"},           {"arm64", "SCMP_ARCH_AARCH64"},
      {"mips64", "SCMP_ARCH_MIPS64"},     {"mips64p32", "SCMP_ARCH_MIPS64N32"},
      {"mips64le", "SCMP_ARCH_MIPSEL64"}, {"mips64p32le", "SCMP_ARCH_MIPSEL64N32"},
      {"mipsle", "SCMP_ARCH_MIPSEL"},     {"ppc", "SCMP_ARCH_PPC"},
      {"ppc64", "SCMP_ARCH_PPC64"},       {"ppc64le", "SCMP_ARCH_PPC64LE"},
      {"s390", "SCMP_ARCH_S390"},         {"s390x", "SCMP_ARCH_S390X"}};
  for (const auto& [go, scmp] : kArches) {
    if (goArch == go) return scmp;
  }
  return "";
}

// Docker matches `arches` against libseccomp's short name of GOARCH
// ("386" is "x86" there, "mips64le" is "mipsel64").
std::string nativeArchName(const std::string& goArch) {
  static const std::pair<const char*, const char*> kNames[] = {{"386", "x86"},
                                                               {"mips64p32", "mips64n32"},
                                                               {"mips64le", "mipsel64"},
                                                               {"mips64p32le", "mips3l64n32"},
                                                               {"mipsle", "mipsel"}};
  for (const auto& [go, native] : kNames) {
    if (goArch == go) return native;
  }
  return goArch;
}

bool excluded(const SeccompFilterCondition& c, const SeccompContext& ctx, const std::string& arch) {
  if (contains(c.arches, arch)) return true;
  for (const auto& cap : c.caps) {
    if (ctx.capabilities.count(cap)) return true;
  }
  return c.minKernel && atLeast(ctx.kernel, *c.minKernel);
}

bool included(const SeccompFilterCondition& c, const SeccompContext& ctx, const std::string& arch) {
  if (!c.arches.empty() && !contains(c.arches, arch)) return false;
  for (const auto& cap : c.caps) {
    if (!ctx.capabilities.count(cap)) return false;
  }
  return !c.minKernel || atLeast(ctx.kernel, *c.minKernel);
}

}  // namespace

const char* toString(SeccompAction action) {
  for (const auto& a : kActions) {
    // SCMP_ACT_KILL is the older name of SCMP_ACT_KILL_THREAD: print the newer.
    if (a.action == action && std::string_view(a.name) != "SCMP_ACT_KILL") return a.name;
  }
  return "?";
}

const char* toString(SeccompOp op) {
  for (const auto& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

Result<KernelVersion> parseKernelRelease(std::string_view release) {
  KernelVersion v;
  const char* p = release.data();
  const char* end = release.data() + release.size();
  auto r1 = std::from_chars(p, end, v.kernel);
  if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != '.')
    return Error::msg("failed to parse kernel version \"" + std::string(release) + "\"", EINVAL);
  auto r2 = std::from_chars(r1.ptr + 1, end, v.major);
  if (r2.ec != std::errc())
    return Error::msg("failed to parse kernel version \"" + std::string(release) + "\"", EINVAL);
  return v;
}

Result<SeccompProfile> parseSeccompProfile(std::string_view text) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // nlohmann's text starts with "[json.exception.parse_error.101] parse error at line 1, ...".
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    return Error::msg("invalid JSON: " + what, EINVAL);
  }
  try {
    return profileAt(j);
  } catch (const ProfileError& e) {
    return Error::msg(e.message, EINVAL);
  }
}

std::string_view defaultSeccompProfileJson() {
  return {detail::kDefaultSeccompProfileJson, sizeof detail::kDefaultSeccompProfileJson - 1};
}

Result<SeccompFilterPlan> planSeccompFilter(const SeccompProfile& profile, const SeccompContext& context) {
  if (!profile.architectures.empty() && !profile.archMap.empty()) {
    return Error::msg(
        "'architectures' and 'archMap' were specified in the seccomp profile, use either "
        "'architectures' or 'archMap'",
        EINVAL);
  }
  SeccompFilterPlan plan;
  plan.defaultAction = profile.defaultAction;
  // SCMP_ACT_ERRNO without a number is EPERM, as runc makes it.
  plan.defaultErrnoRet = profile.defaultErrnoRet.value_or(profile.defaultAction == SeccompAction::kErrno ? EPERM : 0);
  plan.architectures = profile.architectures;
  const std::string native = seccompArchOf(context.goArch);
  for (const auto& entry : profile.archMap) {
    if (!native.empty() && entry.architecture == native) {
      plan.architectures.push_back(entry.architecture);
      plan.architectures.insert(plan.architectures.end(), entry.subArchitectures.begin(), entry.subArchitectures.end());
      break;
    }
  }
  const std::string arch = nativeArchName(context.goArch);
  for (const auto& block : profile.syscalls) {
    if (excluded(block.excludes, context, arch) || !included(block.includes, context, arch)) continue;
    SeccompRule rule;
    rule.names = block.names;
    rule.action = block.action;
    rule.errnoRet = block.errnoRet.value_or(block.action == SeccompAction::kErrno ? EPERM : 0);
    rule.args = block.args;
    plan.rules.push_back(std::move(rule));
  }
  return plan;
}

const char* toString(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::kDefault:
      return "default";
    case SeccompMode::kUnconfined:
      return "unconfined";
    case SeccompMode::kProfile:
      return "profile";
  }
  return "default";
}

std::optional<SeccompMode> seccompModeFromString(std::string_view text) {
  for (auto mode : {SeccompMode::kDefault, SeccompMode::kUnconfined, SeccompMode::kProfile}) {
    if (text == toString(mode)) return mode;
  }
  return std::nullopt;
}

SeccompMode seccompModeOf(std::string_view serviceSeccomp) {
  if (serviceSeccomp.empty()) return SeccompMode::kDefault;
  if (serviceSeccomp == "unconfined") return SeccompMode::kUnconfined;
  return SeccompMode::kProfile;
}

std::vector<std::string> securityOptOf(SeccompMode mode, std::string_view profileJson) {
  switch (mode) {
    case SeccompMode::kDefault:
      return {};
    case SeccompMode::kUnconfined:
      return {"seccomp=unconfined"};
    case SeccompMode::kProfile:
      return {"seccomp=" + std::string(profileJson)};
  }
  return {};
}

std::pair<SeccompMode, std::string> seccompFromSecurityOpt(const std::vector<std::string>& opts) {
  std::pair<SeccompMode, std::string> out{SeccompMode::kDefault, ""};
  for (const auto& opt : opts) {
    if (opt.rfind("seccomp=", 0) != 0) continue;
    const std::string value = opt.substr(8);
    if (value == "unconfined") {
      out = {SeccompMode::kUnconfined, ""};
    } else if (!value.empty()) {
      out = {SeccompMode::kProfile, value};
    }
  }
  return out;
}

Result<SeccompFilterPlan> planSeccompFilter(std::string_view json, const SeccompContext& context) {
  auto profile = parseSeccompProfile(json);
  if (!profile.ok()) return profile.error();
  return planSeccompFilter(*profile, context);
}

}  // namespace skiff::runtime
