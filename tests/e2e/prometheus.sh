#!/usr/bin/env bash
# A real Prometheus server scraping netd (issue 11): the seed stack (5
# replicas, 4000:80) runs in a lab namespace, and Debian's `prometheus`
# runs in the same namespace with a generated config (scrape and evaluation
# every 1 s, examples/prometheus/rules.yml loaded) and temporary storage.
# Everything below is read back from Prometheus's HTTP API, as a user's
# dashboard would read it:
#   1. after exactly 100 requests through port 4000 (each its own
#      connection), sum(skiff_proxy_connections_total{port="4000/tcp"}) is
#      100 and the per-backend series number 5, 20 each (round robin);
#      rules.yml's groups are loaded and its recording rule has a series per
#      replica;
#   2. a replica killed while no client is connected to it: its
#      skiff_backend_up drops to 0 (it left the routing mesh when it exited;
#      netd reports it down until its slot has a ready replacement), the
#      replacement, a new container and so a new `backend` label, is up 1,
#      and the killed replica's series goes;
#   3. a replica killed while a client still holds a connection to it:
#      skiff_backend_up is 0 for it (out of rotation, its connection still
#      open) while its replacement runs and is up 1; its series goes when
#      that last connection closes.
# `backend` is the replica's container id (12 hex), not its address: a
# replacement that gets the killed replica's address (IPAM hands the freed
# address out again) still has a series of its own.
# rules.yml itself is checked by promtool in the examples_prometheus test
# (examples/prometheus/check.sh); here Prometheus only has to load it.
# Prints the figures it observed. Everything runs in a lab namespace removed
# on exit, also on failure, and by a watchdog when the script is SIGKILLed
# (a ctest timeout); Prometheus is stopped by its pid and its storage removed.
#
# usage: prometheus.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
for tool in prometheus curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool is not installed (scripts/install-deps installs it)"
    exit 1
  fi
done
source "$SRC/scripts/lib/lab.sh"
source "$SRC/tests/e2e/lib.sh"
# One decimal point for $EPOCHREALTIME and one collation for sort and comm.
export LC_ALL=C

