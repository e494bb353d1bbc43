#pragma once
// Helpers for integration tests (see netns_main.cc).

#include <gtest/gtest.h>

namespace skiff::testing {

// True when this process runs in its own network + mount namespace.
bool isolated();

}  // namespace skiff::testing

// Skips the current test unless it runs as root in its own namespaces.
#define SKIFF_REQUIRE_ISOLATED()                                                 \
  do {                                                                           \
    if (!::skiff::testing::isolated()) GTEST_SKIP() << "needs root (own netns)"; \
  } while (0)
