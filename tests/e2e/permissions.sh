#!/usr/bin/env bash
# Host users cannot reach what netd keeps as root (issue 7, point 2; docker's
# CVE-2021-41091): the data root is 0711, containers/ volumes/ configs/
# images/ are 0700 and state.db (with its -wal/-shm) 0600, whatever the umask
# netd starts under (0 and 077 here) and also when an older netd left them
# 0755/0644. netd.lock is 0600, the API socket 0660 (root's group may use
# it), and what netd makes for a replica has the modes it asks for whatever
# the umask: a volume's folder and its _data 0755, configs/<stack> 0755 and a
# config file 0444. A host user (nobody, through setpriv) can pass through
# the data root but cannot read state.db, list containers/, reach a replica's
# upper dir or a volume. Replicas are not affected: one running as
# `user: "65534"` still starts from its rootfs and reads its config and its
# volume (they are mounted by root; the replica resolves paths in its own
# mount namespace). A second netd on the same data root is refused with a
# clear error and exit status 1, and the first one keeps serving.
# Everything runs in a lab namespace removed on exit, also on failure, and
# by a watchdog when the script is SIGKILLed (a ctest timeout).
#
# usage: permissions.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
source "$SRC/scripts/lib/lab.sh"
source "$SRC/tests/e2e/lib.sh"

skiff() { "$SKIFF_BIN/skiff" "$@"; }
mode_is() { [ "$(stat -c %a "$2")" = "$1" ] || { echo "    $2 is $(stat -c %a "$2"), want $1"; return 1; }; }
# As a host user with no privileges: nobody, no supplementary groups.
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
nobody_cannot() { ! as_nobody "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }

on_exit() {
  local rc=$?
  e2e_finish "$rc"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 40 lines) ----"
    tail -n 40 "${LAB_DIR:-/nonexistent}/netd.log" 2>/dev/null || true
  fi
  lab_cleanup
  e2e_disarm
}
# The watchdog first: it removes the lab if this script is SIGKILLed.
e2e_watchdog "skiff-perm-$$" 3600 bash "$E2E_DIR/reap-lab.sh" lab "skiff-perm-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-perm-$$"
# mktemp made the lab folder 0700: open it, so that the data root's own modes
# are all that stands between a host user and netd's files.
chmod 0755 "$LAB_DIR"
data="$LAB_DIR/data"

# What an older netd left: everything 0755, state.db and its WAL 0644.
mkdir -p "$data"/{containers,volumes,configs,images}
chmod 0755 "$data" "$data"/{containers,volumes,configs,images}
: >"$data/state.db"
: >"$data/state.db-wal"
chmod 0644 "$data/state.db" "$data/state.db-wal"

check_modes() {  # check_modes LABEL
  check "$1: data root is 0711" mode_is 711 "$data"
  local d
  for d in containers volumes configs images; do
    check "$1: $d/ is 0700" mode_is 700 "$data/$d"
  done
  check "$1: state.db is 0600" mode_is 600 "$data/state.db"
  for d in state.db-wal state.db-shm; do
    if [ -e "$data/$d" ]; then check "$1: $d is 0600" mode_is 600 "$data/$d"; fi
  done
  check "$1: netd.lock is 0600" mode_is 600 "$data/netd.lock"
  check "$1: the API socket is a socket, mode 0660, root:root" \
    test -S "$LAB_DIR/netd.sock" -a "$(stat -c %a:%U:%G "$LAB_DIR/netd.sock")" = 660:root:root
  # (root can: lab_netd waited for `skiff version` to answer on it.)
  expect_refused -F "$1: nobody cannot use the API socket" "Cannot connect to the skiff daemon at $SKIFF_HOST" \
    as_nobody env SKIFF_HOST="$SKIFF_HOST" "$SKIFF_BIN/skiff" version
  check "$1: nobody may pass through the data root (the checks below are not vacuous)" \
    quiet as_nobody stat "$data/netd.lock"
  check "$1: nobody cannot read state.db" nobody_cannot cat "$data/state.db"
  check "$1: nobody cannot list containers/" nobody_cannot ls "$data/containers"
  check "$1: nobody cannot list volumes/" nobody_cannot ls "$data/volumes"
  check "$1: nobody cannot list configs/" nobody_cannot ls "$data/configs"
}

compose="$LAB_DIR/nobody.yml"
printf 'hello config\n' >"$LAB_DIR/app.conf"
cat >"$compose" <<'YAML'
version: "3"
services:
  web:
    image: s3ich4n/get-started:pt02
    user: "65534"
    # Not root, so not port 80 (no ip_unprivileged_port_start in replicas yet).
    command: ["/hello", "8080"]
    configs:
      - source: app_conf
        target: /app.conf
    volumes:
      - data:/data
    ports:
      - "4000:8080"
configs:
  app_conf:
    file: ./app.conf
volumes:
  data:
