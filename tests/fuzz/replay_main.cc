// Replays inputs through a libFuzzer target without libFuzzer: the normal
// (gcc) build compiles every fuzz target with this main and CTest feeds it
// the seed files, so the targets keep compiling and the seeds keep passing.
// Real fuzzing: configure with clang and -DSKIFF_FUZZ=ON.
//
//   replay [SEED]... [--expect SEED ANSWER]... [--print SEED]...
//
// SEED alone is replayed through LLVMFuzzerTestOneInput (a crash or trap
// fails). --expect also compares what the parser made of SEED
// (skiffFuzzDescribe, see fuzz_describe.h) with the text of the file ANSWER,
// so a crash-free but wrong parse fails too; a mismatch prints both and the
// exit status is 1. --print shows that text for a new seed: write its answer
// from what the seed says, then compare, rather than copying the output.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "fuzz_describe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::optional<std::string> slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const uint8_t* bytesOf(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

int main(int argc, char** argv) {
  int replayed = 0, checked = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    const bool expect = std::strcmp(argv[i], "--expect") == 0;
    const bool print = std::strcmp(argv[i], "--print") == 0;
    if ((expect && i + 2 >= argc) || (print && i + 1 >= argc)) {
      std::fprintf(stderr, "usage: %s [SEED]... [--expect SEED ANSWER]... [--print SEED]...\n", argv[0]);
      return 2;
    }
    const char* seedPath = expect || print ? argv[++i] : argv[i];
    const char* answerPath = expect ? argv[++i] : nullptr;
    auto seed = slurp(seedPath);
    if (!seed) {
      std::fprintf(stderr, "cannot read %s\n", seedPath);
      return 1;
    }
    if (print) {
      std::fputs(skiffFuzzDescribe(bytesOf(*seed), seed->size()).c_str(), stdout);
      continue;
    }
    LLVMFuzzerTestOneInput(bytesOf(*seed), seed->size());
    ++replayed;
    std::printf("replayed %s (%zu bytes)\n", seedPath, seed->size());
    if (!expect) continue;
    auto answer = slurp(answerPath);
    const std::string got = skiffFuzzDescribe(bytesOf(*seed), seed->size());
    ++checked;
    if (!answer) {
      ++failed;
      std::printf("FAIL %s has no known answer %s: write what the parser must make of it; it makes\n%s---\n", seedPath,
                  answerPath, got.c_str());
    } else if (got == *answer) {
      std::printf("checked %s against %s\n", seedPath, answerPath);
    } else {
      ++failed;
      std::printf("FAIL %s: the parse differs from %s\n--- expected\n%s--- got\n%s---\n", seedPath, answerPath,
                  answer->c_str(), got.c_str());
    }
  }
  std::printf("%d replayed, %d checked against known answers, %d wrong\n", replayed, checked, failed);
  return failed == 0 ? 0 : 1;
}
