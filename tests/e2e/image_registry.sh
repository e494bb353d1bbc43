#!/usr/bin/env bash
# The seed's image steps against Docker's registry 2.8 (issue 12), as a user
# runs them with docker's shortcuts (build, tag, images, rmi, login, push,
# pull, save, load): build, tag, a push refused before login, login, push
# (layer by layer, then the digest), skopeo reading what skiff pushed, a
# re-push that sends nothing, the image removed and pulled back with the same
# id, saved and loaded back with the same id, and the seed's stack deployed
# from the registry's image (pulled by the deploy, as the image is not here)
# answering on port 4000; push and pull over HTTPS (a TLS registry, the CA in
# certs.d, refused without it); a registry gone or silent named within 10 s;
# an image umoci made and skopeo pushed, pulled and run by `skiff run`.
# netd and the registry run in a lab namespace removed on exit (also on
# failure, and by a watchdog when the script is SIGKILLed).
#
# usage: image_registry.sh BIN_DIR SOURCE_DIR
set -Eeuo pipefail
SKIFF_BIN="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (namespaces, cgroups)"
  exit 77
fi
source "$SRC/scripts/lib/lab.sh"
source "$SRC/tests/e2e/lib.sh"
for tool in docker-registry htpasswd skopeo umoci; do
  command -v "$tool" >/dev/null || fatal "$tool is not installed (scripts/install-deps)"
done

registry_pid="" tls_pid=""
on_exit() {
  local rc=$?
  e2e_finish "$rc"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "---- netd log (last 40 lines) ----"
    tail -n 40 "${LAB_DIR:-/nonexistent}/netd.log" 2>/dev/null || true
  fi
  local p
  for p in $registry_pid $tls_pid; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  lab_cleanup
  e2e_disarm
}
e2e_watchdog "skiff-e2e-$$" 900 bash "$E2E_DIR/reap-lab.sh" lab "skiff-e2e-$$"
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
lab_up "skiff-e2e-$$"
lab_netd
# The CLI runs in the lab host too: login talks to the registry itself.
skiff() { ip netns exec "$LAB_NS" "$SKIFF_BIN/skiff" "$@"; }
export SKIFF_CONFIG="$LAB_DIR/config"
mkdir -p "$SKIFF_CONFIG"

# The registry, with user alice, on the lab host's loopback.
mkdir -p "$LAB_DIR/registry/data"
htpasswd -Bbn alice secret >"$LAB_DIR/registry/htpasswd" 2>/dev/null
cat >"$LAB_DIR/registry/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $LAB_DIR/registry/data}}
auth: {htpasswd: {realm: skiff-e2e, path: $LAB_DIR/registry/htpasswd}}
http: {addr: 127.0.0.1:5000, secret: skiff-e2e-secret}
EOF
# ip netns exec execs the registry: $! is its pid.
ip netns exec "$LAB_NS" docker-registry serve "$LAB_DIR/registry/config.yml" >"$LAB_DIR/registry/log" 2>&1 &
registry_pid=$!
require "a registry on the lab host's 127.0.0.1:5000" \
  wait_for 10 ip netns exec "$LAB_NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/5000"

name=127.0.0.1:5000/alice/get-started:part2
echo "build and tag"
out=$(skiff build -t friendlyhello "$SRC/examples/getstartedlab" 2>&1)
check "image build reports success" grep -q "Successfully tagged friendlyhello:latest" <<<"$out"
# image_id NAME:TAG: its short id, as image ls shows it.
image_id() { skiff images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | awk -v n="$1" '$1 == n {print $2}'; }
id=$(image_id friendlyhello:latest)
require "the built image has an id ($id)" test -n "$id"
skiff tag friendlyhello "$name"
check "images lists the registry's name" grep -qE '^127\.0\.0\.1:5000/alice/get-started +part2 ' <<<"$(skiff images)"

