#!/usr/bin/env bash
# The swarm across hosts (issue 9), driven as a user would with scripts/lab
# and the CLI: `lab up 3` (host 1 manager, 2 and 3 joined), node ls, tokens
# refused, deploy refused on a worker, the seed's stack at 6 replicas spread
# 2/2/2, the routing mesh on host 3 reaching all 6, overlay vs underlay
# throughput (printed, not asserted), host 3 cut -> its replicas rescheduled
# and every request on hosts 1 and 2 answered (the time it took printed),
# heal -> still 6 replicas, loss 1% on host 2 and the mesh still answers,
# `lab down` leaving nothing. Every loop is bounded in count and time.
#
# usage: swarm_lab.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
export SKIFF_BIN
LAB="$SRC/scripts/lab"
# Until the cluster code is in this build, there is nothing to test.
if ! "$SKIFF_BIN/skiff" swarm --help 2>/dev/null | grep -qE '^ +join( |$)'; then
  echo "SKIP: this skiff has no 'swarm join' (no cluster support in $SKIFF_BIN)"
  exit 77
fi
for tool in nft curl iperf3 nsenter; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (scripts/install-deps)"; exit 1; }
done

source "$SRC/tests/e2e/lib.sh"
lab() { "$LAB" "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
on() { local n="$1"; shift; "$LAB" exec "$n" skiff "$@"; }   # on N ARGS: skiff on host N
addr() { echo "198.51.100.$((10 + $1))"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
# wait_for SECONDS command...: polls (every 0.5 s) until the command succeeds.
wait_for() {
  local secs="$1"; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
# answered N COUNT: how many of COUNT requests to port 4000 on host N got an answer.
answered() {
  local n=0 i
  for i in $(seq 1 "$2"); do
    lab exec "$1" curl -s --max-time 5 http://127.0.0.1:4000/ 2>/dev/null | grep -q 'Hostname:' && n=$((n + 1))
  done
  echo "$n"
}
distinct_hostnames() {  # distinct_hostnames N COUNT
  local i
  for i in $(seq 1 "$2"); do
    lab exec "$1" curl -s --max-time 5 http://127.0.0.1:4000/ | sed -n 's/.*Hostname: \([0-9a-f]*\).*/\1/p' || true
  done | sort -u | grep -c . || true
}
# running_per_node: "COUNT NODE" lines for tasks desired and currently running
# (the manager's view, by the NODE column of service ps).
running_per_node() {
  on 1 service ps getstartedlab_web --format '{{.Node}}|{{.DesiredState}}|{{.CurrentState}}' |
    awk -F'|' '$2 == "Running" && $3 ~ /^Running/ {print $1}' | sort | uniq -c | awk '{print $1, $2}'
}
running_total() { running_per_node | awk '{s += $1} END {print s + 0}'; }
# containers_on N: replicas actually running on host N (its own netd's view).
containers_on() { on "$1" container ls -q 2>/dev/null | grep -c . || true; }
replicas_are() { on 1 service ls --format '{{.Name}} {{.Replicas}}' | grep -qx "getstartedlab_web $1"; }

# The trap below does not run when ctest SIGKILLs this script; the watchdog
# (watchdog.sh), outside this script's process tree, takes the lab down when
# this script's pid is gone. It holds the lab's lock ("skl": one scripts/lab
# lab per machine) while it lives, so this waits until the watchdog of an
# earlier, killed run has finished taking its lab down.
e2e_watchdog skl 3600 env SKIFF_BIN="$SKIFF_BIN" "$LAB" down
# A lab left by an earlier run that was killed before it had a watchdog.
lab down >/dev/null || fatal "scripts/lab down of a previous run's leftovers"
on_exit() {
  local rc=$?
  e2e_finish "$rc"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    for log in /run/skiff-lab/*/netd.log; do
      [ -f "$log" ] || continue
      echo "---- $log (last 30 lines) ----"
      tail -n 30 "$log"
    done
  fi
  lab down >/dev/null 2>&1 || true
  e2e_disarm
}
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

echo "up"
lab up 3 || fatal "scripts/lab up 3"
netd_pids=$(cat /run/skiff-lab/*/netd.pid)
nodes_ready() { [ "$(on 1 node ls | grep -cE ' skiff-lab-[123] +Ready ')" -eq 3 ]; }
check "node ls on the manager: 3 nodes Ready, skiff-lab-1..3 (within 30 s)" wait_for 30 nodes_ready
nodes=$(on 1 node ls)
echo "$nodes"
check "node ls: skiff-lab-1 is the Leader" grep -qE ' skiff-lab-1 .*Leader' <<<"$nodes"
out=$(on 2 node ls 2>&1 || true)
echo "    node ls on host 2 (a worker): $(head -n1 <<<"$out")"

echo "join"
token=$(on 1 swarm join-token -q worker)
check "join-token -q prints a SWMTKN-1- token" grep -qE '^SWMTKN-1-' <<<"$token"
expect_refused -F "a second join on host 2: 'This node is already part of a swarm'" 'This node is already part of a swarm' \
  on 2 swarm join --token "$token" --advertise-addr "$(addr 2)" "$(addr 1):2377"
quiet lab add-host || fatal "scripts/lab add-host (host 4, not joined)"
wrong="${token%?????}aaaaa"
[ "$wrong" != "$token" ] || wrong="${token%?????}bbbbb"
expect_refused -F "a wrong token is refused: 'A valid join token is necessary'" 'A valid join token is necessary' \
  on 4 swarm join --token "$wrong" --advertise-addr "$(addr 4)" "$(addr 1):2377"
expect_refused -F "a truncated token is refused: 'A valid join token is necessary'" 'A valid join token is necessary' \
  on 4 swarm join --token "${token:0:$((${#token} - 10))}" --advertise-addr "$(addr 4)" "$(addr 1):2377"
check "the refused host is not a node" test "$(on 1 node ls | grep -c skiff-lab-4 || true)" -eq 0

echo "deploy"
compose="$SRC/examples/getstartedlab/docker-compose.yml"
expect_refused -F "deploy on a worker: 'this node is not a swarm manager'" 'this node is not a swarm manager' \
  on 2 stack deploy -c "$compose" getstartedlab
quiet on 1 stack deploy -c "$compose" getstartedlab || fail "stack deploy on host 1"
quiet on 1 service scale getstartedlab_web=6 || fail "service scale getstartedlab_web=6"
check "6/6 replicas within 120 s" wait_for 120 replicas_are 6/6
on 1 service ps getstartedlab_web
spread=$(running_per_node)
echo "    running per node: $(tr '\n' ' ' <<<"$spread")"
check "service ps: 2/2/2 over skiff-lab-1..3" \
  test "$(tr '\n' ' ' <<<"$spread")" = "2 skiff-lab-1 2 skiff-lab-2 2 skiff-lab-3 "
for n in 1 2 3; do
  check "host $n runs 2 replicas (its container ls)" test "$(containers_on "$n")" -eq 2
done
# Only host 1 built the image (scripts/lab up): the workers fetched it from
# the manager, and hold the same image id.
want_image=$(on 1 image ls -q 2>/dev/null | head -n1 || true)
for n in 2 3; do
  check "host $n fetched the manager's image (same id $want_image)" \
    test -n "$want_image" -a "$(on "$n" image ls -q 2>/dev/null | head -n1 || true)" = "$want_image"
done

echo "routing mesh"
mesh_ok() { [ "$(answered 3 1)" -eq 1 ]; }
check "the routing mesh on host 3 answers (within 30 s)" wait_for 30 mesh_ok
d=$(distinct_hostnames 3 12)
check "12 requests on host 3 reach 6 distinct replicas ($d)" test "$d" -eq 6
for n in 1 2; do
  check "12 requests on host $n all answered" test "$(answered "$n" 12)" -eq 12
done

echo "throughput (printed, not asserted)"
# mbits FROM_NS_ARGS... -- SERVER_NS_ARGS... ADDR: iperf3 for 3 s; the
# server and the client run with nsenter into the given network namespaces.
iperf_mbits() {
  local client_ns="$1" server_ns="$2" to="$3" server out i
  timeout 20 nsenter --net="$server_ns" iperf3 -s -1 -B "$to" >/dev/null 2>&1 &
  server=$!
  for i in $(seq 1 50); do
    nsenter --net="$server_ns" ss -Hltn 'sport = :5201' | grep -q . && break
    sleep 0.1
  done
  out=$(timeout 20 nsenter --net="$client_ns" iperf3 -c "$to" -t 3 -f m 2>&1 || true)
  wait "$server" 2>/dev/null || true
  awk '/receiver/ {for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1)} END {print v + 0}' <<<"$out"
}
# Container to container: a replica on host 1 and one on host 2, entered by
# their network namespaces only (the hello image has no iperf3; the host's
# binary runs in the replica's network), so the bytes cross veth, bridge,
# VXLAN, the underlay and back as the replicas' own traffic would.
c1=$(on 1 container ls -q | head -n1)
c2=$(on 2 container ls -q | head -n1)
p1=$(on 1 container inspect --format '{{.State.Pid}}' "$c1" 2>/dev/null || true)
p2=$(on 2 container inspect --format '{{.State.Pid}}' "$c2" 2>/dev/null || true)
ip2=$(on 2 container inspect --format '{{.NetworkSettings.Networks.getstartedlab_webnet.IPAddress}}' "$c2" 2>/dev/null || true)
underlay=$(iperf_mbits /run/netns/skl-1 /run/netns/skl-2 "$(addr 2)")
if [ -n "$p1" ] && [ -n "$p2" ] && [ -n "$ip2" ]; then
  overlay=$(iperf_mbits "/proc/$p1/ns/net" "/proc/$p2/ns/net" "$ip2")
else
  overlay="n/a (no replica pid or webnet address from container inspect)"
fi
printf '    iperf3 host 1 -> host 2: underlay %s Mbit/s, overlay replica %s -> %s (%s) %s Mbit/s\n' \
  "$underlay" "${c1:0:12}" "${c2:0:12}" "$ip2" "$overlay"

echo "cut host 3"
t0=$(now)
lab cut 3 >/dev/null
moved=""
all=""
deadline=$((SECONDS + 180))
while [ "$SECONDS" -lt "$deadline" ]; do
  per=$(running_per_node)
  on12=$(awk '$2 == "skiff-lab-1" || $2 == "skiff-lab-2" {s += $1} END {print s + 0}' <<<"$per")
  [ -z "$moved" ] && [ "$on12" -eq 6 ] && moved=$(since "$t0")
  if [ -n "$moved" ]; then
    a1=$(answered 1 12)
    a2=$(answered 2 12)
    if [ "$a1" -eq 12 ] && [ "$a2" -eq 12 ]; then
      all=$(since "$t0")
      break
    fi
  fi
  sleep 1
done
echo "    cut -> 6 replicas on hosts 1-2: ${moved:-never} s"
echo "    cut -> all requests answered again: ${all:-never} s"
check "after the cut, 6 replicas run on hosts 1 and 2 (within 180 s)" test -n "$moved"
check "after the cut, every one of 12 requests on host 1 and on host 2 is answered" test -n "$all"
on 1 node ls || true

echo "heal host 3"
lab heal 3 >/dev/null
node3_ready() { on 1 node ls | grep -qE ' skiff-lab-3 +Ready '; }
check "host 3 Ready again within 60 s" wait_for 60 node3_ready
most=0
for i in $(seq 1 20); do
  t=$(running_total)
  [ "$t" -gt "$most" ] && most=$t
  sleep 1
done
check "20 s after heal: never more than 6 running replicas (most seen: $most)" test "$most" -le 6
check "20 s after heal: exactly 6 running replicas ($(running_total))" test "$(running_total)" -eq 6
actual() { echo $(($(containers_on 1) + $(containers_on 2) + $(containers_on 3))); }
six_actual() { [ "$(actual)" -eq 6 ]; }
check "host 3's stale replicas reconciled away: 6 containers on the 3 hosts (within 60 s)" wait_for 60 six_actual

echo "loss 1% on host 2"
lab impair 2 loss 1% >/dev/null
a=$(answered 2 20)
check "loss 1% on host 2: 20 of 20 requests on host 2 answered ($a)" test "$a" -eq 20
lab impair 2 clear >/dev/null

echo "down"
lab down >/dev/null || fail "scripts/lab down exits 0"
check "no skl-* namespace left" test -z "$(ip netns list | grep -E '^skl-' || true)"
check "no skl-* cgroup left" test -z "$(ls -d /sys/fs/cgroup/*/skl-* /sys/fs/cgroup/skl-* 2>/dev/null || true)"
check "no netd of the lab left" bash -c 'for p in $0; do [ -e /proc/$p ] && [ "$(cat /proc/$p/comm)" = netd ] && exit 1; done; exit 0' "$netd_pids"
check "no folder left (/run/skiff-lab, /var/lib/skiff-lab)" test ! -e /run/skiff-lab -a ! -e /var/lib/skiff-lab

echo
if [ "$failures" -ne 0 ]; then
  echo "swarm_lab: $failures check(s) failed"
  exit 1
fi
echo "swarm_lab: all checks passed"
