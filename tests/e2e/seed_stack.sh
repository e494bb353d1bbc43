#!/usr/bin/env bash
# The seed's stack end to end, as a new user runs it (issue 2): build the
# image, deploy before and after `swarm init`, 5/5 replicas, port 4000 round
# robin 2 by 2 over 5 hostnames, cgroup limits read back from the kernel, a
# killed replica replaced within its restart delay, bad input refused while
# the running stack keeps running, per-replica metrics, and `stack rm` /
# `swarm leave --force` leaving nothing behind. Everything runs in a lab
# namespace removed on exit, also on failure.
#
# usage: seed_stack.sh BIN_DIR SOURCE_DIR
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
# wait_for SECONDS command...: polls (every 0.2s) until the command succeeds.
wait_for() {
  local secs="$1"; shift
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
container_pid() { skiff container inspect --format '{{.State.Pid}}' "$1"; }
# answered N: how many of N requests to port 4000 got an answer.
answered() {
  local n=0 i
  for i in $(seq 1 "$1"); do
    lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/ >/dev/null && n=$((n + 1))
  done
  echo "$n"
}
replicas_are() { skiff service ls --format '{{.Name}} {{.Replicas}}' | grep -qx "getstartedlab_web $1"; }

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 60 lines) ----"
    tail -n 60 "$LAB_DIR/netd.log" 2>/dev/null || true
  fi
  lab_cleanup
}
# netd starts with a soft fd limit below its hard one, as under systemd
# (1024 by default), so the checks below see it raise its own and not its
# replicas'.
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt 4096 ] && ulimit -Sn 4096
lab_up "skiff-e2e-$$"
trap on_exit EXIT
# A timeout or Ctrl-C ends the script through the EXIT trap, so the lab goes too.
trap 'exit 143' TERM
trap 'exit 130' INT

compose="$SRC/examples/getstartedlab/docker-compose.yml"
lab_netd

echo "image"
out=$(skiff image build -t s3ich4n/get-started:pt02 "$SRC/examples/getstartedlab" 2>&1)
check "image build reports success" grep -q "Successfully tagged s3ich4n/get-started:pt02" <<<"$out"
check "image ls lists it" grep -qE '^s3ich4n/get-started +pt02 ' <<<"$(skiff image ls)"

echo "swarm"
out=$(skiff stack deploy -c "$compose" getstartedlab 2>&1 || true)
check "deploy before swarm init is refused with docker's words" \
  grep -qF 'this node is not a swarm manager. Use "skiff swarm init" or "skiff swarm join" to connect this node to swarm and try again.' <<<"$out"
skiff swarm init >/dev/null
check "node ls shows this node as leader" grep -q "Leader" <<<"$(skiff node ls)"

echo "deploy"
out=$(skiff stack deploy -c "$compose" getstartedlab 2>&1)
check "deploy creates the network and the service" \
  grep -qzE 'Creating network getstartedlab_webnet.*Creating service getstartedlab_web' <<<"$out"
check "5/5 replicas within 30s" wait_for 30 replicas_are 5/5
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
memcg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$pid/cgroup")
cpucg=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' "/proc/$pid/cgroup")
if [ -n "$memcg" ]; then
  check "memory.limit_in_bytes = 52428800" test "$(cat "/sys/fs/cgroup/memory$memcg/memory.limit_in_bytes")" = 52428800
  check "cpu.cfs_quota_us = 10000" test "$(cat "/sys/fs/cgroup/cpu$cpucg/cpu.cfs_quota_us")" = 10000
  check "cpu.cfs_period_us = 100000" test "$(cat "/sys/fs/cgroup/cpu$cpucg/cpu.cfs_period_us")" = 100000
else
  v2=$(awk -F: '$1 == 0 {print $3}' "/proc/$pid/cgroup")
  check "memory.max = 52428800" test "$(cat "/sys/fs/cgroup$v2/memory.max")" = 52428800
  check "cpu.max = 10000 100000" test "$(cat "/sys/fs/cgroup$v2/cpu.max")" = "10000 100000"
fi
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

echo "restart policy"
kill -KILL "$pid"
check "the killed replica leaves the rotation at once" wait_for 3 replicas_are 4/5
check "a new replica runs within the restart delay (5s) + margin" wait_for 12 replicas_are 5/5
ps_out=$(skiff service ps getstartedlab_web --no-trunc)
check "service ps shows the failed task and its exit code" grep -q 'non-zero exit (137)' <<<"$ps_out"
check "10/10 requests answered after the restart" test "$(answered 10)" -eq 10

