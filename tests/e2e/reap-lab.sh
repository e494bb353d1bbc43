#!/usr/bin/env bash
# Removes what an e2e run, scripts/demo, scripts/bench or scripts/lab left
# behind when it was killed before its own cleanup ran (ctest SIGKILLs a test
# that times out, so its EXIT trap never runs). Only their own names are
# touched, and only processes inside those namespaces or cgroups are killed:
#
#   reap-lab.sh lab NAME     the lab NAME of tests/e2e or scripts/demo
#                            (scripts/lib/lab.sh): the processes in network
#                            namespace NAME (netd: SIGTERM, so it stops its
#                            replicas, SIGKILL after 30 s), the replicas left
#                            in the cgroups NAME (v1 hierarchies and v2), the
#                            namespace, mounts under /tmp/NAME.XXXXXX and that
#                            folder. Used by the e2e watchdog (watchdog.sh).
#   reap-lab.sh stale SRC    every lab of a run that is over: skiff-e2e-PID,
#                            skiff-perm-PID, skiff-demo-PID, skiff-bench-PID-N
#                            whose PID is no longer running and whose watchdog
#                            is not at work on it, and the scripts/lab lab
#                            (skl-ul, skl-N) unless an e2e test holds it
#                            (`SRC/scripts/lab down`). Used by scripts/test
#                            before it runs ctest.
# Needs root. Every loop is bounded; exits non-zero if something is left.
set -uo pipefail
trap '' PIPE

LOCKS=/run/skiff-e2e
# The names of the labs that carry their owner's pid (scripts/lib/lab.sh
# callers and scripts/bench), and the scripts/lab lab.
OWNED_RE='^skiff-(e2e|perm|demo)-([0-9]+)$|^skiff-bench-([0-9]+)-[0-9]+$'
SKL_RE='^skl-(ul|[0-9]+)$'

say() { echo "reap-lab: $*"; }

# cgroup_dirs NAME: the cgroup folders called NAME at the top of every
# mounted hierarchy: v1 (/sys/fs/cgroup/<controller>/NAME), the unified
# hierarchy of a hybrid host and a pure v2 host (/sys/fs/cgroup/NAME).
cgroup_dirs() {
  local mnt
  for mnt in $(awk '$0 ~ / - cgroup2? / {print $5}' /proc/self/mountinfo | sort -u); do
    [ -d "$mnt/$1" ] && echo "$mnt/$1"
  done
  return 0
}

cgroup_pids() {  # cgroup_pids DIR...: every pid in those cgroups and below
  [ $# -gt 0 ] || return 0
  find "$@" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

alive_of() {  # alive_of PID...: those still running
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && echo "$p"; done
  return 0
}

# stop_pids SECONDS PID...: SIGTERM, up to SECONDS for them to exit, SIGKILL.
stop_pids() {
  local secs="$1" _ left
  shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  for _ in $(seq 1 $((secs * 10))); do
    [ -z "$(alive_of "$@")" ] && return 0
    sleep 0.1
  done
  mapfile -t left < <(alive_of "$@")
  [ "${#left[@]}" -eq 0 ] || kill -KILL "${left[@]}" 2>/dev/null
  for _ in $(seq 1 50); do
    [ -z "$(alive_of "$@")" ] && return 0
    sleep 0.1
  done
  say "still running after SIGKILL: $(alive_of "$@" | tr '\n' ' ')"
  return 1
}

reap_lab() {
  local name="$1" ok=0 dirs pids _ d
  [[ "$name" =~ $OWNED_RE ]] || { say "refusing to reap '$name': not an e2e/demo/bench lab name"; return 2; }
  # 1. What runs in the namespace: netd (it stops its replicas on SIGTERM).
  if [ -e "/run/netns/$name" ]; then
    pids=$(ip netns pids "$name" 2>/dev/null)
    # shellcheck disable=SC2086
    stop_pids 30 $pids || ok=1
  fi
  # 2. Replicas left in the lab's cgroups (they have network namespaces of
  #    their own, so only their cgroup names them), then the cgroups.
  mapfile -t dirs < <(cgroup_dirs "$name")
  if [ "${#dirs[@]}" -gt 0 ]; then
    pids=$(cgroup_pids "${dirs[@]}")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || stop_pids 0 $pids || ok=1
    for _ in $(seq 1 50); do
      [ -z "$(cgroup_pids "${dirs[@]}")" ] && break
      sleep 0.1
    done
    for d in "${dirs[@]}"; do
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ ! -d "$d" ] || { say "cgroup $d is left"; ok=1; }
    done
  fi
  # 3. The namespace, with the links and bridges netd made in it.
  if [ -e "/run/netns/$name" ]; then
    ip netns delete "$name" 2>/dev/null || { say "could not delete namespace $name"; ok=1; }
  fi
  # 4. Mounts under the scratch folder, then the folder (mktemp -d /tmp/NAME.XXXXXX).
  for d in /tmp/"$name".??????; do
    [ -d "$d" ] || continue
    grep -F " $d/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null
    done
    rm -rf "$d" || ok=1
  done
  [ "$ok" = 0 ] && say "removed lab $name"
  return "$ok"
}

# lock_free NAME: no watchdog (watchdog.sh) holds the lock of lab NAME.
lock_free() {
  [ -e "$LOCKS/$1.lock" ] || return 0
  flock -n "$LOCKS/$1.lock" true
}

reap_stale() {
  local src="$1" ok=0 name pid
  declare -A names=()
  # Every trace a lab leaves: its namespace, its cgroups, its scratch folder.
  for name in $(ip netns list 2>/dev/null | awk '{print $1}'); do names[$name]=1; done
  local mnt d
  for mnt in $(awk '$0 ~ / - cgroup2? / {print $5}' /proc/self/mountinfo | sort -u); do
    for d in "$mnt"/skiff-* "$mnt"/skl-*; do [ -d "$d" ] && names[$(basename "$d")]=1; done
  done
  for d in /tmp/skiff-*.??????; do [ -d "$d" ] && names[$(basename "${d%.*}")]=1; done
  local skl=0
  for name in "${!names[@]}"; do
    if [[ "$name" =~ $SKL_RE ]]; then
      skl=1
      continue
    fi
    [[ "$name" =~ $OWNED_RE ]] || continue
    pid="${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
    if [ -d "/proc/$pid" ]; then
      say "leaving $name: its owner, pid $pid, is running"
      continue
    fi
    if ! lock_free "$name"; then
      say "leaving $name: its watchdog is removing it"
      continue
    fi
    reap_lab "$name" || ok=1
  done
  [ -d /run/skiff-lab ] || [ -d /var/lib/skiff-lab ] && skl=1
  if [ "$skl" = 1 ]; then
    if lock_free skl; then
      say "taking down the scripts/lab lab (skl-*)"
      "$src/scripts/lab" down || ok=1
    else
      say "leaving the scripts/lab lab: an e2e test holds it"
    fi
  fi
  return "$ok"
}

[ "$(id -u)" -eq 0 ] || { say "needs root"; exit 1; }
case "${1:-}" in
  lab) [ $# -eq 2 ] || { echo "usage: reap-lab.sh lab NAME" >&2; exit 2; }; reap_lab "$2" ;;
  stale) [ $# -eq 2 ] || { echo "usage: reap-lab.sh stale SOURCE_DIR" >&2; exit 2; }; reap_stale "$2" ;;
  *) echo "usage: reap-lab.sh lab NAME | stale SOURCE_DIR" >&2; exit 2 ;;
esac
