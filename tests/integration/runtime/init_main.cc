// Stands in for netd's main() in integration tests: the launcher execs this
// binary as `__skiff-init`, exactly as it would exec netd.
#include <cstdio>

#include "skiff/runtime/container.h"

int main(int argc, char** argv) {
  if (skiff::runtime::maybeRunContainerInit(argc, argv)) return 0;
  std::fprintf(stderr, "usage: %s __skiff-init SPEC_FD ERROR_FD\n", argv[0]);
  return 2;
}