echo "push"
expect_refused "a push before login is refused in the registry's words" "unauthorized: authentication required" \
  skiff push "$name"
out=$(echo secret | skiff login 127.0.0.1:5000 -u alice --password-stdin 2>&1) || true
check "login succeeds ($out)" test "$out" = "Login Succeeded"
out=$(skiff push "$name" 2>&1)
echo "$out" | sed 's/^/    /'
check "push names the repository" grep -qx "The push refers to repository \[127.0.0.1:5000/alice/get-started\]" <<<"$out"
check "push reports each layer pushed" grep -qE '^[0-9a-f]{12}: Pushed$' <<<"$out"
digest=$(sed -nE 's/^part2: digest: (sha256:[0-9a-f]{64}) size: [0-9]+$/\1/p' <<<"$out")
check "push ends with the tag's digest and size" test -n "$digest"
inspect=$(ip netns exec "$LAB_NS" skopeo inspect --tls-verify=false --creds alice:secret "docker://$name" 2>&1) || true
check "skopeo inspect reads the pushed manifest: digest $digest" \
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["Digest"] == sys.argv[2], d' "$inspect" "$digest"
out=$(skiff push "$name" 2>&1)
check "a second push sends no layer again" grep -qE '^[0-9a-f]{12}: Layer already exists$' <<<"$out"
check "... and none is Pushed" bash -c "! grep -q ': Pushed$' <<<\"\$1\"" _ "$out"

echo "pull"
skiff rmi "$name" friendlyhello >/dev/null
check "the image is gone locally" bash -c "! grep -q get-started <<<\"\$1\"" _ "$(skiff image ls)"
out=$(skiff pull "$name" 2>&1)
echo "$out" | sed 's/^/    /'
check "pull reports the layers" grep -qE '^[0-9a-f]{12}: Pull complete$' <<<"$out"
check "pull names the digest" grep -qx "Digest: $digest" <<<"$out"
check "pull says it downloaded the image" grep -qx "Status: Downloaded newer image for $name" <<<"$out"
check "the pulled image has the built image's id ($id)" test "$(image_id "$name")" = "$id"
expect_refused "an unknown tag is refused in the registry's words" "manifest unknown" skiff pull 127.0.0.1:5000/alice/get-started:nope

echo "save and load"
skiff save -o "$LAB_DIR/hello.tar" "$name"
check "save writes a docker-archive whose manifest.json names the tag" \
  python3 -c 'import json,sys,tarfile; m=json.load(tarfile.open(sys.argv[1]).extractfile("manifest.json")); assert m[0]["RepoTags"] == [sys.argv[2]], m' \
  "$LAB_DIR/hello.tar" "$name"
skiff rmi "$name" >/dev/null
out=$(skiff load -i "$LAB_DIR/hello.tar" 2>&1)
check "load says docker's words ($out)" test "$out" = "Loaded image: $name"
check "the loaded image has the built image's id" test "$(image_id "$name")" = "$id"
raw=$(skopeo inspect --raw "oci-archive:$LAB_DIR/hello.tar" 2>&1) || true
check "skopeo inspect reads the saved archive as an OCI layout: its config digest is the image id ($id)" \
  python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert m["config"]["digest"].split(":")[1].startswith(sys.argv[2].split(":")[-1]), m' \
  "$raw" "$id"
skopeo copy "oci-archive:$LAB_DIR/hello.tar" "oci-archive:$LAB_DIR/skopeo-oci.tar:$name" >/dev/null 2>&1 || true
skiff rmi "$name" >/dev/null
out=$(skiff load -i "$LAB_DIR/skopeo-oci.tar" 2>&1) || true
check "load reads an OCI archive skopeo wrote, in docker's words ($out)" test "$out" = "Loaded image: $name"
expect_refused "loading a file that is no image archive names it" "invalid image archive" \
  skiff load -i "$LAB_DIR/registry/config.yml"
