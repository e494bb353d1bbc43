#pragma once
// Pure reconciliation logic: given what a service should run (desired
// replicas and the spec version) and what runs now (its live tasks), decide
// which slots to start and which tasks to stop. No kernel, no loop: the
// orchestrator feeds it and carries the plan out, so the rules (scale down
// from the highest slot, replace tasks of an outdated spec, leave matching
// tasks untouched) are unit-tested on their own.

#include <cstdint>
#include <string>
#include <vector>

namespace skiff::netd {

struct LiveTask {
  std::string id;
  uint64_t slot = 0;
  uint64_t specVersion = 0;
  bool stopping = false;  // already asked to stop: neither counted nor stopped again
};

struct Plan {
  std::vector<uint64_t> startSlots;      // slots that need a new task, ascending
  std::vector<std::string> stopTaskIds;  // tasks to stop, highest slot first
};

// `pendingSlots`: slots waiting on a restart delay; they count as occupied so
// a restart is not doubled by a reconcile that runs meanwhile.
// `keepOutdated`: a rolling update owns the slots that still run an older
// spec (update.h): their tasks keep the slot and are not stopped here.
Plan planService(uint64_t desiredReplicas, uint64_t specVersion, const std::vector<LiveTask>& live,
                 const std::vector<uint64_t>& pendingSlots, bool keepOutdated = false);

}  // namespace skiff::netd
