#!/usr/bin/env bash
# The lab's underlay as a network engineer uses it (issue 9): `scripts/lab up
# 3` without a swarm, the hosts reach each other on 198.51.100.0/24 and
# nothing else, loss measured with a ping burst, a rate limit measured with
# iperf3 both ways, delay refused plainly on a kernel without sch_netem (or
# measured where it has it), a cut host unreachable and back after heal,
# clear error texts, and `scripts/lab down` leaving no namespace, cgroup,
# process or folder. Every load is bounded (200 pings, 3 s of iperf3).
#
# usage: lab_underlay.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
export SKIFF_BIN
LAB="$SRC/scripts/lab"
for tool in nft ping iperf3 tc; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (scripts/install-deps)"; exit 1; }
done

source "$SRC/tests/e2e/lib.sh"
lab() { "$LAB" "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
addr() { echo "198.51.100.$((10 + $1))"; }

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
      echo "---- $log (last 20 lines) ----"
      tail -n 20 "$log"
    done
  fi
  lab down >/dev/null 2>&1 || true
  e2e_disarm
}
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

echo "up"
LAB_SWARM=0 lab up 3 || fatal "LAB_SWARM=0 scripts/lab up 3"
status=$(lab status)
echo "$status"
netd_pids=$(cat /run/skiff-lab/*/netd.pid)
check "3 netd pids recorded" test "$(wc -w <<<"$netd_pids")" -eq 3
for n in 1 2 3; do
  pid=$(cat "/run/skiff-lab/$n/netd.pid")
  check "host $n: pid $pid is netd itself, in namespace skl-$n" \
    bash -c "[ \"\$(cat /proc/$pid/comm)\" = netd ] && ip netns pids skl-$n | grep -qx $pid"
  check "host $n: status shows $(addr "$n")/24 and its pid" grep -qE "^$n +skl-$n +$(addr "$n")/24 +$pid +up" <<<"$status"
  check "host $n: no default route" test -z "$(ip -n "skl-$n" route show default)"
done
check "nothing of the lab in the root namespace (no 198.51.100 address, no veth)" \
  bash -c '! ip -o addr | grep -q 198\.51\.100\. && ! ip -o link | grep -qE " (host[0-9]+|eth0)@"'
expect_refused -F "a second up is refused and names the lab" "a lab is already up (namespaces: skl-1 skl-2 skl-3 skl-ul" \
  lab up 3
expect_refused "exec on a host that does not exist: 'lab: no host 4 (the lab has 3)'" '^lab: no host 4 \(the lab has 3\)$' \
  lab exec 4 true
check "exec sets SKIFF_HOST to the host's netd" \
  test "$(lab exec 2 printenv SKIFF_HOST)" = "unix:///run/skiff-lab/2/netd.sock"
check "exec puts the skiff binaries on PATH (skiff image ls on host 2 lists the hello image)" \
  grep -q 's3ich4n/get-started' <<<"$(lab exec 2 skiff image ls)"

echo "underlay"
for pair in "1 2" "1 3" "2 3" "3 1"; do
  set -- $pair
  check "host $1 reaches host $2 ($(addr "$2"))" quiet lab exec "$1" ping -q -c 3 -i 0.2 -W 1 "$(addr "$2")"
done

# loss_pct FROM TO: the packet loss (integer %) of 200 pings 10 ms apart.
loss_pct() {
  lab exec "$1" ping -q -n -c 200 -i 0.01 -W 1 -w 20 "$(addr "$2")" 2>/dev/null |
    sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' | cut -d. -f1
}

echo "loss"
lab impair 2 loss 30% >/dev/null
# 30% on each direction of host 2's link: a ping and its reply both cross
# it, so 1 - 0.7^2 = 51% of round trips are lost (200 samples: sd ~3.5%).
loss=$(loss_pct 1 2)
echo "    loss 30% on host 2: ${loss}% of 200 pings from host 1 lost (expected ~51%: 30% each way)"
check "loss 30%: between 35% and 67% of round trips lost" test "${loss:-0}" -ge 35 -a "${loss:-100}" -le 67
check "status shows the loss and counts dropped packets" \
  grep -qE '^2 .*loss 30% \(dropped [1-9][0-9]*\)' <<<"$(lab status)"
loss13=$(loss_pct 1 3)
check "host 3's link is not impaired (1 -> 3: ${loss13}% lost)" test "${loss13:-100}" -eq 0
lab impair 2 clear >/dev/null
loss=$(loss_pct 1 2)
echo "    after clear: ${loss}% lost"
check "loss 0% after clear" test "${loss:-100}" -eq 0
out=$(lab impair 2 loss 0.5%)
check "loss 0.5% becomes numgen random mod 1000 < 5" \
  grep -q 'numgen random mod 1000 < 5 counter' <<<"$(ip netns exec skl-2 nft list table netdev skiff_lab)"
lab impair 2 clear >/dev/null
check "clear removes the nft table" bash -c '! ip netns exec skl-2 nft list table netdev skiff_lab >/dev/null 2>&1'

# mbits FROM TO [-R]: iperf3 for 3 s from host FROM to a server on host TO
# (-R: the server sends); Mbit/s as the receiver counted them.
mbits() {
  local from="$1" to="$2" server i out
  shift 2
  lab exec "$to" timeout 20 iperf3 -s -1 -B "$(addr "$to")" >/dev/null 2>&1 &
  server=$!
  for i in $(seq 1 50); do
    ip netns exec "skl-$to" ss -Hltn 'sport = :5201' | grep -q . && break
    sleep 0.1
  done
  out=$(lab exec "$from" timeout 20 iperf3 -c "$(addr "$to")" -t 3 -f m "$@" 2>&1 || true)
  wait "$server" 2>/dev/null || true
  awk '/receiver/ {for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1)} END {print v + 0}' <<<"$out"
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= b)}'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a < b)}'; }

echo "rate"
free=$(mbits 1 2)
lab impair 2 rate 10mbit >/dev/null
into=$(mbits 1 2)
out_of=$(mbits 1 2 -R)
lab impair 2 clear >/dev/null
again=$(mbits 1 2)
printf '    iperf3 1 -> 2: %s Mbit/s unlimited; with rate 10mbit on host 2: %s Mbit/s into it, %s Mbit/s out of it; after clear %s Mbit/s\n' \
  "$free" "$into" "$out_of" "$again"
check "rate 10mbit: into host 2 below 12 Mbit/s ($into)" bash -c "$(declare -f lt ge); lt $into 12 && ge $into 5"
check "rate 10mbit: out of host 2 below 12 Mbit/s ($out_of)" bash -c "$(declare -f lt ge); lt $out_of 12 && ge $out_of 5"
check "unlimited: well above 10 Mbit/s ($free, after clear $again)" bash -c "$(declare -f ge); ge $free 100 && ge $again 100"

echo "delay"
netem=1
ip -n skl-2 link add skl-t-probe type veth peer name skl-t-probe1
tc -n skl-2 qdisc add dev skl-t-probe root netem delay 1ms >/dev/null 2>&1 || netem=0
ip -n skl-2 link del skl-t-probe
lab impair 2 rate 10mbit >/dev/null
rc=0
out=$(lab impair 2 delay 50ms 2>&1) || rc=$?
if [ "$netem" = 0 ]; then
  echo "    this kernel has no sch_netem: $out"
  check "delay without sch_netem exits non-zero" test "$rc" -ne 0
  check "delay without sch_netem says so plainly" \
    grep -qF "delay needs sch_netem, which this kernel does not have (CONFIG_NET_SCH_NETEM)" <<<"$out"
  check "the failed delay leaves the rate limit in place" \
    grep -q 'tbf' <<<"$(tc -n skl-2 qdisc show dev eth0)"
  check "the failed delay leaves no probe link" test -z "$(ip -n skl-2 -o link show type veth | grep -v ' eth0@' || true)"
  check "status does not claim a delay" bash -c '! "$0" status | grep -q "delay"' "$LAB"
else
  check "delay 50ms accepted" test "$rc" -eq 0
  rtt=$(lab exec 1 ping -q -c 5 -i 0.2 -W 2 "$(addr 2)" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
  echo "    delay 50ms on host 2: average RTT from host 1 ${rtt} ms"
  check "delay 50ms: RTT at least 50 ms ($rtt)" bash -c "$(declare -f ge); ge ${rtt:-0} 50"
fi
lab impair 2 clear >/dev/null
check "clear removes the qdiscs on both ends" \
  bash -c '! tc -n skl-2 qdisc show dev eth0 | grep -qE "tbf|netem" && ! tc -n skl-ul qdisc show dev host2 | grep -q tbf'

echo "cut and heal"
lab cut 3 >/dev/null
check "cut 3: host 1 cannot reach host 3" bash -c '! "$0" exec 1 ping -q -c 3 -i 0.2 -W 1 198.51.100.13 >/dev/null' "$LAB"
check "cut 3: host 3 cannot reach host 2" bash -c '! "$0" exec 3 ping -q -c 3 -i 0.2 -W 1 198.51.100.12 >/dev/null' "$LAB"
check "cut 3: hosts 1 and 2 still reach each other" quiet lab exec 1 ping -q -c 3 -i 0.2 -W 1 "$(addr 2)"
check "status shows host 3 cut" grep -qE '^3 .* cut ' <<<"$(lab status)"
lab heal 3 >/dev/null
check "heal 3: host 1 reaches host 3 again (within 5 s)" quiet lab exec 1 ping -q -c 1 -w 5 "$(addr 3)"
check "status shows host 3 up" grep -qE '^3 .* up ' <<<"$(lab status)"

echo "down"
lab down >/dev/null || fail "scripts/lab down exits 0"
check "no skl-* namespace left" test -z "$(ip netns list | grep -E '^skl-' || true)"
check "no skl-* cgroup left" test -z "$(ls -d /sys/fs/cgroup/*/skl-* /sys/fs/cgroup/skl-* 2>/dev/null || true)"
check "no netd of the lab left" bash -c 'for p in $0; do [ -e /proc/$p ] && [ "$(cat /proc/$p/comm)" = netd ] && exit 1; done; exit 0' "$netd_pids"
check "no folder left (/run/skiff-lab, /var/lib/skiff-lab)" test ! -e /run/skiff-lab -a ! -e /var/lib/skiff-lab
check "a second down is a no-op" quiet lab down

echo
if [ "$failures" -ne 0 ]; then
  echo "lab_underlay: $failures check(s) failed"
  exit 1
fi
echo "lab_underlay: all checks passed"