skiff save "$name" >"$LAB_DIR/stdout.tar"
check "save without -o writes the same archive to stdout" cmp -s "$LAB_DIR/hello.tar" "$LAB_DIR/stdout.tar"
skiff rmi "$name" >/dev/null
out=$(skiff load <"$LAB_DIR/stdout.tar" 2>&1)
check "load without -i reads stdin ($out)" test "$out" = "Loaded image: $name"
check "... the same image" test "$(image_id "$name")" = "$id"
expect_refused "load of an empty stdin says so" "requested load from stdin, but stdin is empty" \
  skiff load </dev/null

echo "push and pull over HTTPS"
# A second registry that speaks only TLS, with a certificate from a CA the
# test makes; netd trusts it through <data-root>/certs.d/HOST/ca.crt, the CLI's
# login through $SKIFF_CERTS_D, as docker's certs.d.
tls_dir="$LAB_DIR/tls"
mkdir -p "$tls_dir/data"
(cd "$tls_dir" &&
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=skiff-e2e-ca -keyout ca.key -out ca.crt &&
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
  printf 'subjectAltName=IP:127.0.0.1\n' >san.ext &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext \
    -out server.crt) >/dev/null 2>&1
sed -e "s|rootdirectory: [^}]*}|rootdirectory: $tls_dir/data}|" -e "s|http: .*|http: {addr: 127.0.0.1:5443, secret: skiff-e2e-secret, tls: {certificate: $tls_dir/server.crt, key: $tls_dir/server.key}}|" \
  "$LAB_DIR/registry/config.yml" >"$tls_dir/config.yml"
ip netns exec "$LAB_NS" docker-registry serve "$tls_dir/config.yml" >"$tls_dir/log" 2>&1 &
tls_pid=$!
require "a TLS registry on the lab host's 127.0.0.1:5443" \
  wait_for 10 ip netns exec "$LAB_NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/5443"
export SKIFF_CERTS_D="$LAB_DIR/data/certs.d"
tls_name=127.0.0.1:5443/alice/get-started:tls
skiff tag "$name" "$tls_name"
expect_refused "without the CA, login over HTTPS is refused naming the certificate" "certificate" \
  bash -c 'echo secret | ip netns exec "$1" "$0" login 127.0.0.1:5443 -u alice --password-stdin' "$SKIFF_BIN/skiff" "$LAB_NS"
mkdir -p "$SKIFF_CERTS_D/127.0.0.1:5443"
cp "$tls_dir/ca.crt" "$SKIFF_CERTS_D/127.0.0.1:5443/ca.crt"
out=$(echo secret | skiff login 127.0.0.1:5443 -u alice --password-stdin 2>&1) || true
check "with the CA in certs.d, login over HTTPS succeeds ($out)" test "$out" = "Login Succeeded"
out=$(skiff push "$tls_name" 2>&1) || true
check "push over HTTPS ends with the digest" grep -qE '^tls: digest: sha256:[0-9a-f]{64} size: [0-9]+$' <<<"$out"
skiff rmi "$tls_name" >/dev/null
out=$(skiff pull "$tls_name" 2>&1) || true
check "pull over HTTPS downloads it" grep -qx "Status: Downloaded newer image for $tls_name" <<<"$out"
check "... with the built image's id" test "$(image_id "$tls_name")" = "$id"
skiff rmi "$tls_name" >/dev/null
kill "$tls_pid" 2>/dev/null || true
wait "$tls_pid" 2>/dev/null || true
tls_pid=""
t0=$SECONDS
out=$(timeout 20 "$SKIFF_BIN/skiff" pull "$tls_name" 2>&1) || true
check "a registry that is gone is named ($out)" grep -q "127.0.0.1:5443" <<<"$out"
check "... within 10 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 10
# A registry whose packets vanish, the worst case: no answer at all. Its
# address is behind a veth pair inside the lab host whose far end drops what
# it is sent (frames to a MAC that is not its own); nothing leaves the lab.
lab_exec ip link add skiff-void type veth peer name skiff-void-end
lab_exec ip addr add 192.0.2.1/24 dev skiff-void
lab_exec ip link set skiff-void up
lab_exec ip link set skiff-void-end up
lab_exec ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev skiff-void nud permanent
t0=$SECONDS
out=$(timeout 60 "$SKIFF_BIN/skiff" pull 192.0.2.2:5000/alice/get-started:part2 2>&1) || true
check "a registry that does not answer is named ($out)" grep -q "192.0.2.2:5000" <<<"$out"
check "... in less than 10 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 10

