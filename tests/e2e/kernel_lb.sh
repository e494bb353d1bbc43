#!/usr/bin/env bash
# The seed stack with `netd --kernel-lb on` (issue 13): clients on the node
# in the cgroup it serves are connected straight to a replica by socklb's
# BPF programs, 2 by 2 over 5 replicas; clients outside it go through the
# proxy and share the rotation; Prometheus's connection counters count both
# paths (bytes are the proxy's); a replica SIGKILLed under a bounded load
# costs at most the connections it held; netd SIGKILLed leaves no program
# attached; and netd back with --kernel-lb off serves through the proxy.
# Everything runs in a lab namespace and a cgroup this script makes and
# removes (also on failure; a watchdog if the script is SIGKILLed).
#
# usage: kernel_lb.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups, BPF)"
  exit 77
fi
source "$SRC/scripts/lib/lab.sh"
source "$SRC/tests/e2e/lib.sh"

skiff() { "$SKIFF_BIN/skiff" "$@"; }

cg2=$(awk '$9 == "cgroup2" && $4 == "/" {print $5; exit}' /proc/self/mountinfo)
if [ -z "$cg2" ]; then
  echo "SKIP: no cgroup2 hierarchy is mounted"
  exit 77
fi
# The cgroup netd serves: <cgroup2 root>/<lab>/clients. lab_cleanup removes
# <root>/<lab> (and what is under it) with the lab.
clients_rel="skiff-e2e-$$/clients"
clients="$cg2/$clients_rel"

on_exit() {
  local rc=$?
  e2e_finish "$rc"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 40 lines) ----"
    tail -n 40 "${LAB_DIR:-/nonexistent}/netd.log" 2>/dev/null || true
  fi
  lab_cleanup
  rmdir "$clients" "$cg2/skiff-e2e-$$" 2>/dev/null || true
  e2e_disarm
}
e2e_watchdog "skiff-e2e-$$" 3600 bash "$E2E_DIR/reap-lab.sh" lab "skiff-e2e-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-e2e-$$"
mkdir -p "$clients"

# in_clients CMD...: runs CMD in the lab host, inside the served cgroup.
in_clients() { bash -c 'echo $BASHPID >"$0/cgroup.procs" && exec "$@"' "$clients" ip netns exec "$LAB_NS" "$@"; }
hostname_of() { sed -n 's/.*Hostname: //p'; }
metric_sum() {  # metric_sum FAMILY: the sum over getstartedlab_web's backends
  lab_exec curl -sS --max-time 5 http://127.0.0.1:9323/metrics |
    awk -v f="$1" '$1 ~ "^"f"\\{" && /service="getstartedlab_web"/ { s += $NF } END { printf "%d\n", s }'
}
programs_on() { bpftool cgroup show "$1" 2>/dev/null | grep -c socklb_ || true; }

lab_netd --kernel-lb on --kernel-lb-cgroup "$clients_rel"
require "netd says the kernel serves the lab's clients" \
  grep -q "kernel socket load balancing: clients in cgroup .*/$clients_rel" "$LAB_DIR/netd.log"
check "socklb's 4 programs are attached to the clients' cgroup (bpftool cgroup show)" \
  test "$(programs_on "$clients")" -eq 4
check "and to no other cgroup on the way (its parent has none)" test "$(programs_on "$cg2/skiff-e2e-$$")" -eq 0

skiff image build -t s3ich4n/get-started:pt02 "$SRC/examples/getstartedlab" >/dev/null
skiff swarm init >/dev/null
skiff stack deploy -c "$SRC/examples/getstartedlab/docker-compose.yml" getstartedlab >/dev/null
require "5/5 replicas within 30s" wait_for 30 replicas_are 5/5
# Every replica in rotation (ready) before counting turns.
require "the kernel path answers" wait_for 20 in_clients curl -sS --max-time 2 http://127.0.0.1:4000/
check "service inspect: port 4000 is served by socket-lb+proxy" \
  grep -q '"Path": "socket-lb+proxy"' <<<"$(skiff service inspect getstartedlab_web)"

echo "round robin through the kernel"
conns0=$(metric_sum skiff_proxy_connections_total)
bytes0=$(metric_sum skiff_proxy_bytes_total)
answers=()
for _ in $(seq 1 10); do answers+=("$(in_clients curl -sS --max-time 5 http://127.0.0.1:4000/ | hostname_of)"); done
printf '    %s\n' "${answers[@]}"
check "10 answers from 5 hostnames, each twice" \
  test "$(printf '%s\n' "${answers[@]}" | sort | uniq -c | awk '$1 == 2' | wc -l)" -eq 5
