#!/usr/bin/env bash
# The seed's part 2 (issue 12): one container run on its own with a
# published port, as a user runs it with docker's commands — run -d -p,
# curl, ps, stop, ps -a, start, restart, logs, rm — and the rules around it:
# the port is refused to a stack while the container holds it, a name is
# taken once, a running container is not removed without -f, a stopped one
# stays stopped when netd restarts and a running one comes back, run without
# -d prints the output and exits with the container's code (a signal to it
# stops the container), --rm leaves nothing, -m and --cpus reach the cgroup,
# bad flags are refused naming them;
# --network puts it on a stack's attachable overlay, whose replicas it
# reaches, and the network outlives its stack while the container uses it;
# network create makes an overlay of no stack, network rm refuses it in use.
# netd runs in a lab namespace removed on exit (also on failure, and by a
# watchdog when the script is SIGKILLed).
#
# usage: lone_container.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
source "$SRC/scripts/lib/lab.sh"
source "$SRC/tests/e2e/lib.sh"

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
e2e_watchdog "skiff-e2e-$$" 600 bash "$E2E_DIR/reap-lab.sh" lab "skiff-e2e-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-e2e-$$"
lab_netd
skiff() { "$SKIFF_BIN/skiff" "$@"; }

# hello_from: the hostname that answered on port 4000 ("" when none did).
hello_from() { lab_exec curl -sS --max-time 2 http://127.0.0.1:4000/ 2>/dev/null | sed -n 's/.*Hostname: //p'; }
answers() { [ -n "$(hello_from)" ]; }
refuses() { ! lab_exec curl -sS --max-time 2 http://127.0.0.1:4000/ >/dev/null 2>&1; }
# ps_row [-a] NAME: the container's row of `ps` as "ID STATE".
# runs NAME / not_listed NAME: its state as ps and ps -a show it.
runs() { [ "$(ps_row "$1" | cut -d' ' -f2)" = running ]; }
not_listed() { [ -z "$(ps_row "$1")" ]; }
ps_row() {
  local all=""
  [ "$1" = -a ] && all=-a && shift
  skiff ps $all --format '{{.Names}} {{.ID}} {{.State}}' | awk -v n="$1" '$1 == n {print $2, $3}'
}

skiff build -t friendlyhello "$SRC/examples/getstartedlab" >/dev/null
skiff swarm init >/dev/null

echo "run -d -p 4000:80"
id=$(skiff run -d -p 4000:80 --name hello -e NAME=lone -m 64m --cpus 0.5 friendlyhello)
check "run -d prints the container's id ($id)" grep -qE '^[0-9a-f]{64}$' <<<"$id"
require "port 4000 answers within 20 s" wait_for 20 answers
body=$(lab_exec curl -sS --max-time 2 http://127.0.0.1:4000/)
check "the container answers with its environment and its hostname ($body)" test "$body" = "Hello lone! Hostname: ${id:0:12}"
check "ps lists it running as hello" test "$(ps_row hello)" = "${id:0:12} running"
check "ps shows the published port" grep -q '\*:4000->80/tcp' <<<"$(skiff ps)"
check "service ls does not list it" bash -c "! grep -qw hello <<<\"\$1\"" _ "$(skiff service ls)"
check "stack ls does not list it" bash -c "! grep -qw hello <<<\"\$1\"" _ "$(skiff stack ls)"
pid=$(skiff container inspect --format '{{.State.Pid}}' hello)
mem=$(cat "$(cgroup_file_of "$pid" memory memory.limit_in_bytes)" 2>/dev/null ||
  cat "$(cgroup_file_of "$pid" memory memory.max)")
check "-m 64m is its cgroup's memory limit ($mem)" test "$mem" = 67108864

echo "the rules around it"
expect_refused "a second container on port 4000 is refused naming its holder" \
  "port 4000/tcp is already in use by service hello" skiff run -d -p 4000:80 --name other friendlyhello
sed -e "s/replicas: 5/replicas: 1/" -e "s|image: .*|image: friendlyhello|" "$SRC/examples/getstartedlab/docker-compose.yml" >"$LAB_DIR/docker-compose.yml"
expect_refused "a stack publishing port 4000 is refused" "port 4000/tcp is already in use by service hello" \
  skiff stack deploy -c "$LAB_DIR/docker-compose.yml" lab
expect_refused "the name is taken once" 'Conflict. The container name "/hello" is already in use' \
  skiff run -d --name hello friendlyhello
expect_refused "a running container is not removed without -f" "You cannot remove a running container hello" \
  skiff rm hello
expect_refused "a bad port names the flag" 'invalid argument for "-p, --publish" flag: invalid port "4000:x"' \
  skiff run -d -p 4000:x friendlyhello
expect_refused "a bad memory value names the flag" 'invalid argument "5Q" for "-m, --memory" flag' \
  skiff run -d -m 5Q friendlyhello
expect_refused "a bad restart policy names the flag" 'invalid argument "sometimes" for "--restart" flag' \
  skiff run -d --restart sometimes friendlyhello
expect_refused "an unknown container is named" "No such container: nope" skiff stop nope
check "nothing refused is left running" test "$(skiff ps -a -q | wc -l)" -eq 1

echo "stop, start, restart"
out=$(skiff stop -t 3 hello)
check "stop says the name once it has stopped ($out)" test "$out" = hello
check "ps no longer lists it" test -z "$(ps_row hello)"
check "ps -a lists it exited" test "$(ps_row -a hello)" = "${id:0:12} exited"
check "port 4000 no longer answers" refuses
# curl's exit 7: the connection was refused (no listener), not reset.
refused_conn() {
  local rc=0
  lab_exec curl -sS --max-time 2 http://127.0.0.1:4000/ >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 7 ]
}
check "... its port refuses connections, as a stopped docker container's does" wait_for 10 refused_conn
skiff start hello >/dev/null
require "started again, port 4000 answers within 20 s" wait_for 20 answers
second=$(hello_from)
check "a start is a new container ($second, was ${id:0:12})" test -n "$second" -a "$second" != "${id:0:12}"
skiff restart -t 3 hello >/dev/null
require "restarted, port 4000 answers within 20 s" wait_for 20 answers
third=$(hello_from)
check "restart replaced it ($third, was $second)" test -n "$third" -a "$third" != "$second"
check "logs shows what it printed" grep -q "listening on port 80 as $third" <<<"$(skiff logs hello)"

echo "netd restarts"
idle=$(skiff run -d --name idle friendlyhello /hello 8080)
require "idle runs" wait_for 20 runs idle
skiff stop idle >/dev/null
lab_stop_netd
lab_netd
require "after a netd restart port 4000 answers again within 20 s" wait_for 20 answers
sleep 2  # what would wrongly start has had its chance
check "a stopped container stays stopped" not_listed idle
check "... and ps -a still lists it, exited, with its id" test "$(ps_row -a idle)" = "${idle:0:12} exited"
check "... inspect shows it exited" test "$(skiff container inspect --format '{{.State.Status}}' idle)" = exited
check "... and logs what it printed before the restart" grep -q "listening on port 8080" <<<"$(skiff logs idle)"
skiff start idle >/dev/null
require "it starts when asked" wait_for 20 runs idle

echo "attached"
out=$(skiff run --name once friendlyhello /hello --hostname)
check "run without -d prints the container's output ($out)" grep -qE '^[0-9a-f]{12}$' <<<"$out"
check "... and leaves it exited" test "$(ps_row -a once | cut -d' ' -f2)" = exited
rc=0
skiff run --rm --name three friendlyhello /hello --exit 3 || rc=$?
check "run exits with the container's code (3: $rc)" test "$rc" -eq 3
check "--rm leaves nothing" test -z "$(ps_row -a three)"
skiff run -d --rm --name tmp friendlyhello >/dev/null
require "tmp runs" wait_for 20 runs tmp
skiff restart -t 2 tmp >/dev/null
check "restart of a --rm container restarts it" wait_for 20 runs tmp
skiff stop -t 2 tmp >/dev/null
check "... and its stop removes it" test -z "$(ps_row -a tmp)"
# A signal to an attached run stops the container, as docker's proxied
# SIGINT/SIGTERM does (a script's background job ignores SIGINT, so SIGTERM
# stands in here: the CLI treats both alike). hello exits 0 on its SIGTERM.
"$SKIFF_BIN/skiff" run --name ctrlc friendlyhello >"$LAB_DIR/ctrlc.out" 2>&1 &
ctrlc_pid=$!
require "the attached container runs" wait_for 20 runs ctrlc
kill -TERM "$ctrlc_pid"
wait_for 20 bash -c "! kill -0 $ctrlc_pid" || kill -KILL "$ctrlc_pid" 2>/dev/null || true
rc=0
wait "$ctrlc_pid" || rc=$?
check "SIGTERM to an attached run ends it with the container's code (0: $rc)" test "$rc" -eq 0
check "... having stopped the container" test "$(ps_row -a ctrlc | cut -d' ' -f2)" = exited
check "... whose output it printed" grep -q "listening on port 80" "$LAB_DIR/ctrlc.out"

echo "rm"
out=$(skiff rm -f hello idle once ctrlc)
check "rm -f says each name" test "$(tr '\n' ' ' <<<"$out")" = "hello idle once ctrlc "
check "ps -a lists nothing" test -z "$(skiff ps -a -q)"
check "port 4000 is free again" refuses
out=$(skiff stack deploy -c "$LAB_DIR/docker-compose.yml" lab 2>&1)
check "a stack may publish port 4000 now ($out)" grep -q "Creating service lab_web" <<<"$out"

echo "--network: a container on a stack's overlay"
cat >"$LAB_DIR/net.yml" <<'EOF'
version: "3.8"
services:
  web:
    image: friendlyhello
    deploy: {replicas: 2}
    networks: [back, closed]
networks:
  back: {attachable: true}
  closed: {}
EOF
skiff stack deploy -c "$LAB_DIR/net.yml" net >/dev/null
expect_refused "a network its stack did not make attachable is refused" \
  "Could not attach to network net_closed: network net_closed not manually attachable" \
  skiff run -d --network net_closed --name probe friendlyhello
expect_refused "an unknown network is named" "network nope not found" skiff run -d --network nope --name probe friendlyhello
skiff run -d --network net_back --name probe friendlyhello >/dev/null
# net_back's members as "NAME IP" lines, from network inspect.
members() {
  skiff network inspect --format '{{json .Containers}}' net_back |
    python3 -c 'import json,sys; [print(c["Name"].split(".")[0], c["IPv4Address"].split("/")[0]) for c in json.load(sys.stdin).values()]'
}
check "the stack's 2 replicas run" wait_for 20 bash -c "[ \"\$($SKIFF_BIN/skiff service ls --format '{{.Name}} {{.Replicas}}' | grep net_web)\" = 'net_web 2/2' ]"
probe_ip=$(members | awk '$1 == "probe" {print $2}')
replica_ips=$(members | awk '$1 == "net_web" {print $2}')
check "network inspect lists the container with its address ($probe_ip)" test -n "$probe_ip"
check "... beside the stack's 2 replicas ($(tr '\n' ' ' <<<"$replica_ips"))" test "$(wc -w <<<"$replica_ips")" -eq 2
probe_pid=$(container_pid probe)
seen=""
for ip in $replica_ips; do
  seen+="$(nsenter -t "$probe_pid" -n curl -sS --max-time 2 "http://$ip:80/" 2>&1 | sed -n 's/.*Hostname: //p') "
done
check "from inside it, each replica answers on its overlay address ($seen)" test "$(wc -w <<<"$seen")" -eq 2
out=$(skiff stack rm net 2>&1)
check "stack rm keeps the network the container uses ($(grep net_back <<<"$out"))" \
  grep -qx "Keeping network net_back: in use by container probe" <<<"$out"
check "... and removes the other" grep -qx "Removing network net_closed" <<<"$out"
check "net_closed goes" wait_for 20 bash -c "! $SKIFF_BIN/skiff network ls | grep -qw net_closed"
check "net_back stays while probe runs" grep -qw net_back <<<"$(skiff network ls)"
skiff rm -f probe >/dev/null
check "net_back goes with its last user" wait_for 20 bash -c "! $SKIFF_BIN/skiff network ls | grep -qw net_back"

echo "network create / rm"
out=$(skiff network create -d overlay --attachable --subnet 10.9.0.0/24 labnet 2>&1)
check "network create prints the new network's id ($out)" grep -qE '^[0-9a-z]{25}$' <<<"$out"
vni=$(skiff network inspect --format '{{.VNI}}' labnet)
check "its VXLAN device is up in the lab host (skvx-$vni)" wait_for 10 bash -c "ip -n $LAB_NS -d link show skvx-$vni | grep -q 'vxlan id $vni'"
expect_refused "a second network of that name is refused" "network with name labnet already exists" \
  skiff network create --attachable labnet
skiff run -d --network labnet --name p2 friendlyhello >/dev/null
check "a container joins it with an address of its subnet" \
  wait_for 20 bash -c "$SKIFF_BIN/skiff network inspect --format '{{json .Containers}}' labnet | grep -q '\"IPv4Address\":\"10.9.0.'"
expect_refused "network rm refuses a network in use, naming the user" "network labnet is in use by container p2" \
  skiff network rm labnet
skiff rm -f p2 >/dev/null
check "network rm removes it once unused" test "$(skiff network rm labnet 2>&1)" = labnet
check "... its device goes" wait_for 10 bash -c "! ip -n $LAB_NS link show skvx-$vni 2>/dev/null"

if [ "$failures" -ne 0 ]; then
  echo "lone_container: $failures check(s) failed"
  exit 1
fi
echo "lone_container: all checks passed"