echo "deploy from the registry's image"
skiff swarm init >/dev/null
sed "s|image: .*|image: 127.0.0.1:5000/alice/get-started:nope|" "$SRC/examples/getstartedlab/docker-compose.yml" \
  >"$LAB_DIR/docker-compose.yml"
expect_refused "a stack whose image the registry lacks is refused in the registry's words" "manifest unknown" \
  skiff stack deploy -c "$LAB_DIR/docker-compose.yml" lab
check "... and nothing is deployed" test -z "$(skiff stack ls --format '{{.Name}}')"
sed "s|image: .*|image: $name|" "$SRC/examples/getstartedlab/docker-compose.yml" >"$LAB_DIR/docker-compose.yml"
skiff rmi "$name" >/dev/null
check "the image is not here before the deploy" test -z "$(image_id "$name")"
out=$(skiff stack deploy -c "$LAB_DIR/docker-compose.yml" lab 2>&1)
check "deploy accepts the stack ($out)" grep -q "Creating service lab_web" <<<"$out"
check "the deploy pulled the image from the registry (id $id)" test "$(image_id "$name")" = "$id"
lab_replicas() { skiff service ls --format '{{.Name}} {{.Replicas}}' | grep -qx "lab_web 5/5"; }
require "5/5 replicas of the pulled image within 30 s" wait_for 30 lab_replicas
hosts=$(for _ in $(seq 1 10); do lab_exec curl -sS --max-time 5 http://127.0.0.1:4000/ | sed -n 's/.*Hostname: //p'; done | sort -u | wc -l)
check "port 4000 answers from the 5 replicas ($hosts)" test "$hosts" -eq 5

echo "an image other tools made, run by skiff"
# umoci makes an OCI image (the static hello as its one file, its command
# set by umoci), skopeo pushes it to the registry; skiff pulls and runs it.
umoci_name=127.0.0.1:5000/alice/umoci:v1
layout="$LAB_DIR/oci" bundle="$LAB_DIR/bundle"
made=0
{ umoci init --layout "$layout" && umoci new --image "$layout:v1" && umoci unpack --image "$layout:v1" "$bundle" &&
  cp "$SRC/examples/getstartedlab/hello" "$bundle/rootfs/hello" &&
  umoci repack --image "$layout:v1" "$bundle" &&
  umoci config --image "$layout:v1" --config.cmd /hello --config.cmd --hostname &&
  lab_exec skopeo copy --dest-tls-verify=false --dest-creds alice:secret "oci:$layout:v1" "docker://$umoci_name"; } \
  >"$LAB_DIR/umoci.log" 2>&1 || made=$?
require "umoci made the image and skopeo pushed it (see umoci.log: $made)" test "$made" -eq 0
out=$(skiff run --rm --name from-umoci "$umoci_name" 2>&1)
check "skiff run pulls and runs it: it prints its hostname ($(tail -n 1 <<<"$out"))" \
  grep -qE '^[0-9a-f]{12}$' <<<"$(tail -n 1 <<<"$out")"
check "... having pulled it from the registry" grep -q "Status: Downloaded newer image for $umoci_name" <<<"$out"

if [ "$failures" -ne 0 ]; then
  echo "image_registry: $failures check(s) failed"
  exit 1
fi
echo "image_registry: all checks passed"
