// libFuzzer target for the compose parser: any input must end in a result or
// a ComposeError (or std::exception from a conversion), never a crash, hang
// or sanitizer report. Variables are fixed so interpolation paths are hit.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_describe.h"
#include "skiff/runtime/compose.h"

namespace {

const std::map<std::string, std::string>& fuzzEnv() {
  static const std::map<std::string, std::string> kEnv = {{"TAG", "1.0"}, {"EMPTY", ""}, {"HOME", "/root"}};
  return kEnv;
}

// A base dir that does not exist keeps `configs: file:` from reading the
// fuzzing host's files.
skiff::runtime::ComposeResult parse(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  return skiff::runtime::parseComposeString(yaml, "fuzz.yml", "/nonexistent-skiff-fuzz", fuzzEnv());
}

// " a b c": each item after a space, nothing for none.
template <typename Range>
std::string joined(const Range& items) {
  std::string out;
  for (const auto& item : items) out += " " + item;
  return out;
}

}  // namespace

// The parse a user would check with `skiff stack config`: each service's
// image, mode, replicas, ports (published:target/protocol mode) and
// networks; the stack's networks, volumes and configs; the warnings. Or the
// error text.
std::string skiffFuzzDescribe(const uint8_t* data, size_t size) {
  std::ostringstream out;
  try {
    auto result = parse(data, size);
    const auto& stack = result.stack;
    for (const auto& [name, s] : stack.services) {
      out << "service " << name << ": image " << s.image << ", " << skiff::runtime::toString(s.mode);
      if (s.mode == skiff::runtime::ServiceMode::kReplicated) out << " x" << s.replicas;
      out << "\n";
      for (const auto& p : s.ports) {
        out << "  port " << p.published << ":" << p.target << "/" << skiff::runtime::toString(p.protocol) << " "
            << skiff::runtime::toString(p.mode);
        if (!p.hostIp.empty()) out << " on " << p.hostIp;
        out << "\n";
      }
      for (const auto& n : s.networks) {
        out << "  network " << n.name;
        if (!n.aliases.empty()) out << " aliases" << joined(n.aliases);
        out << "\n";
      }
    }
    std::vector<std::string> names;
    for (const auto& [name, n] : stack.networks) names.push_back(name + (n.external ? " (external)" : ""));
    out << "networks:" << joined(names) << "\n";
    names.clear();
    for (const auto& [name, v] : stack.volumes) names.push_back(name);
    out << "volumes:" << joined(names) << "\n";
    names.clear();
    for (const auto& [name, c] : stack.configs) names.push_back(name);
    out << "configs:" << joined(names) << "\n";
    for (const auto& w : result.warnings) out << "warning: " << w << "\n";
  } catch (const skiff::runtime::ComposeError& e) {
    out << "error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    out << "exception: " << e.what() << "\n";
  }
  return out.str();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto result = parse(data, size);
    // What parses must also print and round-trip.
    auto json = skiff::runtime::toJson(result.stack);
    if (!(skiff::runtime::stackFromJson(json) == result.stack)) __builtin_trap();
    (void)skiff::runtime::toYaml(result.stack);
  } catch (const skiff::runtime::ComposeError&) {
  } catch (const std::exception&) {
  }
  return 0;
}
