// Signals a long-running command turns into a flag it checks between
// requests (stats' Ctrl-C ends it; an attached run's stops its container).
// System calls restart, so a request in flight completes; the previous
// dispositions come back when the flag goes out of scope.
#pragma once

#include <signal.h>

#include <csignal>
#include <initializer_list>
#include <vector>

namespace skiff::cli {

class InterruptFlag {
 public:
  explicit InterruptFlag(std::initializer_list<int> signals = {SIGINT}) {
    count_ = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { count_ = count_ + 1; };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : signals) {
      struct sigaction old {};
      if (::sigaction(sig, &sa, &old) == 0) old_.push_back({sig, old});
    }
  }
  ~InterruptFlag() {
    for (const auto& [sig, old] : old_) ::sigaction(sig, &old, nullptr);
  }
  InterruptFlag(const InterruptFlag&) = delete;
  InterruptFlag& operator=(const InterruptFlag&) = delete;

  // How many of the signals arrived since the flag was made.
  int count() const { return count_; }

 private:
  struct Saved {
    int sig;
    struct sigaction old;
  };
  static inline volatile std::sig_atomic_t count_ = 0;
  std::vector<Saved> old_;
};

}  // namespace skiff::cli