check "in turn: answer i+5 is answer i" test "${answers[*]:0:5}" = "${answers[*]:5:5}"
peer=$(in_clients curl -sS --max-time 5 -o /dev/null -w '%{remote_ip}:%{remote_port}' http://127.0.0.1:4000/)
check "the client sees the address it dialled (getpeername: $peer)" test "$peer" = 127.0.0.1:4000
sleep 1.2  # one scrape refresh
conns1=$(metric_sum skiff_proxy_connections_total)
bytes1=$(metric_sum skiff_proxy_bytes_total)
echo "    skiff_proxy_connections_total: $conns0 -> $conns1; skiff_proxy_bytes_total: $bytes0 -> $bytes1"
check "Prometheus counts the 11 kernel connections in skiff_proxy_connections_total" \
  test "$((conns1 - conns0))" -eq 11
check "and the proxy forwarded no byte of them" test "$bytes1" -eq "$bytes0"

echo "one rotation for both paths"
mixed=()
for i in $(seq 1 10); do
  if ((i % 2)); then
    mixed+=("$(in_clients curl -sS --max-time 5 http://127.0.0.1:4000/ | hostname_of)")
  else
    mixed+=("$(lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/ | hostname_of)")
  fi
done
printf '    %s\n' "${mixed[@]}"
check "kernel and proxy turns alternate and still land 2 by 2 over 5" \
  test "$(printf '%s\n' "${mixed[@]}" | sort | uniq -c | awk '$1 == 2' | wc -l)" -eq 5
check "in turn across both paths" test "${mixed[*]:0:5}" = "${mixed[*]:5:5}"
sleep 1.2
check "the proxied half moved bytes through the proxy" test "$(metric_sum skiff_proxy_bytes_total)" -gt "$bytes1"

echo "a replica killed under load"
cid=$(skiff container ls --format '{{.ID}}' | head -n1)
pid=$(container_pid "$cid")
out="$LAB_DIR/wrk.out"
# Bounded: 8 connections, 6 s, a new connection per request.
in_clients wrk -t2 -c8 -d6s -H 'Connection: close' http://127.0.0.1:4000/ >"$out" 2>&1 &
load=$!
sleep 2
echo "    SIGKILL at $(date -u +%H:%M:%S.%3N)"
kill -KILL "$pid"
wait "$load" || true
reqs=$(awk '/requests in/ {print $1}' "$out")
errs=$(awk '/Socket errors/ {gsub(/[^0-9 ]/, " "); s = 0; for (i = 1; i <= NF; i++) s += $i; print s}' "$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
errs=${errs:-0}
non2xx=${non2xx:-0}
echo "    $reqs requests, $errs socket errors, $non2xx non-2xx (8 connections; one replica SIGKILLed at 2 s)"
check "the load ran (more than 1000 requests)" test "${reqs:-0}" -gt 1000
grep -E "Socket errors" "$out" | sed 's/^/    wrk: /' || true
grep -E "exited" "$LAB_DIR/netd.log" | tail -n 3 | sed 's/^/    netd: /' || true
check "the kill cost at most the 8 connections it could hold" test "$((errs + non2xx))" -le 8
check "a replacement runs" wait_for 15 replicas_are 5/5

echo "netd killed: nothing stays attached"
kill -KILL "$LAB_NETD_PID"
wait "$LAB_NETD_PID" 2>/dev/null || true
LAB_NETD_PID=""
check "no socklb program is left on the cgroup" wait_for 5 test "$(programs_on "$clients")" -eq 0
# The replicas netd left behind (it was SIGKILLed) are reaped by the next
# netd's start-up, as after any crash.
lab_netd --kernel-lb off
check "netd back with --kernel-lb off: 5/5 within 30s" wait_for 30 replicas_are 5/5
check "service inspect: port 4000 is served by the proxy" \
  grep -q '"Path": "proxy"' <<<"$(skiff service inspect getstartedlab_web)"
check "a client in the cgroup is answered through the proxy" \
  wait_for 20 in_clients curl -sS --max-time 2 http://127.0.0.1:4000/
check "no program attached after a run with --kernel-lb off" test "$(programs_on "$clients")" -eq 0

skiff stack rm getstartedlab >/dev/null
lab_stop_netd
[ "$failures" -eq 0 ] || exit 1