PROM_PORT=9090 # inside the lab namespace: nothing else listens there
PROM_PID=""
PROM_DIR=""
HOLDER_PID=""
skiff() { "$SKIFF_BIN/skiff" "$@"; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# prom_api PATH [CURL ARGS...]: GET from Prometheus's HTTP API in the lab.
prom_api() {
  local path="$1"
  shift
  lab_exec curl -sS --max-time 5 -G "$@" "http://127.0.0.1:$PROM_PORT$path"
}
# prom_value EXPR: the value of an instant query that yields one sample;
# "none" when it yields nothing, "many:N" when N samples, "error" when the
# query failed. The answer's JSON is read with grep and sed (jq is not among
# scripts/install-deps' packages): a sample is "value":[TIME,"VALUE"].
prom_value() {
  local out values
  out=$(prom_api /api/v1/query --data-urlencode "query=$1" 2>/dev/null) || { echo error; return 0; }
  grep -qF '"status":"success"' <<<"$out" || { echo error; return 0; }
  mapfile -t values < <(grep -oE '"value":\[[^]]*\]' <<<"$out" | sed -E 's/.*,"([^"]*)"\]$/\1/')
  case "${#values[@]}" in
    0) echo none ;;
    1) echo "${values[0]}" ;;
    *) echo "many:${#values[@]}" ;;
  esac
}
# prom_is EXPR WANT: the query answers WANT now (last answer in PROM_LAST).
prom_is() {
  PROM_LAST=$(prom_value "$1")
  [ "$PROM_LAST" = "$2" ]
}
# prom_wait SECONDS EXPR WANT: polls (every 0.2 s) until the query answers
# WANT; non-zero and the last answer in PROM_LAST if it never did. Not
# through wait_for: PROM_LAST must be set in this shell.
prom_wait() {
  local deadline=$((SECONDS + $1))
  PROM_LAST=""
  while ! prom_is "$2" "$3"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
# check_prom SECONDS "description" EXPR WANT: a check that prints what
# Prometheus answered last when it fails.
check_prom() {
  if prom_wait "$1" "$3" "$4"; then
    pass "$2"
  else
    fail "$2: \`$3\` answered '$PROM_LAST' for $1 s, want '$4'"
  fi
}
# backends_in_prometheus: the backend labels of skiff_backend_up, sorted.
backends_in_prometheus() {
  prom_api /api/v1/query --data-urlencode 'query=skiff_backend_up{port="4000/tcp"}' |
    grep -oE '"backend":"[^"]*"' | cut -d'"' -f4 | sort
}
running_backends() { skiff container ls -q | cut -c1-12 | sort; }
# prom_backends_match: Prometheus has one skiff_backend_up series per
# running container, each 1, and no other (the replacement scraped).
prom_backends_match() {
  [ "$(running_backends | wc -l)" -eq 5 ] &&
    [ "$(backends_in_prometheus)" = "$(running_backends)" ] &&
    prom_is 'sum(skiff_backend_up{port="4000/tcp"})' 5
}

# stop_prometheus: SIGTERM to the prometheus process (ip netns exec execs
# it: $! is its pid, checked at start), SIGKILL after 30 s; then its config
# and storage go (its log stays in the lab folder until lab_cleanup).
# Sets prom_rc (its exit status).
stop_prometheus() {
  prom_rc=0
  if [ -n "$PROM_PID" ]; then
    kill -TERM "$PROM_PID" 2>/dev/null || true
    local _
    for _ in $(seq 1 300); do
      kill -0 "$PROM_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$PROM_PID" 2>/dev/null; then
      echo "prometheus (pid $PROM_PID) did not stop within 30 s; killing it"
      kill -KILL "$PROM_PID" 2>/dev/null || true
    fi
    wait "$PROM_PID" 2>/dev/null || prom_rc=$?
    PROM_PID=""
  fi
  if [ -n "$PROM_DIR" ] && [ -d "$PROM_DIR" ]; then
    rm -rf "$PROM_DIR"
    PROM_DIR=""
  fi
}
stop_holder() {
  [ -n "$HOLDER_PID" ] || return 0
  kill "$HOLDER_PID" 2>/dev/null || true
  wait "$HOLDER_PID" 2>/dev/null || true
  HOLDER_PID=""
}

on_exit() {
  local rc=$?
  e2e_finish "$rc"
  trap '' PIPE
  set +e
  stop_holder
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- prometheus log (last 30 lines) ----"
    tail -n 30 "${LAB_DIR:-/nonexistent}/prometheus.log" 2>/dev/null
    echo "---- netd log (last 60 lines) ----"
    tail -n 60 "${LAB_DIR:-/nonexistent}/netd.log" 2>/dev/null
  fi
  stop_prometheus
  lab_cleanup
  e2e_disarm
}
# The watchdog first: it removes the lab (prometheus too: it runs in the
# lab's namespace, and its storage is under the lab folder) if this script
# is SIGKILLed.
e2e_watchdog "skiff-e2e-$$" 1200 bash "$E2E_DIR/reap-lab.sh" lab "skiff-e2e-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-e2e-$$"

echo "seed stack"
lab_netd
require "netd runs in the lab host (pid $LAB_NETD_PID)" test "$(cat "/proc/$LAB_NETD_PID/comm")" = netd
out=$(skiff image build -t s3ich4n/get-started:pt02 "$SRC/examples/getstartedlab" 2>&1) ||
  fatal "image build of examples/getstartedlab: $(tail -n 5 <<<"$out")"
skiff swarm init >/dev/null
# The seed's compose file warns that its restart_policy sits under
# resources (as in the blog post); it is applied anyway.
out=$(skiff stack deploy -c "$SRC/examples/getstartedlab/docker-compose.yml" getstartedlab 2>&1) ||
  fatal "stack deploy of the seed stack: $(tail -n 5 <<<"$out")"
require "5/5 replicas within 30 s" wait_for 30 replicas_are 5/5

echo "prometheus"
PROM_DIR=$(mktemp -d "$LAB_DIR/prometheus.XXXXXX")
cat >"$PROM_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $SRC/examples/prometheus/rules.yml
scrape_configs:
  - job_name: skiff
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:9323"]
EOF
ip netns exec "$LAB_NS" prometheus --config.file="$PROM_DIR/prometheus.yml" \
  --storage.tsdb.path="$PROM_DIR/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
  >"$LAB_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
# `ip netns exec` enters the namespace and execs the command: the pid of the
# background job becomes prometheus itself (what stop_prometheus signals).
is_prometheus() { [ "$(cat "/proc/$PROM_PID/comm" 2>/dev/null)" = prometheus ]; }
require "prometheus runs as pid $PROM_PID (ip netns exec execs it)" wait_for 5 is_prometheus
prom_ready() { lab_exec curl -sSf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready"; }
require "prometheus is ready within 60 s" wait_for 60 prom_ready
require "prometheus scrapes netd (up{job=\"skiff\"} = 1)" prom_wait 30 'up{job="skiff"}' 1
# rules.yml's groups and rules, as Prometheus loaded them: every group by
# name, as many rules as the file has (each carries a "health"), none "err".
rules_file="$SRC/examples/prometheus/rules.yml"
rules_json=$(prom_api /api/v1/rules)
groups_missing=""
for g in $(sed -nE 's/^  - name: *([^ ]+) *$/\1/p' "$rules_file"); do
  grep -qF "\"name\":\"$g\"" <<<"$rules_json" || groups_missing+=" $g"
done
check "rules.yml's groups are loaded (missing:${groups_missing:- none})" test -z "$groups_missing"
rules_want=$(grep -cE '^ *- (record|alert):' "$rules_file")
rules_got=$(grep -oF '"health":' <<<"$rules_json" | wc -l)
check "Prometheus has rules.yml's $rules_want rules ($rules_got)" test "$rules_got" -eq "$rules_want"
check "no rule fails to evaluate" test "$(grep -cF '"health":"err"' <<<"$rules_json")" -eq 0
check_prom 15 "5 per-backend series, each 0 before any request" \
  'count(skiff_proxy_connections_total{port="4000/tcp"} == 0)' 5

echo "100 requests"
t0=$(now)
check "100 of 100 requests through port 4000 answered" test "$(answered 100)" -eq 100
check_prom 30 "sum(skiff_proxy_connections_total{port=\"4000/tcp\"}) answers 100" \
  'sum(skiff_proxy_connections_total{port="4000/tcp"})' 100
sum_after=$(since "$t0")
check_prom 5 "count(skiff_proxy_connections_total{port=\"4000/tcp\"}) answers 5" \
  'count(skiff_proxy_connections_total{port="4000/tcp"})' 5
check_prom 5 "round robin: each of the 5 backends counted 20" \
  'count(skiff_proxy_connections_total{port="4000/tcp"} == 20)' 5
# Two more scrapes: nothing else went through port 4000.
sleep 2
check_prom 1 "still 100 two scrapes later" 'sum(skiff_proxy_connections_total{port="4000/tcp"})' 100
check_prom 15 "the recording rule has a rate for each of the 5 replicas" \
  'count(backend:skiff_proxy_connections:rate1m{port="4000/tcp"} > 0)' 5

echo "a replica killed with no connection open"
ids_before=$(running_backends)
idle=$(head -n1 <<<"$ids_before")
pid=$(container_pid "$idle")
require "the replica $idle has pid $pid" test -d "/proc/$pid"
check_prom 5 "skiff_backend_up{backend=\"$idle\"} is 1 before" "skiff_backend_up{backend=\"$idle\"}" 1
t0=$(now)
kill -KILL "$pid"
# It left the proxy's list at once; netd keeps saying it is down until its
# slot's replacement is in the rotation, then its series goes.
check_prom 15 "skiff_backend_up{backend=\"$idle\"} drops to 0" "skiff_backend_up{backend=\"$idle\"}" 0
idle_zero=$(since "$t0")
check "a replacement with a new backend label is scraped, 5 series all 1, within 30 s" \
  wait_for 30 prom_backends_match
idle_replaced=$(since "$t0")
check_prom 15 "its skiff_backend_up series is gone once the replacement is up" \
  "skiff_backend_up{backend=\"$idle\"}" none
idle_gone=$(since "$t0")
new=$(comm -13 <(echo "$ids_before") <(running_backends))
check "one new container ($new) replaced $idle" test "$(grep -c . <<<"$new")" -eq 1

echo "a replica killed while a client holds a connection to it"
# The client opens a connection through port 4000 and sends nothing: the
# proxy connects it to the next replica in turn. It keeps it open (bounded:
# 60 s) until the file release exists.
lab_exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/4000
  for _ in $(seq 1 600); do [ -e "$1" ] && break; sleep 0.1; done' _ "$LAB_DIR/release" &
HOLDER_PID=$!
# The proxy's connection to a replica (port 80 on its ingress address).
held_backend_ip() { lab_exec ss -Htn state established '( dport = :80 )' | awk '{print $4}' | cut -d: -f1; }
one_held() { [ "$(held_backend_ip | grep -c .)" -eq 1 ]; }
require "the proxy connected the client to one replica" wait_for 5 one_held
ip=$(held_backend_ip)
held=""
for c in $(running_backends); do
  [ "$(skiff container inspect --format '{{.NetworkSettings.Networks.ingress.IPAddress}}' "$c")" = "$ip" ] && held=$c
done
require "the replica with ingress address $ip is one of ours ($held)" test -n "$held"
ids_before=$(running_backends)
pid=$(container_pid "$held")
require "the replica $held has pid $pid" test -d "/proc/$pid"
t0=$(now)
kill -KILL "$pid"
check_prom 15 "skiff_backend_up{backend=\"$held\"} is 0 (out of rotation, a connection still open)" \
  "skiff_backend_up{backend=\"$held\"}" 0
held_zero=$(since "$t0")
replaced() {
  local ids
  ids=$(running_backends)
  [ "$(grep -c . <<<"$ids")" -eq 5 ] && ! grep -qxF "$held" <<<"$ids"
}
check "a replacement container runs within 30 s" wait_for 30 replaced
check_prom 30 "5 series are 1: the 4 others and the replacement" \
  'count(skiff_backend_up{port="4000/tcp"} == 1)' 5
held_replaced=$(since "$t0")
check_prom 1 "the killed replica's series is still 0 while the client holds its connection" \
  "skiff_backend_up{backend=\"$held\"}" 0
t1=$(now)
touch "$LAB_DIR/release"
wait "$HOLDER_PID" || true
HOLDER_PID=""
check_prom 15 "its series is gone once the connection closed" "skiff_backend_up{backend=\"$held\"}" none
held_gone=$(since "$t1")
check "Prometheus has the 5 running replicas' series, all 1" wait_for 10 prom_backends_match

echo "prometheus: sum=100 series=5 (${sum_after} s after the first request)"
echo "prometheus: idle replica killed: backend_up 0 after ${idle_zero} s, replacement up after" \
  "${idle_replaced} s, series gone after ${idle_gone} s"
echo "prometheus: replica with an open connection killed: backend_up 0 after ${held_zero} s," \
  "replacement up after ${held_replaced} s, series gone ${held_gone} s after the connection closed"

echo "stop"
stop_prometheus
check "prometheus exits 0 on SIGTERM (status $prom_rc)" test "$prom_rc" -eq 0
e2e_stop_netd
check "netd exits 0 on SIGTERM (status $netd_rc)" test "$netd_rc" -eq 0

echo
if [ "$failures" -ne 0 ]; then
  echo "e2e: $failures check(s) failed"
  exit 1
fi
echo "e2e: all checks passed"
