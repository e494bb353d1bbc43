// libFuzzer target for the compose parser: any input must end in a result or
// a ComposeError (or std::exception from a conversion), never a crash, hang
// or sanitizer report. Variables are fixed so interpolation paths are hit.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <string>

#include "skiff/runtime/compose.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::map<std::string, std::string> kEnv = {{"TAG", "1.0"}, {"EMPTY", ""}, {"HOME", "/root"}};
  std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    // A base dir that does not exist keeps `configs: file:` from reading the
    // fuzzing host's files.
    auto result = skiff::runtime::parseComposeString(yaml, "fuzz.yml", "/nonexistent-skiff-fuzz", kEnv);
    // What parses must also print and round-trip.
    auto json = skiff::runtime::toJson(result.stack);
    if (!(skiff::runtime::stackFromJson(json) == result.stack)) __builtin_trap();
    (void)skiff::runtime::toYaml(result.stack);
  } catch (const skiff::runtime::ComposeError&) {
  } catch (const std::exception&) {
  }
  return 0;
}
