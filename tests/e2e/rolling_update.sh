#!/usr/bin/env bash
# Updates without a failed request (issue 10), as a user tries them: the
# seed stack under a steady load of new connections through port 4000 (wrk,
# 8 connections, `Connection: close`, a bounded run), while
#   1. `stack deploy` of a new image with stop-first, parallelism 1;
#   2. `stack deploy` of a new image with start-first, parallelism 2, delay 1s;
#   3. `stack deploy` of a broken image (exits 1) with failure_action rollback:
#      the service ends on the old image;
#   4. a health check that starts failing in one replica: it leaves rotation
#      and is replaced.
# Each run must answer every request (0 socket errors, 0 non-2xx) of at least
# MIN_REQUESTS, and the update's log must show the slots moving one batch at
# a time. Prints the figures. Everything runs in a lab namespace removed on
# exit, also on failure.
#
# usage: rolling_update.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
if ! command -v wrk >/dev/null; then
  echo "FAIL: wrk is not installed (scripts/install-deps installs it)"
  exit 1
fi
source "$SRC/scripts/lib/lab.sh"
source "$SRC/tests/e2e/lib.sh"
MIN_REQUESTS=${MIN_REQUESTS:-10000}
LOAD_SECONDS=${LOAD_SECONDS:-25}

skiff() { "$SKIFF_BIN/skiff" "$@"; }
on_exit() {
  local rc=$?
  [ -z "${WRK_PID:-}" ] || kill "$WRK_PID" 2>/dev/null || true
  e2e_finish "$rc"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 80 lines) ----"
    tail -n 80 "${LAB_DIR:-/nonexistent}/netd.log" 2>/dev/null || true
  fi
  lab_cleanup
  e2e_disarm
}
e2e_watchdog "skiff-e2e-$$" 1800 bash "$E2E_DIR/reap-lab.sh" lab "skiff-e2e-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-e2e-$$"
lab_netd
skiff swarm init >/dev/null

# Images: the seed's app as release 1, 2 and 3 (another ENV each: another
# image id), and a broken release whose command exits 1.
ctx="$LAB_DIR/ctx"
cp -r "$SRC/examples/getstartedlab" "$ctx"
build() {  # build TAG DOCKERFILE-EXTRA-LINE
  sed -i '/^# release/d' "$ctx/Dockerfile"
  printf '# release\n%s\n' "$2" >>"$ctx/Dockerfile"
  skiff image build -t "$1" "$ctx" >/dev/null
}
build web:1 'ENV RELEASE=1'
build web:2 'ENV RELEASE=2'
build web:3 'ENV RELEASE=3'
build web:broken 'CMD ["/hello", "--exit", "1"]'

compose() {  # compose IMAGE UPDATE_CONFIG [EXTRA SERVICE LINES]
  cat >"$LAB_DIR/docker-compose.yml" <<EOF
version: "3"
services:
  web:
    image: $1
    ports: ["4000:80"]
    deploy:
      replicas: 5
      restart_policy: {condition: on-failure, delay: 1s}
      update_config: $2
      rollback_config: {parallelism: 1, order: start-first, monitor: 1s}
${3:-}
EOF
  echo "$LAB_DIR/docker-compose.yml"
}
state() { skiff service inspect getstartedlab_web --format '{{.UpdateStatus.State}}' 2>/dev/null; }
image_of_running() { skiff service ps getstartedlab_web --format '{{.Image}} {{.CurrentState}}' | grep Running | cut -d' ' -f1 | sort -u; }
replicas_are() { skiff service ls --format '{{.Name}} {{.Replicas}}' | grep -qx "getstartedlab_web $1"; }

