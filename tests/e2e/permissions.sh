#!/usr/bin/env bash
# Host users cannot reach what netd keeps as root (issue 7, point 2; docker's
# CVE-2021-41091): the data root is 0711, containers/ volumes/ configs/
# images/ are 0700 and state.db (with its -wal/-shm) 0600, whatever the umask
# netd starts under (0 and 077 here) and also when an older netd left them
# 0755/0644. A host user (nobody, through setpriv) can pass through the data
# root but cannot read state.db, list containers/, reach a replica's upper dir
# or a volume. Replicas are not affected: one running as `user: "65534"` still
# starts from its rootfs and reads its config and its volume (they are mounted
# by root; the replica resolves paths in its own mount namespace).
# Everything runs in a lab namespace removed on exit, also on failure.
#
# usage: permissions.sh BIN_DIR SOURCE_DIR
set -euo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
source "$SRC/scripts/lib/lab.sh"

failures=0
pass() { printf '  ok   %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*"; failures=$((failures + 1)); }
check() {  # check "description" command...
  local what="$1"; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
skiff() { "$SKIFF_BIN/skiff" "$@"; }
wait_for() {  # wait_for SECONDS command...
  local secs="$1"; shift
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
mode_is() { [ "$(stat -c %a "$2")" = "$1" ] || { echo "    $2 is $(stat -c %a "$2"), want $1"; return 1; }; }
# As a host user with no privileges: nobody, no supplementary groups.
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
nobody_cannot() { ! as_nobody "$@" >/dev/null 2>&1; }

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 40 lines) ----"
    tail -n 40 "$LAB_DIR/netd.log" 2>/dev/null || true
  fi
  lab_cleanup
}
lab_up "skiff-perm-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
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
    [ -e "$data/$d" ] && check "$1: $d is 0600" mode_is 600 "$data/$d"
  done
  check "$1: nobody may pass through the data root (the checks below are not vacuous)" \
    as_nobody stat "$data/netd.lock"
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

# run_round LABEL UMASK: netd under that umask; modes; a replica as nobody.
run_round() {
  local label="$1" mask="$2"
  echo "$label (netd under umask $mask)"
  local saved
  saved=$(umask)
  umask "$mask"
  lab_netd
  umask "$saved"
  check_modes "$label"
  if ! skiff image ls | grep -q '^s3ich4n/get-started '; then
    skiff image build -t s3ich4n/get-started:pt02 "$SRC/examples/getstartedlab" >/dev/null
  fi
  skiff swarm init >/dev/null 2>&1 || true
  local out
  out=$(skiff stack deploy -c "$compose" perm 2>&1) || echo "    $out"
  check "$label: a replica running as uid 65534 answers (it ran /hello from its rootfs)" \
    wait_for 20 lab_exec curl -sf --max-time 2 http://127.0.0.1:4000/
  local id pid
  id=$(skiff container ls -q | head -n 1)
  pid=$(skiff container inspect --format '{{.State.Pid}}' "$id" 2>/dev/null || echo 0)
  check "$label: the replica runs as uid 65534" \
    grep -qE '^Uid:\s+65534\s' "/proc/$pid/status"
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
  skiff stack rm perm >/dev/null 2>&1 || true
  wait_for 30 test -z "$(skiff container ls -q)" || true
  lab_stop_netd
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
