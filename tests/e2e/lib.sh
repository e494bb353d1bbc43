# shellcheck shell=bash
# Shared by the e2e scripts (sourced after `set -Eeuo pipefail`):
#   - every failure prints one `FAIL: <which check>` line: check/require/
#     expect_refused name the check; a command that fails outside them (a
#     command substitution under set -e, say) is named by the ERR trap with
#     its file, line and exit status; a script that ends non-zero without
#     any FAIL line says so in its EXIT trap (e2e_finish);
#   - a watchdog that removes the lab when the script is SIGKILLed (ctest
#     does that on a timeout, and then no EXIT trap runs): e2e_watchdog.
#   - the seed stack's helpers (container_pid, replicas_are, answered).
#
# Uses: E2E_DIR (this folder), failures (the count of failed checks); the
# seed stack's helpers use SKIFF_BIN and lab_exec (scripts/lib/lab.sh).

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_LOCKS=/run/skiff-e2e
failures=0
e2e_reported=0  # FAIL lines printed, whatever printed them

pass() { printf '  ok    %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
  e2e_reported=$((e2e_reported + 1))
}
fatal() {
  fail "$*"
  exit 1
}
check() {  # check "description" command...
  local what="$1"
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# require "description" command...: a check the rest of the script cannot do
# without; the script ends (through its EXIT trap) when it fails.
require() {
  local what="$1"
  shift
  if "$@"; then pass "$what"; else fatal "$what (required by the checks after it)"; fi
}
# wait_for SECONDS command...: polls (every 0.2 s) until the command succeeds;
# non-zero if it never did. Use it under check/require, never with `|| true`.
wait_for() {
  local secs="$1"
  shift
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
# expect_refused [-F] "description" PATTERN command...: the command exits
# non-zero AND its output (stdout and stderr) matches PATTERN (grep -E, or
# a fixed string with -F). Both are what a user (or a script) relies on.
expect_refused() {
  local mode=-E
  if [ "$1" = -F ]; then
    mode=-F
    shift
  fi
  local what="$1" pattern="$2"
  shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    fail "$what: exited 0, want non-zero; it said: $(head -c 400 <<<"$out")"
  elif ! grep -q "$mode" -- "$pattern" <<<"$out"; then
    fail "$what: exited $rc but its output lacks '$pattern'; it said: $(head -c 400 <<<"$out")"
  else
    pass "$what (exit $rc)"
  fi
}

# The seed stack (examples/getstartedlab: service getstartedlab_web, port
# 4000) as the e2e scripts check it through the CLI.
# container_pid ID: the host pid of the replica's main process.
container_pid() { "$SKIFF_BIN/skiff" container inspect --format '{{.State.Pid}}' "$1"; }
# replicas_are N/M: service ls shows getstartedlab_web with N/M replicas.
replicas_are() { "$SKIFF_BIN/skiff" service ls --format '{{.Name}} {{.Replicas}}' | grep -qx "getstartedlab_web $1"; }
# answered N: how many of N requests to port 4000 got an answer (each its
# own curl, so each its own connection through the routing mesh).
answered() {
  local n=0 _
  for _ in $(seq 1 "$1"); do
    lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/ >/dev/null && n=$((n + 1))
  done
  echo "$n"
}

# The ERR trap: a command that fails outside a check ends the script under
# set -e; this names it. Subshells (command substitutions) stay silent: the
# command in the script that used them fails in turn and is named.
e2e_on_err() {
  local rc="$1" line="$2" cmd="$3"
  [ "$BASHPID" = "$$" ] || return 0
  fail "${BASH_SOURCE[1]##*/}:$line: \`$cmd\` exited $rc"
}
set -E
trap 'e2e_on_err $? $LINENO "$BASH_COMMAND"' ERR

# e2e_finish RC: call first in the EXIT trap; a script that ends non-zero
# without having printed a FAIL line (a signal, an exit of a helper) prints one.
e2e_finish() {
  local rc="$1"
  trap - ERR  # the cleanup that follows may fail on what is already gone
  if [ "$rc" -ne 0 ] && [ "$e2e_reported" -eq 0 ]; then
    case "$rc" in
      143) fail "terminated by SIGTERM (a ctest timeout?)" ;;
      130) fail "interrupted (SIGINT)" ;;
      *) fail "the script ended with status $rc" ;;
    esac
  fi
}

