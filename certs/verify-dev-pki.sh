#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && pass ... || fail ..." is safe: pass() always succeeds
# verify-dev-pki.sh — sanity-check a PKI produced by make-dev-pki.sh.
#
# Usage: verify-dev-pki.sh OUTDIR
#
# Checks, with `openssl verify -crl_check_all -CAfile ca-bundle.pem -CRLfile crl-chain.pem`,
# that good certificates verify and that every test certificate fails for the
# intended reason; also checks file modes, key/cert pairing, key type, subjects,
# CA extensions and CRL contents. Exits non-zero on any unexpected result.
set -uo pipefail

prog=verify-dev-pki
[[ $# -eq 1 && $1 != -* ]] || { sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
D=$1
[[ -d "$D" ]] || { echo "$prog: no such directory: $D" >&2; exit 2; }
cd "$D" || exit 2

npass=0 nfail=0
pass() { npass=$((npass + 1)); printf '  ok    %s\n' "$*"; }
fail() { nfail=$((nfail + 1)); printf '  FAIL  %s\n' "$*"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/verify-dev-pki.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

BASE=(-crl_check_all -CAfile ca-bundle.pem -CRLfile crl-chain.pem)

# expect LABEL WANT openssl-verify-args...
#   WANT = OK, or the numeric X509_V_ERR code of the FIRST error reported.
expect() {
  local label=$1 want=$2; shift 2
  local out rc got line
  out=$(openssl verify "$@" 2>&1); rc=$?
  line=$(grep -m1 -E '^error [0-9]+ at ' <<<"$out")
  if [[ $rc -eq 0 ]] && grep -q ': OK$' <<<"$out"; then
    got=OK line=$(tail -n1 <<<"$out")
  else
    got=$(sed -E 's/^error ([0-9]+) at.*/\1/' <<<"$line")
    [[ -n "$got" ]] || { got="rc=$rc"; line=$(tr '\n' ' ' <<<"$out"); }
  fi
  if [[ "$got" == "$want" ]]; then
    pass "$label -> $line"
  else
    fail "$label: expected ${want}, got: $line"
  fi
}

mode_of() { stat -c %a "$1" 2>/dev/null || stat -f %Lp "$1"; }

CAS=(root intermediate rogue-ca)
GATEWAYS=(gateway-outer gateway-inner)
SENDERS=(sender-440604-approval sender-440605-tax sender-440600-market sender-440600-supervision)
TESTS=(sender-440606-revoked sender-440607-expired sender-440608-notyet sender-440609-selfsigned
       sender-440610-rogue sender-440611-nosign)
LEAVES=("${GATEWAYS[@]}" "${SENDERS[@]}" admin-netadmin "${TESTS[@]}")

echo "== files and modes ($D)"
missing=0
for f in ca-bundle.pem root.crl.pem intermediate.crl.pem crl-chain.pem intermediate.expired-crl.pem \
         _ca/openssl.cnf _ca/COMPLETE; do
  [[ -f $f ]] || { fail "missing $f"; missing=1; }
done
for e in "${CAS[@]}" "${LEAVES[@]}"; do
  for s in key.pem cert.pem; do [[ -f $e.$s ]] || { fail "missing $e.$s"; missing=1; }; done
done
for e in "${LEAVES[@]}"; do [[ -f $e.chain.pem ]] || { fail "missing $e.chain.pem"; missing=1; }; done
[[ $missing -eq 0 ]] && pass "all expected files present"
if [[ $missing -ne 0 ]]; then echo "$prog: incomplete PKI, stopping"; exit 1; fi

bad="" keys=(./*.key.pem)
for k in "${keys[@]}"; do k=${k#./}; [[ $(mode_of "$k") == 600 ]] || bad+=" $k($(mode_of "$k"))"; done
[[ -z $bad ]] && pass "all ${#keys[@]} *.key.pem are mode 0600" || fail "key files not 0600:$bad"
bad=""
for c in *.cert.pem *.chain.pem *.crl.pem ca-bundle.pem crl-chain.pem; do
  [[ $(mode_of "$c") == 644 ]] || bad+=" $c($(mode_of "$c"))"
done
[[ -z $bad ]] && pass "certificates, chains and CRLs are mode 0644" || fail "public files not 0644:$bad"

echo "== keys"
keytype=$(sed -n 's/^keytype=//p' _ca/COMPLETE)
case $keytype in
  ecdsa-p256) want_key='^Private-Key: \(256 bit' want_alg=id-ecPublicKey ;;
  rsa-2048)   want_key='^Private-Key: \(2048 bit' want_alg=rsaEncryption ;;
  *)          fail "unknown keytype '$keytype' in _ca/COMPLETE"; want_key=x want_alg=x ;;
esac
bad=""
for e in "${CAS[@]}" "${LEAVES[@]}"; do
  head -n1 "$e.key.pem" | grep -qx -- '-----BEGIN PRIVATE KEY-----' || bad+=" $e(not-unencrypted-PKCS#8)"
  openssl pkey -in "$e.key.pem" -noout -text 2>/dev/null | head -n1 | grep -qE "$want_key" || bad+=" $e(key-type)"
  openssl x509 -in "$e.cert.pem" -noout -text | grep -q "Public Key Algorithm: $want_alg" || bad+=" $e(cert-alg)"
  [[ "$(openssl pkey -in "$e.key.pem" -pubout 2>/dev/null)" == "$(openssl x509 -in "$e.cert.pem" -noout -pubkey)" ]] \
    || bad+=" $e(key/cert mismatch)"
done
[[ -z $bad ]] && pass "all keys: unencrypted PKCS#8, $keytype, match their certificates" || fail "keys:$bad"

echo "== CA certificates, bundle, chains"
subj() { openssl x509 -in "$1" -noout -subject -nameopt compat | sed 's/^subject=//'; }
issuer() { openssl x509 -in "$1" -noout -issuer -nameopt compat | sed 's/^issuer=//'; }
split_pem() { awk -v p="$2" '/-----BEGIN/{n++} {print > (p n ".pem")}' "$1"; }
txt=$(openssl x509 -in root.cert.pem -noout -text)
if grep -A1 'Basic Constraints: critical' <<<"$txt" | grep -qx ' *CA:TRUE' \
   && grep -A1 'Key Usage: critical' <<<"$txt" | grep -qx ' *Certificate Sign, CRL Sign' \
   && [[ "$(subj root.cert.pem)" == "/C=CN/O=Sluice Dev Government CA/CN=Sluice Dev Root CA" ]] \
   && [[ "$(issuer root.cert.pem)" == "$(subj root.cert.pem)" ]]; then
  pass "root: self-signed, critical CA:TRUE, critical keyCertSign+cRLSign"
else fail "root certificate extensions/subject"; fi
txt=$(openssl x509 -in intermediate.cert.pem -noout -text)
if grep -A1 'Basic Constraints: critical' <<<"$txt" | grep -qx ' *CA:TRUE, pathlen:0' \
   && grep -A1 'Key Usage: critical' <<<"$txt" | grep -qx ' *Certificate Sign, CRL Sign' \
   && [[ "$(subj intermediate.cert.pem)" == "/C=CN/O=Sluice Dev Government CA/CN=Sluice Dev Issuing CA" ]]; then
  pass "intermediate: critical CA:TRUE pathlen:0, critical keyCertSign+cRLSign"
else fail "intermediate certificate extensions/subject"; fi
expect "intermediate against root" OK -crl_check_all -CAfile root.cert.pem -CRLfile root.crl.pem intermediate.cert.pem

split_pem ca-bundle.pem "$TMP/bundle"
if [[ -f $TMP/bundle2.pem && ! -f $TMP/bundle3.pem ]] \
   && cmp -s "$TMP/bundle1.pem" root.cert.pem && cmp -s "$TMP/bundle2.pem" intermediate.cert.pem; then
  pass "ca-bundle.pem = root + intermediate (rogue-ca not included)"
else fail "ca-bundle.pem is not exactly root + intermediate"; fi

bad=""
for e in "${LEAVES[@]}"; do
  rm -f "$TMP"/chain*.pem; split_pem "$e.chain.pem" "$TMP/chain"
  cmp -s "$TMP/chain1.pem" "$e.cert.pem" || { bad+=" $e(leaf)"; continue; }
  case $e in
    sender-440609-selfsigned) [[ ! -f $TMP/chain2.pem ]] || bad+=" $e(extra)" ;;
    sender-440610-rogue)      cmp -s "$TMP/chain2.pem" rogue-ca.cert.pem && [[ ! -f $TMP/chain3.pem ]] || bad+=" $e(2nd)" ;;
    *)                        cmp -s "$TMP/chain2.pem" intermediate.cert.pem && [[ ! -f $TMP/chain3.pem ]] || bad+=" $e(2nd)" ;;
  esac
done
[[ -z $bad ]] && pass "every *.chain.pem = leaf + its issuing CA (self-signed: leaf only)" || fail "chain files:$bad"

for g in "${GATEWAYS[@]}"; do
  expect "$g.chain.pem against root only (TLS presentation)" OK \
    -crl_check_all -CAfile root.cert.pem -CRLfile crl-chain.pem -untrusted "$g.chain.pem" "$g.cert.pem"
done

echo "== subjects and leaf extensions"
check_leaf() { # name subject keyusage-line eku-line [san-line]
  local e=$1 t ok=1
  t=$(openssl x509 -in "$e.cert.pem" -noout -text)
  [[ "$(subj "$e.cert.pem")" == "$2" ]] || ok=0
  grep -A1 'X509v3 Key Usage: critical' <<<"$t" | grep -qx " *$3" || ok=0
  grep -A1 'X509v3 Extended Key Usage:' <<<"$t" | grep -qx " *$4" || ok=0
  [[ $# -lt 5 ]] || grep -A1 'Subject Alternative Name:' <<<"$t" | grep -qx " *$5" || ok=0
  if [[ $ok -eq 1 ]]; then pass "$e: $2"; else fail "$e: subject/extensions wrong ($(subj "$e.cert.pem"))"; fi
}
[[ $keytype == rsa-2048 ]] && gwku="Digital Signature, Key Encipherment" || gwku="Digital Signature, Key Agreement"
both="TLS Web Server Authentication, TLS Web Client Authentication"
client="TLS Web Client Authentication"
check_leaf gateway-outer "/C=CN/O=Sluice/OU=gateway/CN=sluice-outer" "$gwku" "$both" "DNS:localhost, IP Address:127.0.0.1, DNS:sluice-outer"
check_leaf gateway-inner "/C=CN/O=Sluice/OU=gateway/CN=sluice-inner" "$gwku" "$both" "DNS:localhost, IP Address:127.0.0.1, DNS:sluice-inner"
check_leaf admin-netadmin "/C=CN/O=Sluice/OU=admin/CN=netadmin" "Digital Signature" "$client"
for e in "${SENDERS[@]}" sender-440606-revoked sender-440607-expired sender-440608-notyet \
         sender-440609-selfsigned sender-440610-rogue; do
  node=${e#sender-}; node=${node%%-*}; sys=${e#sender-*-}
  org=$(subj "$e.cert.pem" | sed -nE 's|^/C=CN/O=([^/]+)/.*|\1|p')
  check_leaf "$e" "/C=CN/O=$org/OU=$node/CN=$sys" "Digital Signature" "$client"
done
org=$(subj sender-440611-nosign.cert.pem | sed -nE 's|^/C=CN/O=([^/]+)/.*|\1|p')
check_leaf sender-440611-nosign "/C=CN/O=$org/OU=440611/CN=nosign" "Key Encipherment" "TLS Web Server Authentication"

echo "== CRLs"
rev_serial=$(openssl x509 -in sender-440606-revoked.cert.pem -noout -serial | sed 's/^serial=//')
t=$(openssl crl -in intermediate.crl.pem -noout -text)
if grep -A4 "Serial Number: $rev_serial" <<<"$t" | grep -q 'Key Compromise' \
   && [[ $(grep -c 'Serial Number:' <<<"$t") -eq 1 ]]; then
  pass "intermediate.crl.pem lists only sender-440606-revoked ($rev_serial), reason Key Compromise"
else fail "intermediate.crl.pem does not list exactly the revoked cert with keyCompromise"; fi
grep -q 'No Revoked Certificates' <<<"$(openssl crl -in root.crl.pem -noout -text)" \
  && pass "root.crl.pem is empty" || fail "root.crl.pem is not empty"
split_pem crl-chain.pem "$TMP/crl"
cmp -s "$TMP/crl1.pem" root.crl.pem && cmp -s "$TMP/crl2.pem" intermediate.crl.pem && [[ ! -f $TMP/crl3.pem ]] \
  && pass "crl-chain.pem = root.crl.pem + intermediate.crl.pem" || fail "crl-chain.pem content"
for c in root.crl.pem intermediate.crl.pem intermediate.expired-crl.pem; do
  openssl crl -in "$c" -noout -CAfile ca-bundle.pem 2>&1 | grep -q '^verify OK' \
    && pass "$c signature verifies ($(openssl crl -in "$c" -noout -nextupdate))" || fail "$c signature"
done

echo "== openssl verify ${BASE[*]}"
for g in "${GATEWAYS[@]}"; do
  expect "$g (sslserver)" OK "${BASE[@]}" -purpose sslserver "$g.cert.pem"
  expect "$g (sslclient)" OK "${BASE[@]}" -purpose sslclient "$g.cert.pem"
done
for s in "${SENDERS[@]}" admin-netadmin; do
  expect "$s (sslclient)" OK "${BASE[@]}" -purpose sslclient "$s.cert.pem"
done
expect "sender-440606-revoked"                      23 "${BASE[@]}" sender-440606-revoked.cert.pem
expect "sender-440607-expired"                      10 "${BASE[@]}" sender-440607-expired.cert.pem
expect "sender-440608-notyet"                        9 "${BASE[@]}" sender-440608-notyet.cert.pem
expect "sender-440609-selfsigned"                   18 "${BASE[@]}" sender-440609-selfsigned.cert.pem
expect "sender-440610-rogue (leaf only)"            20 "${BASE[@]}" sender-440610-rogue.cert.pem
expect "sender-440610-rogue (+ rogue-ca untrusted)" 19 "${BASE[@]}" -untrusted sender-440610-rogue.chain.pem sender-440610-rogue.cert.pem
expect "sender-440610-rogue (rogue-ca as only CA)"  OK -CAfile rogue-ca.cert.pem sender-440610-rogue.cert.pem
expect "sender-440611-nosign (no purpose: chain ok)" OK "${BASE[@]}" sender-440611-nosign.cert.pem
expect "sender-440611-nosign (sslclient)"           26 "${BASE[@]}" -purpose sslclient sender-440611-nosign.cert.pem
cat intermediate.expired-crl.pem root.crl.pem >"$TMP/expired-crls.pem"
expect "good sender with intermediate.expired-crl.pem" 12 -crl_check_all -CAfile ca-bundle.pem \
  -CRLfile "$TMP/expired-crls.pem" sender-440604-approval.cert.pem
expect "good sender with no CRLs at all"             3 -crl_check_all -CAfile ca-bundle.pem sender-440604-approval.cert.pem

echo "== $npass passed, $nfail failed"
[[ $nfail -eq 0 ]]
