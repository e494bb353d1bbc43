#pragma once
// What a fuzz target's parser made of one input, as text: the known answer a
// seed is checked against (tests/fuzz/expected/<target>/<seed>.txt) when
// replay_main.cc replays it, so a parse that does not crash but is wrong
// still fails. Each fuzz target defines it next to LLVMFuzzerTestOneInput;
// under libFuzzer (SKIFF_FUZZ=ON) it is compiled but unused.
#include <cstddef>
#include <cstdint>
#include <string>

std::string skiffFuzzDescribe(const uint8_t* data, size_t size);
