// libFuzzer target for the Dockerfile parser and the word lexer: any input
// must give instructions or an error, never a crash, hang or exception.
//   clang++ -std=c++20 -fsanitize=fuzzer,address -Iruntime/include -Icommon/include
//     tests/fuzz/dockerfile_fuzz.cc runtime/src/dockerfile.cc common/src/*.cc
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_describe.h"
#include "skiff/runtime/dockerfile.h"

namespace {

using namespace skiff::runtime::dockerfile;

const Vars& fuzzVars() {
  static const Vars kVars{{"NAME", "World"}, {"EMPTY", ""}};
  return kVars;
}

// A word list as JSON-like text: ["a", "b c"].
std::string quoted(const std::vector<std::string>& words) {
  std::string out = "[";
  for (const auto& w : words) out += (out.size() > 1 ? ", \"" : "\"") + w + "\"";
  return out + "]";
}

}  // namespace

// The instructions a build would apply, one per line with the line it starts
// on, its flags and arguments, the exec/JSON form when there is one, and the
// words the lexer makes of the arguments (NAME=World, EMPTY set, nothing
// else); or the parser's error text.
std::string skiffFuzzDescribe(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parseDockerfile(text);
  if (!parsed.ok()) return "error: " + parsed.error().message + "\n";
  std::string out;
  for (const auto& ins : *parsed) {
    out += "line " + std::to_string(ins.line) + ": " + ins.keyword;
    for (const auto& [flag, value] : ins.flags) out += " --" + flag + "=" + value;
    out += " | " + ins.args + "\n";
    if (ins.json) out += "  json " + quoted(*ins.json) + "\n";
    auto words = lexWords(ins.args, fuzzVars());
    out += words.ok() ? "  words " + quoted(*words) + "\n" : "  words error: " + words.error().message + "\n";
  }
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const Vars& vars = fuzzVars();
  auto parsed = parseDockerfile(text);
  if (parsed.ok()) {
    for (const auto& ins : *parsed) {
      (void)lexWords(ins.args, vars);
      (void)lexWord(ins.args, vars);
    }
  }
  (void)lexWords(text, vars);
  return 0;
}
