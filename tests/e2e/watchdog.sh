#!/usr/bin/env bash
# The e2e watchdog: removes a test's lab when the test dies without running
# its EXIT trap (ctest SIGKILLs a test that times out). Started by
# e2e_watchdog (lib.sh) in a session of its own and outside the test's process
# tree (ctest kills the tree), it
#   1. takes the lab's lock, LOCKS/LOCK.lock, and holds it while it lives: a
#      later test of the same lab (the scripts/lab lab is one per machine)
#      waits until an earlier test's watchdog has finished its cleanup;
#   2. writes its pid to GUARD (the test waits for that file: it is armed);
#   3. polls once a second until TEST_PID is gone (the pid and its start
#      time, so a reused pid does not count), at most MAX_SECONDS;
#   4. if GUARD still exists (the test's EXIT trap removes it once it has
#      cleaned up itself), runs CLEANUP... and removes GUARD.
#
# usage: watchdog.sh TEST_PID TEST_START LOCK GUARD MAX_SECONDS CLEANUP...
set -u
test_pid="$1" test_start="$2" lock="$3" guard="$4" max="$5"
shift 5
LOCKS=/run/skiff-e2e

starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
test_alive() { [ "$(starttime "$test_pid")" = "$test_start" ]; }
log() { echo "$(date -u +%FT%TZ) watchdog $$ (test $test_pid, lab $lock): $*"; }

mkdir -p "$LOCKS"
exec 9>"$LOCKS/$lock.lock"
# An earlier watchdog of the same lab may be cleaning up (at most ~2 min).
if ! flock -w 300 9; then
  log "the lock of the lab stayed taken for 300 s; giving up"
  exit 1
fi
echo $$ >"$guard.tmp" && mv "$guard.tmp" "$guard"
log "armed"
for _ in $(seq 1 "$max"); do
  test_alive || break
  sleep 1 9>&-
done
if test_alive; then
  log "the test still runs after $max s; leaving its lab to it"
  exit 0
fi
if [ -e "$guard" ]; then
  log "the test is gone without cleaning up: $*"
  "$@"
  log "cleanup exited $?"
  rm -f "$guard"
fi
# A lock of that run alone (its name ends in the test's pid) goes too.
[[ "$lock" != *"-$test_pid" ]] || rm -f "$LOCKS/$lock.lock"
exit 0
