#!/usr/bin/env bash
# The Debian package end to end, as root on a Debian 12 machine: build it from the release
# build (cpack), check what it holds (stripped binaries, debug symbols apart, conffiles,
# schemas, mappings, unit, sysusers/tmpfiles), install it, run the installed sluiced as the
# sluice account on a configuration of its own, post a document with curl and see it
# delivered, then remove and purge the package.
#   tests/package/deb-test.sh [BUILD_DIR]     (default build-release)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
build="${1:-build-release}"
fail() { echo "deb-test: FAILED: $*" >&2; exit 1; }
step() { echo "deb-test: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs a package)"
rm -f "$build"/sluice_*.deb "$build"/sluice-dbgsym_*.ddeb
(cd "$build" && cpack -G DEB > cpack.log 2>&1) || { cat "$build/cpack.log"; fail "cpack"; }
deb=$(ls "$build"/sluice_*_amd64.deb)
dbg=$(ls "$build"/sluice-dbgsym_*_amd64.ddeb 2>/dev/null || true)
[ -n "$dbg" ] || fail "no sluice-dbgsym package beside $deb"
step "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) and $(basename "$dbg") ($(du -k "$dbg" | cut -f1) KiB)"

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/sluiced ./usr/bin/sluicectl ./usr/share/sluice/schemas/envelope-1.xsd \
         ./usr/share/sluice/mappings/tax-register-csv-gbk.toml ./etc/sluice/outer.toml \
         ./etc/sluice/inner.toml ./lib/systemd/system/sluiced@.service \
         ./usr/lib/sysusers.d/sluice.conf ./usr/lib/tmpfiles.d/sluice.conf \
         ./usr/share/doc/sluice/README.md; do
  grep -q " $f\$" <<< "$contents" || fail "the package does not hold $f"
done
conffiles=$(dpkg-deb -I "$deb" conffiles)
grep -qx /etc/sluice/outer.toml <<< "$conffiles" || fail "/etc/sluice/outer.toml is not a conffile"
grep -qx /etc/sluice/inner.toml <<< "$conffiles" || fail "/etc/sluice/inner.toml is not a conffile"
dpkg-deb -c "$dbg" | grep -q '/usr/lib/debug/.build-id/' || fail "the dbgsym package holds no debug symbols"
work=$(mktemp -d /tmp/sluice-deb-test.XXXXXX)
dpkg-deb -x "$deb" "$work/root"
if readelf -S "$work/root/usr/bin/sluiced" | grep -q '\.debug_info'; then
  fail "sluiced in the package is not stripped"
fi
step "holds stripped binaries, schemas, mappings, the unit, sysusers and tmpfiles; /etc/sluice/*.toml are conffiles"

apt-get install -y -qq "$deb" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "apt-get install"; }
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null || true
  if dpkg -s sluice > /dev/null 2>&1; then apt-get purge -y -qq sluice > /dev/null 2>&1 || true; fi
  rm -rf "$work" /var/lib/sluice/deb-test
}
trap cleanup EXIT
getent passwd sluice > /dev/null || fail "no sluice account after install"
[ "$(stat -c '%a %U' /var/lib/sluice)" = "700 sluice" ] || fail "/var/lib/sluice is not 0700 sluice"
[ "$(stat -c '%a %U %G' /etc/sluice/pki)" = "750 root sluice" ] || fail "/etc/sluice/pki is not 0750 root:sluice"
/usr/bin/sluiced --version | grep -q '^sluiced ' || fail "sluiced --version"
/usr/bin/sluicectl --version | grep -q '^sluicectl ' || fail "sluicectl --version"
step "installed: sluice account, directories, $(/usr/bin/sluiced --version)"