# load: a bounded wrk run in the lab host, new connection per request.
load_start() {
  lab_exec wrk -t1 -c8 -d"${LOAD_SECONDS}s" --timeout 5s -H 'Connection: close' \
    http://127.0.0.1:4000/ >"$LAB_DIR/wrk.out" 2>&1 &
  WRK_PID=$!
  sleep 2  # a steady load before the change
}
# load_check NAME: waits for wrk's end and checks every request was answered.
load_check() {
  wait "$WRK_PID" || true
  WRK_PID=""
  local out requests errors non2xx
  out=$(cat "$LAB_DIR/wrk.out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' <<<"$out")
  errors=$((${errors:-0}))
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  non2xx=${non2xx:-0}
  echo "    $1: ${requests:-?} requests, $errors socket errors, $non2xx non-2xx"
  grep -F 'Socket errors' <<<"$out" | sed 's/^ */      wrk: /' || true
  RESULTS+=("$1: ${requests:-?} requests, $((errors + non2xx)) failed")
  check "$1: at least $MIN_REQUESTS requests (${requests:-none})" test "${requests:-0}" -ge "$MIN_REQUESTS"
  check "$1: no failed request ($errors socket errors, $non2xx non-2xx)" test "$((errors + non2xx))" -eq 0
}
# The update's log lines since line $1 of netd.log: "TIME slot N: stopping/starting".
update_log() {
  tail -n +"$1" "$LAB_DIR/netd.log" |
    sed -nE 's/^([0-9T:.-]+)Z .*update getstartedlab_web: (slot [0-9]+: (stopping|starting)).*/\1 \2/p'
}
# batches_ok PARALLELISM DELAY_SECONDS < log: the slots move in batches
# (slot s is in batch (s-1)/P): no event of a batch before the last of the
# previous one, a slot's new task starts before its old one stops (start-first),
# and a batch begins at least DELAY after the previous one ended.
batches_ok() {
  awk -v p="$1" -v delay="$2" '
    function secs(t,  a) { split(substr(t, 12), a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
    { slot = $3 + 0; sub(":", "", slot); b = int((slot - 1) / p); t = secs($1)
      if (b < batch) { print "slot " slot " moved after batch " batch " began"; bad = 1 }
      if (b > batch) { if (t - last < delay - 0.05) { print "batch " b " began " t - last "s after the last"; bad = 1 }; batch = b }
      last = t
      if ($4 == "starting") started[slot] = 1; else if (!started[slot]) { print "slot " slot " stopped before its new task started"; bad = 1 } }
    END { exit bad }'
}
RESULTS=()

echo "release 1"
skiff stack deploy -c "$(compose web:1 '{parallelism: 1, order: stop-first, monitor: 1s}')" getstartedlab >/dev/null
require "5/5 replicas of web:1 within 30s" wait_for 30 replicas_are 5/5
check "port 4000 answers" lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/ -o /dev/null

echo "1. stop-first, parallelism 1"
mark=$(($(wc -l <"$LAB_DIR/netd.log") + 1))
load_start
skiff stack deploy -c "$(compose web:2 '{parallelism: 1, order: stop-first, monitor: 1s}')" getstartedlab >/dev/null
check "the update completes within 60s" wait_for 60 sh -c '[ "$('"$SKIFF_BIN"'/skiff service inspect getstartedlab_web --format "{{.UpdateStatus.State}}")" = completed ]'
load_check "stop-first p1"
log=$(update_log "$mark")
sed 's/^/      /' <<<"$log"
check "slots move one at a time: stop 1, start 1, stop 2, ... start 5" \
  test "$(grep -oE 'slot [0-9]+: (stopping|starting)' <<<"$log" | tr '\n' ,)" = \
  "slot 1: stopping,slot 1: starting,slot 2: stopping,slot 2: starting,slot 3: stopping,slot 3: starting,slot 4: stopping,slot 4: starting,slot 5: stopping,slot 5: starting,"
check "every running replica runs web:2" test "$(image_of_running)" = web:2

echo "2. start-first, parallelism 2, delay 1s"
mark=$(($(wc -l <"$LAB_DIR/netd.log") + 1))
load_start
skiff stack deploy -c "$(compose web:3 '{parallelism: 2, delay: 1s, order: start-first, monitor: 1s}')" getstartedlab >/dev/null
check "the update completes within 60s" wait_for 60 sh -c '[ "$('"$SKIFF_BIN"'/skiff service inspect getstartedlab_web --format "{{.UpdateStatus.State}}")" = completed ]'
load_check "start-first p2 delay 1s"
log=$(update_log "$mark")
sed 's/^/      /' <<<"$log"
in_batches() { test "$(wc -l <<<"$log")" -eq 10 && batches_ok "$1" "$2" <<<"$log"; }
check "10 steps in batches of two (1-2, 3-4, 5), each new task before the old, 1s apart" in_batches 2 1
check "every running replica runs web:3" test "$(image_of_running)" = web:3

echo "3. a broken image, failure_action rollback"
load_start
skiff stack deploy -c "$(compose web:broken '{parallelism: 1, order: start-first, failure_action: rollback, monitor: 2s}')" getstartedlab >/dev/null
check "the update is rolled back within 60s" wait_for 60 sh -c '[ "$('"$SKIFF_BIN"'/skiff service inspect getstartedlab_web --format "{{.UpdateStatus.State}}")" = rollback_completed ]'
load_check "broken image, rollback"
check "service inspect says why" grep -q "update rolled back due to failure or early termination of task" \
  <<<"$(skiff service inspect getstartedlab_web)"
check "the service is back on web:3 (Spec)" \
  test "$(skiff service inspect getstartedlab_web --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}')" = web:3
check "every running replica runs web:3" test "$(image_of_running)" = web:3
check "5/5 replicas" replicas_are 5/5

echo "4. a health check that starts failing"
hc='    healthcheck:
      test: ["CMD", "/hello", "--healthy-unless", "/sick"]
      interval: 500ms
      timeout: 2s
      retries: 2'
skiff stack deploy -c "$(compose web:3 '{parallelism: 1, order: start-first, monitor: 1s}' "$hc")" getstartedlab >/dev/null
check "the update to a health-checked spec completes within 90s" wait_for 90 sh -c '[ "$('"$SKIFF_BIN"'/skiff service inspect getstartedlab_web --format "{{.UpdateStatus.State}}")" = completed ]'
check "container ls shows (healthy)" test "$(skiff container ls --format '{{.Status}}' | grep -c '(healthy)')" -eq 5
victim=$(skiff container ls --format '{{.ID}}' | head -n1)
vpid=$(skiff container inspect --format '{{.State.Pid}}' "$victim")
load_start
: >"/proc/$vpid/root/sick"  # from now on its check fails
check "the sick replica is replaced within 20s" wait_for 20 sh -c "! $SKIFF_BIN/skiff container ls --format '{{.ID}}' | grep -q ^${victim:0:12}"
load_check "health check fails"
check "service ps says why it ended" grep -q "unhealthy container" \
  <<<"$(skiff service ps getstartedlab_web --no-trunc --format '{{.Error}}')"
check "5/5 replicas within 30s" wait_for 30 replicas_are 5/5

echo "figures"
printf '    %s\n' "${RESULTS[@]}"
skiff stack rm getstartedlab >/dev/null
if [ "$failures" -ne 0 ]; then
  echo "rolling_update: $failures check(s) failed"
  exit 1
fi
echo "rolling_update: all checks passed"
