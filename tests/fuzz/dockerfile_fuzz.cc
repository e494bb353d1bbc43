// libFuzzer target for the Dockerfile parser and the word lexer: any input
// must give instructions or an error, never a crash, hang or exception.
//   clang++ -std=c++20 -fsanitize=fuzzer,address -Iruntime/include -Icommon/include
//     tests/fuzz/dockerfile_fuzz.cc runtime/src/dockerfile.cc common/src/*.cc
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "skiff/runtime/dockerfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff::runtime::dockerfile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const Vars vars{{"NAME", "World"}, {"EMPTY", ""}};
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