# A configuration of its own: the development PKI, readable by the sluice account.
"$src/certs/make-dev-pki.sh" "$work/pki" > "$work/pki.log" 2>&1 || { cat "$work/pki.log"; fail "dev PKI"; }
chown -R root:sluice "$work/pki"; chmod 0750 "$work/pki"; chmod 0640 "$work"/pki/*.pem
chmod 0711 "$work"
for k in "$work"/pki/*.key.pem; do chown sluice "$k"; chmod 0600 "$k"; done
install -d -m 0700 -o sluice -g sluice /var/lib/sluice/deb-test /var/lib/sluice/deb-test/out
cat > "$work/sluiced.toml" <<TOML
[gateway]
id = "sluice-outer"
state_dir = "/var/lib/sluice/deb-test"
schema_dir = "/usr/share/sluice/schemas"
[listen.data]
port = 0
cert = "$work/pki/gateway-outer.chain.pem"
key = "$work/pki/gateway-outer.key.pem"
client_ca = "$work/pki/ca-bundle.pem"
crls = ["$work/pki/crl-chain.pem"]
[listen.admin]
enabled = false
[store]
path = "/var/lib/sluice/deb-test/store"
map_size_mb = 64
max_queued_mb = 16
[signing]
cert = "$work/pki/gateway-outer.chain.pem"
key = "$work/pki/gateway-outer.key.pem"
trust = "$work/pki/ca-bundle.pem"
crls = ["$work/pki/crl-chain.pem"]
[[destination]]
name = "archive"
kind = "spool"
path = "/var/lib/sluice/deb-test/out"
[[route]]
doc_type = "*"
destinations = ["archive"]
[[sender]]
id = "440604/approval"
doc_types = ["case.*"]
TOML
chmod 0644 "$work/sluiced.toml"
runuser -u sluice -- /usr/bin/sluiced --config "$work/sluiced.toml" --check-config \
  || fail "the installed sluiced refuses the test configuration"
install -d -m 0700 -o sluice -g sluice "$work/run"
runuser -u sluice -- /usr/bin/sluiced --config "$work/sluiced.toml" --ready-file "$work/run/ready" \
  > "$work/sluiced.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -f "$work/run/ready" ] && break; sleep 0.05; done
[ -f "$work/run/ready" ] || { cat "$work/sluiced.log"; fail "the installed sluiced did not start"; }
port=$(sed -n 's/.*"dataPort":\([0-9]*\).*/\1/p' "$work/run/ready")
[ "$(ps -o user= -p "$pid")" = sluice ] || fail "sluiced does not run as sluice"
code=$(curl -sS -o "$work/answer.json" -w '%{http_code}' --cacert "$work/pki/ca-bundle.pem" \
  --cert "$work/pki/sender-440604-approval.chain.pem" --key "$work/pki/sender-440604-approval.key.pem" \
  -H 'Content-Type: application/xml' --data-binary @"$src/schemas/examples/case.accept/valid-1.xml" \
  "https://localhost:$port/v1/messages")
[ "$code" = 202 ] || { cat "$work/answer.json" "$work/sluiced.log"; fail "POST answered $code"; }
for _ in $(seq 200); do [ -n "$(ls /var/lib/sluice/deb-test/out 2>/dev/null)" ] && break; sleep 0.05; done
[ -n "$(ls /var/lib/sluice/deb-test/out)" ] || { cat "$work/sluiced.log"; fail "nothing delivered"; }
[ "$(stat -c '%U' /var/lib/sluice/deb-test/store/data.mdb)" = sluice ] || fail "the store is not the sluice account's"
kill -TERM "$pid"; wait "$pid" || fail "sluiced did not exit cleanly"; pid=
step "the installed sluiced ran as sluice: a document posted with curl got 202 and was delivered"

apt-get remove -y -qq sluice > /dev/null 2>&1 || fail "apt-get remove"
[ ! -e /usr/bin/sluiced ] || fail "/usr/bin/sluiced is still there after remove"
[ -e /etc/sluice/outer.toml ] || fail "remove took the conffile /etc/sluice/outer.toml"
apt-get purge -y -qq sluice > /dev/null 2>&1 || fail "apt-get purge"
[ ! -e /etc/sluice/outer.toml ] || fail "purge left /etc/sluice/outer.toml"
[ -d /var/lib/sluice ] || fail "purge removed the stores in /var/lib/sluice (they are kept)"
step "removed (conffiles kept) and purged (conffiles gone, stores in /var/lib/sluice kept): passed"
