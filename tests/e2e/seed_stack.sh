#!/usr/bin/env bash
# The seed's stack end to end, as a new user runs it (issue 2): build the
# image, deploy before and after `swarm init`, 5/5 replicas, port 4000 round
# robin 2 by 2 over 5 hostnames, cgroup limits read back from the kernel, a
# killed replica replaced within its restart delay, bad input refused while
# the running stack keeps running, per-replica and overlay metrics (the
# overlay's series gone with its network), `skiff stats`, and `stack rm` /
# `swarm leave --force` leaving nothing behind. Everything runs in a lab
# namespace removed on exit, also on failure, and by a watchdog when the
# script is SIGKILLed (a ctest timeout). Every failure prints a FAIL: line.
#
# usage: seed_stack.sh BIN_DIR SOURCE_DIR
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
# container_pid, replicas_are and answered come from lib.sh.

none_alive() {  # none_alive PID...: none of them is running
  local p
  for p in "$@"; do [ ! -d "/proc/$p" ] || return 1; done
}

on_exit() {
  local rc=$?
  e2e_finish "$rc"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 60 lines) ----"
    tail -n 60 "${LAB_DIR:-/nonexistent}/netd.log" 2>/dev/null || true
  fi
  lab_cleanup
  e2e_disarm
}
# netd starts with a soft fd limit below its hard one, as under systemd
# (1024 by default), so the checks below see it raise its own and not its
# replicas'.
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt 4096 ] && ulimit -Sn 4096
# The watchdog first: it removes the lab if this script is SIGKILLed.
e2e_watchdog "skiff-e2e-$$" 3600 bash "$E2E_DIR/reap-lab.sh" lab "skiff-e2e-$$"
trap on_exit EXIT
# A timeout or Ctrl-C ends the script through the EXIT trap, so the lab goes too.
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-e2e-$$"

compose="$SRC/examples/getstartedlab/docker-compose.yml"
lab_netd
require "netd runs in the lab host as pid $LAB_NETD_PID (what the checks below read)" \
  test "$(cat "/proc/$LAB_NETD_PID/comm")" = netd

echo "image"
out=$(skiff image build -t s3ich4n/get-started:pt02 "$SRC/examples/getstartedlab" 2>&1)
check "image build reports success" grep -q "Successfully tagged s3ich4n/get-started:pt02" <<<"$out"
check "image ls lists it" grep -qE '^s3ich4n/get-started +pt02 ' <<<"$(skiff image ls)"

echo "swarm"
expect_refused -F "deploy before swarm init is refused with docker's words" \
  'this node is not a swarm manager. Use "skiff swarm init" or "skiff swarm join" to connect this node to swarm and try again.' \
  skiff stack deploy -c "$compose" getstartedlab
skiff swarm init >/dev/null
check "node ls shows this node as leader" grep -q "Leader" <<<"$(skiff node ls)"

echo "deploy"
out=$(skiff stack deploy -c "$compose" getstartedlab 2>&1)
check "deploy creates the network and the service" \
  grep -qzE 'Creating network getstartedlab_webnet.*Creating service getstartedlab_web' <<<"$out"
require "5/5 replicas within 30s" wait_for 30 replicas_are 5/5
line=$(skiff service ls | grep getstartedlab_web)
check "service ls row: replicated 5/5 image *:4000->80/tcp" \
  grep -qE 'getstartedlab_web +replicated +5/5 +s3ich4n/get-started:pt02 +\*:4000->80/tcp' <<<"$line"

echo "round robin"
answers=()
for i in $(seq 1 10); do
  answers+=("$(lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/ | sed -n 's/.*Hostname: //p')")
done
printf '    %s\n' "${answers[@]}"
distinct=$(printf '%s\n' "${answers[@]}" | sort -u | wc -l)
check "10 answers come from 5 hostnames" test "$distinct" -eq 5
check "each hostname answers exactly twice" \
  test "$(printf '%s\n' "${answers[@]}" | sort | uniq -c | awk '$1 != 2' | wc -l)" -eq 0
check "in turn: answer i+5 is answer i" \
  test "${answers[*]:0:5}" = "${answers[*]:5:5}"
ids=$(skiff container ls --format '{{.ID}}' | sort)
check "hostnames are the containers' 12-hex ids" \
  test "$(printf '%s\n' "${answers[@]}" | sort -u)" = "$(cut -c1-12 <<<"$ids")"

