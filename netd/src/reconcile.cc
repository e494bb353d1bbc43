#include "skiff/netd/reconcile.h"

#include <algorithm>
#include <map>
#include <set>

namespace skiff::netd {

Plan planService(uint64_t desiredReplicas, uint64_t specVersion, const std::vector<LiveTask>& live,
                 const std::vector<uint64_t>& pendingSlots, bool keepOutdated) {
  Plan plan;
  // The task kept for each slot: the current-spec one if any.
  std::map<uint64_t, const LiveTask*> keep;
  std::set<uint64_t> heldByUpdate;
  std::vector<const LiveTask*> extra;
  for (const LiveTask& t : live) {
    if (t.stopping) continue;
    if (keepOutdated && t.slot != 0 && t.slot <= desiredReplicas && t.specVersion != specVersion) {
      heldByUpdate.insert(t.slot);
      continue;
    }
    if (t.slot == 0 || t.slot > desiredReplicas || t.specVersion != specVersion) {
      extra.push_back(&t);
      continue;
    }
    auto [it, inserted] = keep.emplace(t.slot, &t);
    if (!inserted) extra.push_back(&t);  // two live tasks in one slot: keep the first
  }
  std::set<uint64_t> pending(pendingSlots.begin(), pendingSlots.end());
  for (uint64_t slot = 1; slot <= desiredReplicas; slot++) {
    if (!keep.count(slot) && !pending.count(slot) && !heldByUpdate.count(slot)) plan.startSlots.push_back(slot);
  }
  std::sort(extra.begin(), extra.end(), [](const LiveTask* a, const LiveTask* b) {
    return a->slot != b->slot ? a->slot > b->slot : a->id > b->id;
  });
  for (const LiveTask* t : extra) plan.stopTaskIds.push_back(t->id);
  return plan;
}

}  // namespace skiff::netd