YAML

no_containers() { [ -z "$(skiff container ls -q)" ]; }
# umask_of PID: the umask a process runs under now.
umask_of() { awk '/^Umask:/ {print $2}' "/proc/$1/status"; }

# second_netd: a second netd on the same data root (its own socket, so only
# the lock can stop it) is refused: exit status 1 and the reason, and the
# first one goes on serving its replica.
second_netd() {
  local rc=0 out
  out=$(timeout 30 ip netns exec "$LAB_NS" "$SKIFF_BIN/netd" --socket "$LAB_DIR/second.sock" \
    --data-root "$data" --metrics-addr "" --cgroup-parent "$LAB_NS" 2>&1) || rc=$?
  check "a second netd on the same data root exits 1 (status $rc)" test "$rc" -eq 1
  check "a second netd says why: another netd is running with data root $data" \
    grep -qF "another netd is running with data root $data ($data/netd.lock is locked)" <<<"$out"
  check "the second netd made no socket" test ! -e "$LAB_DIR/second.sock"
  check "the first netd still serves its API (pid $LAB_NETD_PID)" quiet skiff version
  check "the first netd's replica still answers" quiet lab_exec curl -sf --max-time 2 http://127.0.0.1:4000/
}

# run_round LABEL UMASK: netd under that umask; modes; a replica as nobody.
run_round() {
  local label="$1" mask="$2"
  echo "$label (netd under umask $mask)"
  local saved
  saved=$(umask)
  umask "$mask"
  lab_netd
  umask "$saved"
  check "$label: netd, started under umask $mask, runs under 0022 (as dockerd)" test "$(umask_of "$LAB_NETD_PID")" = 0022
  check_modes "$label"
  if [ "$label" = "first start" ]; then
    skiff image build -t s3ich4n/get-started:pt02 "$SRC/examples/getstartedlab" >/dev/null
    skiff swarm init >/dev/null
  else
    check "$label: the node is still the swarm's leader" grep -q Leader <<<"$(skiff node ls)"
  fi
  local rc=0 out
  out=$(skiff stack deploy -c "$compose" perm 2>&1) || rc=$?
  require "$label: stack deploy exits 0 (status $rc; it said: $out)" test "$rc" -eq 0
  check "$label: a replica running as uid 65534 answers (it ran /hello from its rootfs)" \
    wait_for 20 lab_exec curl -sf --max-time 2 http://127.0.0.1:4000/
  local id pid
  id=$(skiff container ls -q | head -n 1)
  pid=$(skiff container inspect --format '{{.State.Pid}}' "$id")
  require "$label: container inspect gives the replica's pid ($pid)" test -d "/proc/$pid"
  check "$label: the replica runs as uid 65534" \
    grep -qE '^Uid:\s+65534\s' "/proc/$pid/status"
  # What netd made for the replica: the modes it asks for, not the umask's
  # (under 0 a volume would be world-writable, under 077 closed to the
  # replica's user).
  check "$label: volumes/perm_data is 0755" mode_is 755 "$data/volumes/perm_data"
  check "$label: volumes/perm_data/_data is 0755" mode_is 755 "$data/volumes/perm_data/_data"
  check "$label: configs/perm is 0755" mode_is 755 "$data/configs/perm"
  check "$label: the config file is 0444 (compose's default mode)" mode_is 444 "$data/configs/perm/app_conf"
  # Through the replica's own root, as the replica's user: what the replica sees.
  check "$label: the replica's user reads its config" \
    grep -qx "hello config" <(as_nobody cat "/proc/$pid/root/app.conf")
  # A volume's _data is root's 0755, as docker's (docker also copies the
  # image folder's owner into a new volume; skiff does not yet): root puts a
  # file there and the replica's user reads it through its own mount.
  echo "volume $mask" >"$data/volumes/perm_data/_data/probe"
  check "$label: the replica's user reads its volume" \
    grep -qx "volume $mask" <(as_nobody cat "/proc/$pid/root/data/probe")
  check "$label: nobody cannot reach the volume from the host" \
    nobody_cannot ls "$data/volumes/perm_data/_data"
  local upper
  upper=$(find "$data/containers" -mindepth 2 -maxdepth 2 -name upper | head -n 1)
  check "$label: the replica has an upper dir under containers/" test -d "$upper"
  check "$label: nobody cannot reach the replica's upper dir from the host" nobody_cannot ls "$upper"
  if [ "$label" = "first start" ]; then second_netd; fi
  check "$label: stack rm perm" quiet skiff stack rm perm
  check "$label: no replica left within 30 s" wait_for 30 no_containers
  e2e_stop_netd
  check "$label: netd exits 0 on SIGTERM (status $netd_rc)" test "$netd_rc" -eq 0
}

run_round "first start" 0
# The second start sees what the first one made, under the tightest umask.
run_round "restart" 077

echo
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