echo "bad input"
bad="$LAB_DIR/bad.yml"
printf 'version: "3"\nservices:\n  web:\n    image: s3ich4n/get-started:pt02\n    deploy:\n      resources:\n        limits:\n          memory: 50Q\n' >"$bad"
out=$(skiff stack deploy -c "$bad" getstartedlab 2>&1 || true)
check "invalid memory refused naming file, line and value" grep -qE 'bad.yml:8.*50Q' <<<"$out"
check "the running stack keeps running" replicas_are 5/5
printf 'version: "3"\nservices:\n  web:\n    image: nosuch/image:1\n' >"$bad"
out=$(skiff stack deploy -c "$bad" other 2>&1 || true)
check "unknown image refused" grep -qF 'image nosuch/image:1 not found locally; build it with skiff image build' <<<"$out"
printf 'version: "3"\nservices:\n  api:\n    image: s3ich4n/get-started:pt02\n    ports: ["4000:80"]\n' >"$bad"
out=$(skiff stack deploy -c "$bad" other 2>&1 || true)
check "port 4000 taken: refused naming its owner" grep -q 'getstartedlab_web' <<<"$out"
ip netns exec "$LAB_NS" "$SRC/examples/getstartedlab/hello" 5000 >/dev/null 2>&1 &
squatter=$!
wait_for 5 lab_exec curl -sS --max-time 1 http://127.0.0.1:5000/ || true
printf 'version: "3"\nservices:\n  api:\n    image: s3ich4n/get-started:pt02\n    ports: ["5000:80"]\n' >"$bad"
out=$(skiff stack deploy -c "$bad" other 2>&1 || true)
check "port 5000 held by a process: refused naming its pid" grep -qE "5000/tcp is already in use by pid $squatter \(hello\)" <<<"$out"
kill "$squatter"; wait "$squatter" 2>/dev/null || true
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
check "max_attempts 2 stops the restarts at 3 tasks" \
  bash -c "sleep 2; test \$('$SKIFF_BIN/skiff' service ps extra_broken | grep -c 'Failed') -eq 3"
files_up() { skiff service ls --format '{{.Name}} {{.Replicas}}' | grep -qx 'extra_files 1/1'; }
check "a service with volumes and configs runs" wait_for 20 files_up
fpid=$(container_pid "$(skiff container ls --format '{{.ID}} {{.Names}}' | awk '/extra_files/ {print $1}')")
check "the config is mounted at its target" test "$(cat "/proc/$fpid/root/etc/app.conf")" = "answer = 42"
check "the bind mount shows the host folder" test "$(cat "/proc/$fpid/root/data/note.txt")" = "from the host"
check "the bind mount is read-only" bash -c "! touch /proc/$fpid/root/data/x 2>/dev/null"
echo kept >"/proc/$fpid/root/var/keep/file"
check "the named volume lives under the data root" test -f "$LAB_DIR/data/volumes/extra_keep/_data/file"
skiff stack rm extra >/dev/null
check "stack extra removed" wait_for 20 bash -c "! '$SKIFF_BIN/skiff' service ls --format '{{.Name}}' | grep -q extra"
check "the named volume outlives the stack" test -f "$LAB_DIR/data/volumes/extra_keep/_data/file"

echo "netd restart"
lab_stop_netd
check "netd stopped its replicas on SIGTERM" grep -q "stopped" "$LAB_DIR/netd.log"
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
out=$(skiff stack deploy -c "$LAB_DIR/renamed.yml" getstartedlab 2>&1 || true)
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
# proxy and stops it only when its connection is done (or after 5 s).
lab_exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/4000; printf "GET / HTTP/1.0\r\n" >&3; sleep 1.5; printf "\r\n" >&3; cat <&3' \
  >"$LAB_DIR/inflight.txt" 2>&1 &
inflight=$!
sleep 0.5
skiff stack rm getstartedlab >/dev/null
wait "$inflight" || true
check "a request in flight during stack rm still gets its answer (drain)" grep -q "Hello World" "$LAB_DIR/inflight.txt"
gone() { test -z "$(skiff container ls -q)" && ! skiff service ls --format '{{.Name}}' | grep -q .; }
check "no service and no container within 20s" wait_for 20 gone
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check "no replica process is left" test "$alive" -eq 0
check "the stack's network is gone" wait_for 10 bash -c "! ip -n $LAB_NS -o link | grep -q 'skbr-4097'"
check "no veth is left" test -z "$(ip -n "$LAB_NS" -o link show type veth)"
check "no container cgroup is left" test -z "$(find /sys/fs/cgroup/*/"$LAB_NS" -mindepth 1 -type d 2>/dev/null)"
check "no mount under the data root is left" test -z "$(grep -F "$LAB_DIR/" /proc/self/mountinfo || true)"

echo "swarm leave"
skiff swarm leave --force >/dev/null
check "only lo is left in the lab host" test "$(ip -n "$LAB_NS" -o link | wc -l)" -eq 1

lab_stop_netd
check "netd stopped cleanly" grep -q "stopped" "$LAB_DIR/netd.log"

echo
if [ "$failures" -ne 0 ]; then
  echo "e2e: $failures check(s) failed"
  exit 1
fi
echo "e2e: all checks passed"