# e2e_stop_netd: stops the netd of lab_netd (scripts/lib/lab.sh) with
# SIGTERM, as systemd does; netd stops its replicas and exits. Unlike
# lab_stop_netd it keeps netd's exit status, in netd_rc (SIGKILL after 60 s,
# with a FAIL line: 137).
e2e_stop_netd() {
  local pid="$LAB_NETD_PID" _ state
  netd_rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
    [ "$state" = Z ] || [ "$state" = gone ] && break
    sleep 0.1
  done
  if [ "$state" != Z ] && [ "$state" != gone ]; then
    fail "netd (pid $pid) did not exit within 60 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # shellcheck disable=SC2034  # read by the callers' checks
  wait "$pid" || netd_rc=$?
  LAB_NETD_PID=""
}
# netd_said_stopped: netd's last words are its own "netd: stopped" line (the
# proxy logs "stopped listening: ..." lines, which do not count).
netd_said_stopped() { tail -n 1 "$LAB_DIR/netd.log" | grep -qE '(^| )netd: stopped$'; }

# e2e_starttime PID: the start time of a process (field 22 of its stat), so
# that a pid reused by another process is not taken for it.
e2e_starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# e2e_watchdog LOCK MAX_SECONDS CLEANUP...: starts the watchdog (watchdog.sh)
# outside this script's process tree and in a session of its own, and waits
# until it is armed (it first waits for an earlier watchdog of the same LOCK
# to finish its cleanup). When this script dies without e2e_disarm having
# run, the watchdog runs CLEANUP. Call it before making anything.
e2e_watchdog() {
  local lock="$1" max="$2"
  shift 2
  mkdir -p "$E2E_LOCKS"
  E2E_LOCK="$lock"
  E2E_GUARD="$E2E_LOCKS/$lock.$$.armed"
  rm -f "$E2E_GUARD"
  # The subshell exits at once: the watchdog's parent becomes init, so the
  # kill of this script's process tree does not reach it.
  (setsid bash "$E2E_DIR/watchdog.sh" "$$" "$(e2e_starttime $$)" "$lock" "$E2E_GUARD" "$max" "$@" \
    </dev/null >>"$E2E_LOCKS/watchdog.log" 2>&1 &)
  local _
  for _ in $(seq 1 3200); do
    [ -s "$E2E_GUARD" ] && break
    sleep 0.1
  done
  [ -s "$E2E_GUARD" ] || fatal "the watchdog did not arm within 320 s (see $E2E_LOCKS/watchdog.log)"
  E2E_WATCHDOG_PID=$(cat "$E2E_GUARD")
}
# e2e_disarm: call last in the EXIT trap, after the script's own cleanup:
# the watchdog then leaves (and releases the lab's lock) without cleaning.
e2e_disarm() {
  [ -n "${E2E_GUARD:-}" ] || return 0
  rm -f "$E2E_GUARD"
  # Ours (started above), checked to still be the watchdog before the signal.
  if [ -n "${E2E_WATCHDOG_PID:-}" ] && grep -qF watchdog.sh "/proc/$E2E_WATCHDOG_PID/cmdline" 2>/dev/null; then
    kill "$E2E_WATCHDOG_PID" 2>/dev/null || true
  fi
  # A lock of this run alone (its name ends in this script's pid) goes too;
  # a shared one (skl) stays for the next run.
  [[ "$E2E_LOCK" != *"-$$" ]] || rm -f "$E2E_LOCKS/$E2E_LOCK.lock"
  E2E_GUARD=""
}

# cgroup_dirs NAME: the cgroup folders called NAME at the top of every
# mounted hierarchy, v1 (/sys/fs/cgroup/<controller>/NAME) and v2 (a pure
# v2 host's /sys/fs/cgroup/NAME, a hybrid host's unified hierarchy).
cgroup_dirs() {
  local mnt
  for mnt in $(awk '$0 ~ / - cgroup2? / {print $5}' /proc/self/mountinfo | sort -u); do
    [ -d "$mnt/$1" ] && echo "$mnt/$1"
  done
  return 0
}
# cgroup_v1_mount CONTROLLER: where the v1 hierarchy with that controller is
# mounted (e.g. /sys/fs/cgroup/memory, or /sys/fs/cgroup/cpu,cpuacct); empty
# when the controller is not on a v1 hierarchy.
cgroup_v1_mount() {
  awk -v c="$1" '$0 ~ / - cgroup / {n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) {print $5; exit}}' \
    /proc/self/mountinfo
}
cgroup_v2_mount() { awk '$0 ~ / - cgroup2 / {print $5; exit}' /proc/self/mountinfo; }
# cgroup_file_of PID CONTROLLER FILE: the path of FILE in the cgroup of PID
# that holds CONTROLLER: its v1 hierarchy if the controller is there, else
# the v2 one.
cgroup_file_of() {
  local pid="$1" ctl="$2" file="$3" rel mnt
  rel=$(awk -F: -v c="$ctl" '{n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) {print $3; exit}}' \
    "/proc/$pid/cgroup")
  mnt=$(cgroup_v1_mount "$ctl")
  if [ -z "$rel" ] || [ -z "$mnt" ]; then
    rel=$(awk -F: '$1 == 0 {print $3}' "/proc/$pid/cgroup")
    mnt=$(cgroup_v2_mount)
  fi
  echo "$mnt$rel/$file"
}
