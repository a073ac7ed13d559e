#!/usr/bin/env bash
# The Debian package end to end, as root on a Debian 12 machine: build it from the release
# build (cpack), check what it holds (stripped binaries, debug symbols apart, conffiles,
# schemas, mappings, unit, sysusers/tmpfiles), install it, run the installed sluiced as the
# sluice account from the installed /etc/sluice/outer.toml, post a document with curl, then
# remove and purge the package. It writes /etc/sluice and /var/lib/sluice/outer: a CI machine,
# or one without a Sluice of its own.
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
deb=$(realpath "$build"/sluice_*_amd64.deb)
dbg=$(realpath "$build"/sluice-dbgsym_*_amd64.ddeb 2>/dev/null || true)
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
dbg_contents=$(dpkg-deb -c "$dbg")
grep -q '/usr/lib/debug/.build-id/.*\.debug$' <<< "$dbg_contents" || fail "the dbgsym package holds no debug symbols"
work=$(mktemp -d /tmp/sluice-deb-test.XXXXXX)
dpkg-deb -x "$deb" "$work/root"
sections=$(readelf -S "$work/root/usr/bin/sluiced")
grep -q '\.text' <<< "$sections" || fail "readelf read no sections of sluiced"
if grep -q '\.debug_info' <<< "$sections"; then fail "sluiced in the package is not stripped"; fi
step "holds stripped binaries, schemas, mappings, the unit, sysusers and tmpfiles; /etc/sluice/*.toml are conffiles"

apt-get install -y -qq "$deb" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "apt-get install"; }
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "${spid:-$pid}" 2>/dev/null || true
  if dpkg -s sluice > /dev/null 2>&1; then apt-get purge -y -qq sluice > /dev/null 2>&1 || true; fi
  rm -rf "$work" /var/lib/sluice/outer /etc/sluice/pki /etc/sluice/ferry
}
trap cleanup EXIT
getent passwd sluice > /dev/null || fail "no sluice account after install"
[ "$(stat -c '%a %U' /var/lib/sluice)" = "700 sluice" ] || fail "/var/lib/sluice is not 0700 sluice"
[ "$(stat -c '%a %U %G' /etc/sluice/pki)" = "750 root sluice" ] || fail "/etc/sluice/pki is not 0750 root:sluice"
[[ "$(/usr/bin/sluiced --version)" == "sluiced "* ]] || fail "sluiced --version"
[[ "$(/usr/bin/sluicectl --version)" == "sluicectl "* ]] || fail "sluicectl --version"
step "installed: sluice account, directories, $(/usr/bin/sluiced --version)"

# The installed configuration of the outer half, as an administrator completes it: this
# host's certificates and keys in /etc/sluice/pki (the development PKI here), the ferry keys
# made by sluicectl, and the ferry's listen address set to this host's.
"$src/certs/make-dev-pki.sh" "$work/pki" > "$work/pki.log" 2>&1 || { cat "$work/pki.log"; fail "dev PKI"; }
for f in gateway-outer.chain.pem ca-bundle.pem crl-chain.pem; do
  install -m 0640 -o root -g sluice "$work/pki/$f" /etc/sluice/pki/
done
install -m 0600 -o sluice -g sluice "$work/pki/gateway-outer.key.pem" /etc/sluice/pki/
/usr/bin/sluicectl ferry keygen --dir /etc/sluice/ferry outer > /dev/null
/usr/bin/sluicectl ferry keygen --dir "$work" inner > /dev/null
install -m 0644 "$work/inner.pub" /etc/sluice/ferry/inner.pub
chown sluice:sluice /etc/sluice/ferry/outer.key
sed -i 's#^listen = "tcp://10.0.0.1:7400"#listen = "tcp://127.0.0.1:7400"#' /etc/sluice/outer.toml
grep -q '^listen = "tcp://127.0.0.1:7400"' /etc/sluice/outer.toml || fail "the ferry address in /etc/sluice/outer.toml"
runuser -u sluice -- /usr/bin/sluiced --config /etc/sluice/outer.toml --check-config \
  || fail "the installed sluiced refuses the installed configuration"
chmod 0711 "$work"
runuser -u sluice -- /usr/bin/sluiced --config /etc/sluice/outer.toml > "$work/sluiced.log" 2>&1 &
pid=$!
# Up once it logs that its listeners are: read the log as it grows, for at most 20 s.
exec {log_fd}< <(exec tail -n +1 -F "$work/sluiced.log" 2>/dev/null)
tail_pid=$!
up=0
timeout 20 grep -q -m1 ' up: data port ' <&"$log_fd" && up=1
kill "$tail_pid" 2>/dev/null || true
exec {log_fd}<&-
[ "$up" = 1 ] || { cat "$work/sluiced.log"; fail "the installed sluiced did not start within 20 s"; }
spid=$(pgrep -u sluice -x sluiced)
[ -n "$spid" ] || fail "no sluiced process of the sluice account"
[ "$(ps -o user= -p "$spid" | tr -d ' ')" = sluice ] || fail "sluiced does not run as sluice"
curl_as() {  # curl_as <certificate name> <curl arguments...>
  local who="$1"; shift
  curl -sS --cacert "$work/pki/ca-bundle.pem" --cert "$work/pki/$who.chain.pem" \
       --key "$work/pki/$who.key.pem" "$@"
}
code=$(curl_as sender-440604-approval -o "$work/answer.json" -w '%{http_code}' \
  -H 'Content-Type: application/xml' --data-binary @"$src/schemas/examples/case.accept/valid-1.xml" \
  https://localhost:8443/v1/messages)
[ "$code" = 202 ] || { cat "$work/answer.json" "$work/sluiced.log"; fail "POST answered $code"; }
id=$(sed -n 's/.*"messageId":"\([^"]*\)".*/\1/p' "$work/answer.json")
curl_as admin-netadmin "https://localhost:8444/admin/v1/messages/$id" > "$work/status.json"
grep -q '"destination":"inner"' "$work/status.json" || { cat "$work/status.json"; fail "the document is not queued for the ferry"; }
[ "$(stat -c '%U %a' /var/lib/sluice/outer/store/data.mdb)" = "sluice 600" ] || fail "the store is not the sluice account's, 0600"
kill -TERM "$spid"; wait "$pid" || { cat "$work/sluiced.log"; fail "sluiced did not exit cleanly"; }; pid=
step "the installed sluiced ran as sluice from /etc/sluice/outer.toml: a document posted with curl got 202 and waits, stored, for the ferry"

apt-get remove -y -qq sluice > /dev/null 2>&1 || fail "apt-get remove"
[ ! -e /usr/bin/sluiced ] || fail "/usr/bin/sluiced is still there after remove"
[ -e /etc/sluice/outer.toml ] || fail "remove took the conffile /etc/sluice/outer.toml"
apt-get purge -y -qq sluice > /dev/null 2>&1 || fail "apt-get purge"
[ ! -e /etc/sluice/outer.toml ] || fail "purge left /etc/sluice/outer.toml"
[ -d /var/lib/sluice ] || fail "purge removed the stores in /var/lib/sluice (they are kept)"
step "removed (conffiles kept) and purged (conffiles gone, stores in /var/lib/sluice kept): passed"
