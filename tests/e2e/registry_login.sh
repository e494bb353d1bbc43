#!/usr/bin/env bash
# `skiff login` / `skiff logout` against Docker's registry 2.8 (issue 12),
# as a user runs them: htpasswd users, over plain HTTP on loopback, over
# HTTPS with a CA under certs.d/HOST/ (refused without it), plain HTTP to a
# non-loopback registry only with --insecure-registry; a wrong password
# refused in the registry's words with nothing stored; config.json in
# docker's format, mode 0600. Everything runs in a network namespace this
# script makes and removes (also on failure; a watchdog if it is SIGKILLed).
#
# usage: registry_login.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (a network namespace)"
  exit 77
fi
source "$SRC/tests/e2e/lib.sh"
command -v docker-registry >/dev/null || fatal "docker-registry is not installed (scripts/install-deps)"
command -v htpasswd >/dev/null || fatal "htpasswd is not installed (scripts/install-deps)"

NS="skiff-e2e-$$"
WORK=$(mktemp -d "/tmp/$NS.XXXXXX")
registry_pids=()
on_exit() {
  local rc=$?
  e2e_finish "$rc"
  local p
  for p in "${registry_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${registry_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
  e2e_disarm
}
e2e_watchdog "$NS" 600 bash "$E2E_DIR/reap-lab.sh" lab "$NS"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
# A second address in the namespace, not on loopback: 198.51.100.0/24 is
# TEST-NET-2 and this namespace has no route out.
# (a veth pair whose both ends stay in the namespace: no dummy module needed).
ip netns exec "$NS" ip link add skt0 type veth peer name skt1
ip netns exec "$NS" ip addr add 198.51.100.7/24 dev skt0
ip netns exec "$NS" ip link set skt0 up
ip netns exec "$NS" ip link set skt1 up

htpasswd -Bbn alice secret >"$WORK/htpasswd" 2>/dev/null
# start_registry NAME ADDR [tls]: Docker's registry on ADDR in the namespace.
start_registry() {
  local name=$1 addr=$2 tls=${3:-}
  mkdir -p "$WORK/$name/data"
  {
    echo "version: 0.1"
    echo "log: {level: error}"
    echo "storage: {filesystem: {rootdirectory: $WORK/$name/data}}"
    echo "auth: {htpasswd: {realm: skiff-e2e, path: $WORK/htpasswd}}"
    echo "http:"
    echo "  addr: $addr"
    echo "  secret: skiff-e2e-secret"
    [ -z "$tls" ] || echo "  tls: {certificate: $WORK/server.crt, key: $WORK/server.key}"
  } >"$WORK/$name/config.yml"
  # ip netns exec execs the registry: $! is its pid.
  ip netns exec "$NS" docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
  registry_pids+=($!)
  local host=${addr%:*} port=${addr##*:}
  wait_for 10 ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/$host/$port"
}
# A CA, and a server certificate it signs for 127.0.0.1.
(
  cd "$WORK"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=skiff-e2e-ca -keyout ca.key -out ca.crt
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr
  printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.crt
) >/dev/null 2>&1
require "a registry over HTTP on 127.0.0.1:5000" start_registry plain 127.0.0.1:5000
require "a registry over HTTPS on 127.0.0.1:5443" start_registry tls 127.0.0.1:5443 tls
require "a registry over HTTP on 198.51.100.7:5000" start_registry remote 198.51.100.7:5000

export SKIFF_CONFIG="$WORK/config" SKIFF_CERTS_D="$WORK/certs.d"
mkdir -p "$SKIFF_CONFIG" "$SKIFF_CERTS_D"
skiff() { ip netns exec "$NS" "$SKIFF_BIN/skiff" "$@"; }
config="$SKIFF_CONFIG/config.json"

out=$(echo secret | skiff login 127.0.0.1:5000 -u alice --password-stdin 2>&1) || true
check "login over HTTP on loopback says Login Succeeded ($out)" test "$out" = "Login Succeeded"
check "config.json is mode 0600" test "$(stat -c %a "$config")" = 600
want_auth=$(printf 'alice:secret' | base64)
check "config.json holds docker's auths entry" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["auths"]["127.0.0.1:5000"]["auth"] == sys.argv[2]' \
  "$config" "$want_auth"

before=$(cat "$config")
expect_refused -F "a wrong password is refused in the registry's words" \
  "Error response from registry: 127.0.0.1:5000: unauthorized: authentication required" \
  bash -c "echo wrong | ip netns exec $NS $SKIFF_BIN/skiff login 127.0.0.1:5000 -u alice --password-stdin"
check "a refused login stores nothing" test "$(cat "$config")" = "$before"
expect_refused -F "no password and no terminal is refused" "Cannot perform an interactive login from a non TTY device" \
  bash -c "ip netns exec $NS $SKIFF_BIN/skiff login 127.0.0.1:5000 -u alice </dev/null"

# HTTPS: refused without the CA, accepted with it under certs.d/HOST/.
expect_refused "HTTPS with an unknown CA is refused, naming the certificate" "127\.0\.0\.1:5443: .*certificate" \
  bash -c "echo secret | ip netns exec $NS $SKIFF_BIN/skiff login 127.0.0.1:5443 -u alice --password-stdin"
mkdir -p "$SKIFF_CERTS_D/127.0.0.1:5443"
cp "$WORK/ca.crt" "$SKIFF_CERTS_D/127.0.0.1:5443/ca.crt"
out=$(echo secret | skiff login 127.0.0.1:5443 -u alice --password-stdin 2>&1) || true
check "HTTPS with the CA in certs.d/127.0.0.1:5443/ logs in ($out)" test "$out" = "Login Succeeded"

# Plain HTTP off loopback only when asked for.
expect_refused "plain HTTP to 198.51.100.7:5000 is not tried unasked" "198\.51\.100\.7:5000: " \
  bash -c "echo secret | ip netns exec $NS $SKIFF_BIN/skiff login 198.51.100.7:5000 -u alice --password-stdin"
check "a refused plain-HTTP login stores nothing" \
  python3 -c 'import json,sys; assert "198.51.100.7:5000" not in json.load(open(sys.argv[1]))["auths"]' "$config"
out=$(echo secret | skiff login 198.51.100.7:5000 -u alice --password-stdin --insecure-registry 198.51.100.7:5000 2>&1) || true
check "with --insecure-registry it logs in ($out)" test "$out" = "Login Succeeded"

start=$SECONDS
expect_refused "an unreachable registry is a clear error" "127\.0\.0\.1:5999: " \
  bash -c "echo secret | ip netns exec $NS $SKIFF_BIN/skiff login 127.0.0.1:5999 -u alice --password-stdin"
check "... within 10 s" test $((SECONDS - start)) -le 10

out=$(skiff logout 127.0.0.1:5000 2>&1) || true
check "logout removes the entry ($out)" test "$out" = "Removing login credentials for 127.0.0.1:5000"
check "... and it is gone from config.json" \
  python3 -c 'import json,sys; assert "127.0.0.1:5000" not in json.load(open(sys.argv[1]))["auths"]' "$config"
out=$(skiff logout 127.0.0.1:5000 2>&1) || true
check "a second logout says so ($out)" test "$out" = "Not logged in to 127.0.0.1:5000"

if [ "$failures" -ne 0 ]; then
  echo "registry_login: $failures check(s) failed"
  exit 1
fi
echo "registry_login: all checks passed"
