# Lab host helpers, sourced by scripts/demo and tests/e2e. A lab host is a
# network namespace of its own with only loopback: netd runs inside it (as
# network engineers start it, with `ip netns exec`), so nothing it builds —
# bridges, VXLAN devices, veths, listeners — touches the root namespace, and
# no traffic can leave the machine. lab_cleanup removes everything the lab
# made, also when the caller failed: callers install it as an EXIT trap.
#
# Uses: LAB_NS, LAB_DIR (set by lab_up), SKIFF_BIN (folder of netd/skiff).

lab_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# lab_up NAME: creates the namespace and a scratch folder.
lab_up() {
  LAB_NS="$1"
  LAB_DIR="$(mktemp -d "/tmp/${LAB_NS}.XXXXXX")"
  LAB_NETD_PID=""
  ip netns add "$LAB_NS"
  ip -n "$LAB_NS" link set lo up
  export SKIFF_HOST="unix://$LAB_DIR/netd.sock"
}

# lab_netd [ARGS...]: starts netd in the lab host; waits until its API answers.
lab_netd() {
  ip netns exec "$LAB_NS" "$SKIFF_BIN/netd" \
    --socket "$LAB_DIR/netd.sock" --data-root "$LAB_DIR/data" \
    --metrics-addr 127.0.0.1:9323 --cgroup-parent "$LAB_NS" "$@" \
    >"$LAB_DIR/netd.log" 2>&1 &
  LAB_NETD_PID=$!
  local i
  for i in $(seq 1 100); do
    if "$SKIFF_BIN/skiff" version >/dev/null 2>&1 && [ -S "$LAB_DIR/netd.sock" ]; then
      return 0
    fi
    if ! kill -0 "$LAB_NETD_PID" 2>/dev/null; then
      echo "netd exited during start-up; its log:" >&2
      cat "$LAB_DIR/netd.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "netd did not answer on $LAB_DIR/netd.sock within 10s; its log:" >&2
  cat "$LAB_DIR/netd.log" >&2
  return 1
}

# lab_exec CMD...: runs a command inside the lab host (curl, ss, ip ...).
lab_exec() { ip netns exec "$LAB_NS" "$@"; }

# lab_stop_netd: SIGTERM (netd stops its replicas), SIGKILL after 30s.
lab_stop_netd() {
  [ -n "${LAB_NETD_PID:-}" ] || return 0
  if kill -0 "$LAB_NETD_PID" 2>/dev/null; then
    kill -TERM "$LAB_NETD_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 300); do
      kill -0 "$LAB_NETD_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$LAB_NETD_PID" 2>/dev/null; then
      echo "netd did not stop within 30s; killing it" >&2
      kill -KILL "$LAB_NETD_PID" 2>/dev/null || true
    fi
  fi
  wait "$LAB_NETD_PID" 2>/dev/null || true
  LAB_NETD_PID=""
}

# lab_cleanup: stops netd, kills what is left in the lab's cgroups, removes
# the namespace and the scratch folder. Safe to call twice.
lab_cleanup() {
  # Output may go to a closed pipe (`scripts/demo | head`); cleaning up must
  # go on regardless.
  trap '' PIPE
  set +e
  lab_stop_netd
  local cg
  for cg in /sys/fs/cgroup/*/"${LAB_NS:-none}" /sys/fs/cgroup/"${LAB_NS:-none}"; do
    [ -d "$cg" ] || continue
    # Replicas left behind by a netd that was killed: their pids are in our
    # cgroups only, so this stops processes the lab started and nothing else.
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done
    sleep 0.2
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  if [ -n "${LAB_NS:-}" ] && ip netns list | grep -qw "$LAB_NS"; then
    ip netns delete "$LAB_NS" 2>/dev/null || true
  fi
  if [ -n "${LAB_DIR:-}" ] && [ -d "$LAB_DIR" ]; then
    # Overlay mounts live in the containers' own mount namespaces, but be sure.
    grep -F " $LAB_DIR/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$LAB_DIR"
  fi
}