echo "cgroups"
cid=$(head -n1 <<<"$ids")
pid=$(container_pid "$cid")
check "container inspect gives the host pid ($pid)" test -d "/proc/$pid"
# Where the kernel keeps them: the v1 hierarchy that has the controller
# (wherever it is mounted, also co-mounted as cpu,cpuacct), else the v2 one.
cg_read() { cat "$(cgroup_file_of "$pid" "$1" "$2")" 2>/dev/null || echo "(no $2 for pid $pid)"; }
if [ -n "$(cgroup_v1_mount memory)" ]; then
  echo "    cgroup v1: $(cgroup_file_of "$pid" memory memory.limit_in_bytes)"
  check "memory.limit_in_bytes = 52428800" test "$(cg_read memory memory.limit_in_bytes)" = 52428800
  check "cpu.cfs_quota_us = 10000" test "$(cg_read cpu cpu.cfs_quota_us)" = 10000
  check "cpu.cfs_period_us = 100000" test "$(cg_read cpu cpu.cfs_period_us)" = 100000
else
  echo "    cgroup v2: $(cgroup_file_of "$pid" memory memory.max)"
  check "memory.max = 52428800" test "$(cg_read memory memory.max)" = 52428800
  check "cpu.max = 10000 100000" test "$(cg_read cpu cpu.max)" = "10000 100000"
fi
check "the replica's cgroup is under --cgroup-parent $LAB_NS" \
  grep -qF "/$LAB_NS/" <<<"$(cgroup_file_of "$pid" memory x)"
check "the replica is pid 1 in its own pid namespace" \
  test "$(awk '/^NSpid:/ {print $NF}' "/proc/$pid/status")" = 1
# netd raised its own fd limit for the proxy (two fds per connection); the
# replica keeps the limit netd was started with (this script's, 4096).
nofile() { awk '/^Max open files/ {print $4, $5}' "/proc/$1/limits"; }
check "netd's soft fd limit is its hard limit" \
  test "$(nofile "$LAB_NETD_PID" | cut -d' ' -f1)" = "$(nofile "$LAB_NETD_PID" | cut -d' ' -f2)"
check "the replica's soft fd limit is the one netd was started with ($(ulimit -Sn))" \
  test "$(nofile "$pid" | cut -d' ' -f1)" = "$(ulimit -Sn)"

echo "inspect, logs, exec"
net=$(skiff network inspect getstartedlab_webnet)
check "network inspect: overlay with a VNI and a /24" grep -q '"VNI": 4097' <<<"$net"
check "network inspect lists the 5 endpoints" test "$(grep -c '"IPv4Address": "10\.0\.' <<<"$net")" -eq 5
check "container inspect has the webnet address" \
  grep -qE '"IPAddress": "10\.0\.[0-9]+\.[0-9]+"' <<<"$(skiff container inspect "$cid")"
check "service logs carry each replica's output" \
  test "$(skiff service logs getstartedlab_web | grep -c 'hello: listening on port 80')" -ge 5
check "container exec runs in the replica's namespaces" \
  test "$(skiff container exec "$cid" /hello --hostname)" = "$(cut -c1-12 <<<"$cid")"
rc=0
skiff container exec "$cid" /nosuch >/dev/null 2>&1 || rc=$?
check "container exec of a missing command exits 127" test "$rc" -eq 127
# Docker's default seccomp profile is on (2 = filter) and the app still serves.
check "the replica runs under a seccomp filter" \
  test "$(awk '/^Seccomp:/ {print $2}' "/proc/$pid/status")" = 2

echo "metrics"
metrics=$(lab_exec curl -sS --max-time 5 http://127.0.0.1:9323/metrics)
check "per-replica connection counters for 5 backends" \
  test "$(grep -c '^skiff_proxy_connections_total{.*backend=' <<<"$metrics")" -eq 5
check "skiff_service_replicas running = 5" \
  grep -qE '^skiff_service_replicas\{.*service="getstartedlab_web".*state="running".*\} 5$' <<<"$metrics"
# The overlay's kernel counters: the VXLAN device and the bridge of each
# network; the requests above went from the proxy through the ingress bridge.
overlay_series() {  # overlay_series FAMILY NETWORK: its series' "device value" lines
  grep -E "^$1\\{" <<<"$metrics" | grep -F "network=\"$2\"" |
    sed -E 's/.*device="([^"]*)".*\} (.*)$/\1 \2/' | sort
}
check "overlay byte counters for getstartedlab_webnet's skvx-4097 and skbr-4097" \
  test "$(overlay_series skiff_overlay_rx_bytes_total getstartedlab_webnet | cut -d' ' -f1 | tr '\n' ' ')" = \
  "skbr-4097 skvx-4097 "
check "the ingress bridge counted the bytes the proxy sent to the replicas" \
  awk '$1 ~ /^skbr-/ && $2 > 0 { ok = 1 } END { exit !ok }' <<<"$(overlay_series skiff_overlay_tx_bytes_total ingress)"

echo "stats"
# One --no-stream sample (two readings 1 s apart) while requests run through
# port 4000 (bounded: 30 requests, each its own connection).
(for _ in $(seq 1 30); do lab_exec curl -sS --max-time 2 http://127.0.0.1:4000/ >/dev/null || true; sleep 0.05; done) &
load=$!
sleep 0.3
stats=$(skiff stats --no-stream --format '{{.Name}}|{{.MemUsage}}|{{.CPUPerc}}|{{.RequestsPerSec}}|{{.NetIO}}')
wait "$load"
sed 's/^/    /' <<<"$stats"
check "stats --no-stream: a row per replica" test "$(grep -c '^getstartedlab_web\.[1-5]\.' <<<"$stats")" -eq 5
check "memory in use out of the compose file's limit (50M) for each" \
  test "$(grep -cE '\|[0-9.]+(B|KiB|MiB) / 50MiB\|[0-9.]+%\|' <<<"$stats")" -eq 5
check "no replica reads 0B of memory" test "$(grep -c '|0B / ' <<<"$stats")" -eq 0
check "the mesh counted bytes to and from every replica" test "$(grep -c '|0B / 0B$' <<<"$stats")" -eq 0
check "requests during the sample counted (REQ/S above 0 in sum)" \
  awk -F'|' '{ s += $4 } END { exit !(s > 0) }' <<<"$stats"
table=$(skiff stats --no-stream)
sed 's/^/    /' <<<"$table"
check "the default table has the stats headers" \
  grep -qE '^CONTAINER ID +NAME +SERVICE +NODE +CPU % +MEM USAGE / LIMIT +MEM % +PIDS +CONNS +REQ/S +NET I/O/S$' \
  <<<"$(head -n1 <<<"$table")"
expect_refused -F "stats of an unknown container: docker's error" \
  'Error response from daemon: No such container: nosuch' skiff stats --no-stream nosuch

echo "restart policy"
kill -KILL "$pid"
check "the killed replica leaves the rotation at once" wait_for 4 replicas_are 4/5
check "a new replica runs within the restart delay (5s) + margin" wait_for 12 replicas_are 5/5
ps_out=$(skiff service ps getstartedlab_web --no-trunc)
check "service ps shows the failed task and its exit code" grep -q 'non-zero exit (137)' <<<"$ps_out"
check "10/10 requests answered after the restart" test "$(answered 10)" -eq 10

echo "bad input"
bad="$LAB_DIR/bad.yml"
printf 'version: "3"\nservices:\n  web:\n    image: s3ich4n/get-started:pt02\n    deploy:\n      resources:\n        limits:\n          memory: 50Q\n' >"$bad"
expect_refused "invalid memory refused naming file, line and value" 'bad.yml:8.*50Q' \
  skiff stack deploy -c "$bad" getstartedlab
check "the running stack keeps running" replicas_are 5/5
printf 'version: "3"\nservices:\n  web:\n    image: nosuch/image:1\n' >"$bad"
expect_refused -F "unknown image refused" 'image nosuch/image:1 not found locally; build it with skiff image build' \
  skiff stack deploy -c "$bad" other
printf 'version: "3"\nservices:\n  api:\n    image: s3ich4n/get-started:pt02\n    ports: ["4000:80"]\n' >"$bad"
expect_refused "port 4000 taken: refused naming its owner" 'getstartedlab_web' \
  skiff stack deploy -c "$bad" other
ip netns exec "$LAB_NS" "$SRC/examples/getstartedlab/hello" 5000 >/dev/null 2>&1 &
squatter=$!
require "a process of ours (pid $squatter) listens on port 5000" \
  wait_for 5 lab_exec curl -sS --max-time 1 http://127.0.0.1:5000/
printf 'version: "3"\nservices:\n  api:\n    image: s3ich4n/get-started:pt02\n    ports: ["5000:80"]\n' >"$bad"
expect_refused "port 5000 held by a process: refused naming its pid" "5000/tcp is already in use by pid $squatter \\(hello\\)" \
  skiff stack deploy -c "$bad" other
kill "$squatter"
wait "$squatter" 2>/dev/null || true
check "no stack 'other' was made" test -z "$(skiff stack ls --format '{{.Name}}' | grep -x other || true)"

echo "failing command, configs, volumes"
mkdir -p "$LAB_DIR/bind"
echo "from the host" >"$LAB_DIR/bind/note.txt"
echo "answer = 42" >"$LAB_DIR/app.conf"
cat >"$LAB_DIR/extra.yml" <<YAML
version: "3.8"
services:
  broken:
    image: s3ich4n/get-started:pt02
    command: ["nosuch-command"]
    deploy:
      restart_policy: {condition: on-failure, delay: 1s, max_attempts: 2}
  files:
    image: s3ich4n/get-started:pt02
    command: ["/hello", "8080"]
    volumes:
      - $LAB_DIR/bind:/data:ro
      - keep:/var/keep
    configs:
      - source: app
        target: /etc/app.conf
volumes:
  keep:
configs:
  app:
    file: ./app.conf
YAML
skiff stack deploy -c "$LAB_DIR/extra.yml" extra >/dev/null
failed_twice() { test "$(skiff service ps extra_broken --no-trunc | grep -c 'executable file not found')" -ge 3; }
check "a missing command fails the task with the reason in service ps, restarted per policy" wait_for 20 failed_twice
# No sleep to see that nothing more happens: netd says when it gives up on
# the slot (it never restarts that slot again), then the tasks are counted.
gave_up() { grep -qE 'task extra_broken\.1 not restarted: ' "$LAB_DIR/netd.log"; }
check "netd gives up on extra_broken.1 after max_attempts (its log says so)" wait_for 20 gave_up
check "max_attempts 2 stops the restarts at 3 tasks, all Failed" \
  test "$(skiff service ps extra_broken | grep -c 'Failed')" -eq 3
files_up() { skiff service ls --format '{{.Name}} {{.Replicas}}' | grep -qx 'extra_files 1/1'; }
check "a service with volumes and configs runs" wait_for 20 files_up
fpid=$(container_pid "$(skiff container ls --format '{{.ID}} {{.Names}}' | awk '/extra_files/ {print $1}')")
check "the config is mounted at its target" test "$(cat "/proc/$fpid/root/etc/app.conf")" = "answer = 42"
check "the bind mount shows the host folder" test "$(cat "/proc/$fpid/root/data/note.txt")" = "from the host"
# Refused by the mount (EROFS), not by a missing path or a permission.
expect_refused -F "the bind mount is read-only (touch fails with EROFS)" "Read-only file system" \
  touch "/proc/$fpid/root/data/x"
check "nothing was written into the host folder" test ! -e "$LAB_DIR/bind/x"
echo kept >"/proc/$fpid/root/var/keep/file"
check "the named volume lives under the data root" test -f "$LAB_DIR/data/volumes/extra_keep/_data/file"
skiff stack rm extra >/dev/null
extra_gone() { ! skiff service ls --format '{{.Name}}' | grep -q '^extra_'; }
check "stack extra removed" wait_for 20 extra_gone
check "the named volume outlives the stack" test -f "$LAB_DIR/data/volumes/extra_keep/_data/file"

echo "netd restart"
replica_pids=$(for c in $(skiff container ls -q); do container_pid "$c"; done)
require "at least 5 replica pids before the restart" test "$(wc -w <<<"$replica_pids")" -ge 5
e2e_stop_netd
check "netd exits 0 on SIGTERM (status $netd_rc)" test "$netd_rc" -eq 0
check "netd's log ends with its own 'netd: stopped' line" netd_said_stopped
# shellcheck disable=SC2086
check "netd stopped its replicas on SIGTERM (none of their pids runs)" none_alive $replica_pids
lab_netd
check "the stack comes back after a netd restart" wait_for 30 replicas_are 5/5
check "port 4000 answers again" test "$(answered 5)" -eq 5

echo "scale in place"
sed 's/replicas: 5/replicas: 3/' "$compose" >"$LAB_DIR/three.yml"
before=$(skiff container ls --format '{{.Names}}' | sort)
skiff stack deploy -c "$LAB_DIR/three.yml" getstartedlab >/dev/null
check "scaled down to 3/3" wait_for 20 replicas_are 3/3
after=$(skiff container ls --format '{{.Names}}' | sort)
check "the 3 kept replicas are untouched" test -z "$(comm -13 <(echo "$before") <(echo "$after"))"

check "service scale to 4" bash -c "'$SKIFF_BIN/skiff' service scale getstartedlab_web=4 | grep -q 'getstartedlab_web scaled to 4'"
check "4/4 after service scale" wait_for 20 replicas_are 4/4

echo "rename in place"
sed 's/^  web:/  front:/' "$LAB_DIR/three.yml" >"$LAB_DIR/renamed.yml"
rc=0
out=$(skiff stack deploy -c "$LAB_DIR/renamed.yml" getstartedlab 2>&1) || rc=$?
check "the deploy of the renamed service exits 0 ($rc)" test "$rc" -eq 0
check "a renamed service takes port 4000 over in one deploy" \
  grep -qzE 'Creating service getstartedlab_front.*Removing service getstartedlab_web' <<<"$out"
front_up() { skiff service ls --format '{{.Name}} {{.Replicas}}' | grep -qx 'getstartedlab_front 3/3'; }
check "3/3 replicas of the renamed service" wait_for 20 front_up
web_gone() { ! skiff service ls --format '{{.Name}}' | grep -qx getstartedlab_web; }
check "the old service is gone" wait_for 20 web_gone
check "port 4000 answers from the renamed service" \
  grep -q "Hello World" <<<"$(lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/)"

echo "stack rm"
pids=$(for c in $(skiff container ls -q); do container_pid "$c"; done)
# A request in flight while the stack goes: netd drains the replica in the
# proxy and stops it only when its connection is done (or after 5 s). The
# client sends half a request, and the rest only once the other replicas
# are gone (the file "go"): the one it holds is still there, draining.
lab_exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/4000; printf "GET / HTTP/1.0\r\n" >&3
  for i in $(seq 1 200); do [ -e "$1" ] && break; sleep 0.05; done
  printf "\r\n" >&3; cat <&3' _ "$LAB_DIR/go" >"$LAB_DIR/inflight.txt" 2>&1 &
inflight=$!
# The proxy has connected it to a replica (an established connection to port 80).
to_backend() { lab_exec ss -Htn state established '( dport = :80 )' | grep -q .; }
require "the proxy holds the client's connection to a replica" wait_for 5 to_backend
skiff stack rm getstartedlab >/dev/null
one_left() { [ "$(skiff container ls -q | grep -c .)" -eq 1 ]; }
check "stack rm: the idle replicas stop, the one with a connection stays" wait_for 5 one_left
touch "$LAB_DIR/go"
wait "$inflight" || true
check "a request in flight during stack rm still gets its answer (drain)" grep -q "Hello World" "$LAB_DIR/inflight.txt"
gone() { test -z "$(skiff container ls -q)" && ! skiff service ls --format '{{.Name}}' | grep -q .; }
check "no service and no container within 20s" wait_for 20 gone
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check "no replica process is left" test "$alive" -eq 0
check "the stack's network is gone" wait_for 10 bash -c "! ip -n $LAB_NS -o link | grep -q 'skbr-4097'"
webnet_series_gone() {
  local out
  out=$(lab_exec curl -sS --max-time 5 http://127.0.0.1:9323/metrics) || return 1
  grep -q '^skiff_overlay_rx_bytes_total{' <<<"$out" || return 1 # ingress still has its series
  ! grep -q 'network="getstartedlab_webnet"' <<<"$out"
}
check "the removed network's overlay series are gone from /metrics" wait_for 5 webnet_series_gone
check "no veth is left" test -z "$(ip -n "$LAB_NS" -o link show type veth)"
# v1 (one folder per hierarchy) and v2 alike; the cgroup parent itself was
# there (the check above read the replica's limits below it).
cg_dirs=$(cgroup_dirs "$LAB_NS")
check "the cgroup parent $LAB_NS exists ($(tr '\n' ' ' <<<"$cg_dirs"))" test -n "$cg_dirs"
# shellcheck disable=SC2086
check "no container cgroup is left" test -z "$(find $cg_dirs -mindepth 1 -type d)"
# netd's own mount namespace (ip netns exec gave it one), where it mounts,
# and the root one.
no_mount_under() {  # no_mount_under MOUNTINFO DIR
  [ -r "$1" ] || { echo "    cannot read $1"; return 1; }
  ! grep -F " $2/" "$1"
}
check "no mount under the lab folder in netd's mount namespace (/proc/$LAB_NETD_PID/mountinfo)" \
  no_mount_under "/proc/$LAB_NETD_PID/mountinfo" "$LAB_DIR"
check "no mount under the lab folder in the root mount namespace" no_mount_under /proc/self/mountinfo "$LAB_DIR"

echo "swarm leave"
skiff swarm leave --force >/dev/null
check "only lo is left in the lab host" test "$(ip -n "$LAB_NS" -o link | wc -l)" -eq 1

e2e_stop_netd
check "netd exits 0 on SIGTERM (status $netd_rc)" test "$netd_rc" -eq 0
check "netd's log ends with its own 'netd: stopped' line" netd_said_stopped

echo
if [ "$failures" -ne 0 ]; then
  echo "e2e: $failures check(s) failed"
  exit 1
fi
echo "e2e: all checks passed"
