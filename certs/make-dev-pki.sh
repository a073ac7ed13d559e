#!/usr/bin/env bash
# make-dev-pki.sh — generate a DEVELOPMENT-ONLY PKI for Sluice.
#
# Usage: make-dev-pki.sh OUTDIR [--rsa] [--force]
#
#   OUTDIR   where keys, certificates and CRLs are written (created if missing).
#            Keep it outside the source tree (e.g. build/dev-pki or /tmp/...):
#            it contains private keys.
#   --rsa    RSA-2048 keys for every certificate (default: ECDSA P-256).
#   --force  regenerate even if OUTDIR already holds a complete PKI.
#
# Without --force, an OUTDIR that already holds a complete PKI of the requested
# key type is left untouched (exit 0), so tests may call this repeatedly.
# Asking for the other key type without --force is an error (exit 1).
#
# Layout and subject conventions: see README.md next to this script.
# Requires: bash, OpenSSL >= 3.0 CLI.
set -euo pipefail

prog=make-dev-pki
usage() { sed -n '4,15p' "$0" | sed 's/^# \{0,1\}//'; }
die()   { echo "$prog: $*" >&2; exit 1; }

# ----------------------------------------------------------------- arguments
OUTDIR="" KEYTYPE=ecdsa-p256 FORCE=0
for arg in "$@"; do
  case "$arg" in
    --rsa)      KEYTYPE=rsa-2048 ;;
    --force)    FORCE=1 ;;
    -h|--help)  usage; exit 0 ;;
    -*)         echo "$prog: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    *)          [[ -z "$OUTDIR" ]] || { echo "$prog: more than one OUTDIR given" >&2; exit 2; }
                OUTDIR="$arg" ;;
  esac
done
[[ -n "$OUTDIR" ]] || { usage >&2; exit 2; }
command -v openssl >/dev/null || die "openssl not found in PATH"

t_start=${EPOCHREALTIME:-$SECONDS}

# ------------------------------------------------------------- what we make
SENDER_ORG="Sluice Dev Department"
GOV_ORG="Sluice Dev Government CA"

# Leaf certificates issued by the intermediate: name|subject|extension section|validity
# (validity: number of days, or START-END as YYYYMMDDHHMMSSZ-YYYYMMDDHHMMSSZ).
# Filled in below once dates are known.
LEAVES=()

# Every file a complete PKI has (besides _ca/); used for the idempotency check
# and for --force cleanup.
CA_ENTITIES=(root intermediate rogue-ca)
LEAF_ENTITIES=(
  gateway-outer gateway-inner
  sender-440604-approval sender-440605-tax sender-440600-market sender-440600-supervision
  admin-netadmin admin-secadmin admin-auditor monitor-prometheus
  sender-440606-revoked
  sender-440607-expired sender-440608-notyet sender-440609-selfsigned
  sender-440610-rogue sender-440611-nosign
)
OTHER_FILES=(ca-bundle.pem root.crl.pem intermediate.crl.pem crl-chain.pem intermediate.expired-crl.pem)
MARKER=_ca/COMPLETE

expected_files() {
  local e
  for e in "${CA_ENTITIES[@]}";   do echo "$e.key.pem"; echo "$e.cert.pem"; done
  for e in "${LEAF_ENTITIES[@]}"; do echo "$e.key.pem"; echo "$e.cert.pem"; echo "$e.chain.pem"; done
  printf '%s\n' "${OTHER_FILES[@]}"
}

# Prints the key type of a complete PKI in $1, or nothing if incomplete.
complete_pki_type() {
  local dir=$1 f
  [[ -f "$dir/$MARKER" ]] || return 0
  while IFS= read -r f; do [[ -f "$dir/$f" ]] || return 0; done < <(expected_files)
  sed -n 's/^keytype=//p' "$dir/$MARKER"
}

# Returns 0 (after printing a line) if OUTDIR holds a complete, still-usable PKI
# of the requested key type. A PKI whose CRLs expire within a day counts as
# stale and is regenerated, so a long-lived build directory does not start
# failing every CRL check 30 days after it was created.
stale_noted=0
check_existing() {
  local have until
  have=$(complete_pki_type "$OUTDIR")
  [[ -n "$have" ]] || return 1
  if [[ "$have" != "$KEYTYPE" ]]; then
    die "$OUTDIR already holds a complete $have dev PKI but $KEYTYPE was requested; re-run with --force to regenerate"
  fi
  until=$(sed -n 's/^valid_until=//p' "$OUTDIR/$MARKER")
  if [[ ! "$until" =~ ^[0-9]+$ ]] || (( $(date +%s) >= until )); then
    [[ $stale_noted -eq 1 ]] || echo "$prog: the $have dev PKI in $OUTDIR is stale (its CRLs expire within a day); regenerating"
    stale_noted=1
    return 1
  fi
  echo "$prog: $OUTDIR already holds a complete $have dev PKI; nothing to do (use --force to regenerate)"
  return 0
}

# Fast path: no lock, no openssl.
if [[ $FORCE -eq 0 ]] && check_existing; then exit 0; fi

# -------------------------------------------------------------------- set up
umask 077                      # keys (and everything else) are born 0600/0700
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# Serialise concurrent invocations on the same OUTDIR (e.g. parallel tests).
if command -v flock >/dev/null; then
  exec 9>"$OUTDIR/.make-dev-pki.lock"
  flock 9
else
  lockdir="$OUTDIR/.make-dev-pki.lock.d"
  for _ in $(seq 1 600); do
    if mkdir "$lockdir" 2>/dev/null; then echo $$ >"$lockdir/pid"; break; fi
    pid=$(cat "$lockdir/pid" 2>/dev/null || true)
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then rm -rf "$lockdir"; continue; fi
    sleep 0.1
  done
  [[ -d "$lockdir" && "$(cat "$lockdir/pid" 2>/dev/null)" == "$$" ]] || die "could not lock $OUTDIR"
fi
# Someone else may have finished while we waited for the lock.
if [[ $FORCE -eq 0 ]] && check_existing; then exit 0; fi

STAGE=$(mktemp -d "$OUTDIR/.staging.XXXXXX")
cleanup() {
  rm -rf "$STAGE"
  [[ -n "${lockdir:-}" ]] && rm -rf "$lockdir"
  return 0
}
trap cleanup EXIT
CA="$STAGE/_ca"
LOG="$CA/openssl.log"
mkdir -p "$CA/csr"
for d in root intermediate rogue; do
  mkdir -p "$CA/$d/newcerts"
  : >"$CA/$d/index.txt"
  echo "unique_subject = no" >"$CA/$d/index.txt.attr"
  openssl rand -hex 16 >"$CA/$d/serial"
  echo 1000 >"$CA/$d/crlnumber"
done

run() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "$prog: command failed: $*" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
}

# UTC timestamp as YYYYMMDDHHMMSSZ; $1 = GNU date offset, $2 = BSD date -v offset.
utc() { date -u -d "$1" +%Y%m%d%H%M%SZ 2>/dev/null || date -u -v"$2" +%Y%m%d%H%M%SZ; }

if [[ $KEYTYPE == rsa-2048 ]]; then
  GENKEY=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)
  GW_KU="digitalSignature, keyEncipherment"
else
  GENKEY=(-algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -pkeyopt ec_param_enc:named_curve)
  GW_KU="digitalSignature, keyAgreement"
fi

# -------------------------------------------------------------- openssl.cnf
# All paths are relative to _ca/ (openssl ca is always run from there), so the
# CA database keeps working after it is moved into OUTDIR.
ca_section() { # name dir cert-base
  cat <<CNF
[ $1 ]
dir              = ./$2
database         = \$dir/index.txt
serial           = \$dir/serial
crlnumber        = \$dir/crlnumber
new_certs_dir    = \$dir/newcerts
certificate      = ../$3.cert.pem
private_key      = ../$3.key.pem
default_md       = sha256
default_days     = 365
default_crl_days = 30
policy           = policy_any
preserve         = yes
unique_subject   = no
email_in_dn      = no
copy_extensions  = none
crl_extensions   = crl_ext

CNF
}
leaf_common() {
  cat <<CNF
basicConstraints       = critical, CA:FALSE
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
CNF
}
{
  cat <<CNF
# Generated by make-dev-pki.sh ($KEYTYPE). DEVELOPMENT ONLY.
# Use from this directory, e.g.:  openssl ca -config openssl.cnf -name ca_intermediate ...
[ ca ]
default_ca = ca_intermediate

CNF
  ca_section ca_root root root
  ca_section ca_intermediate intermediate intermediate
  ca_section ca_rogue rogue rogue-ca
  cat <<CNF
[ policy_any ]
countryName            = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = optional

[ req ]
distinguished_name = req_dn
string_mask        = utf8only
utf8               = yes
default_md         = sha256
[ req_dn ]

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_intermediate ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_gateway_outer ]
$(leaf_common)
keyUsage               = critical, $GW_KU
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, DNS:sluice-outer

[ v3_gateway_inner ]
$(leaf_common)
keyUsage               = critical, $GW_KU
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, DNS:sluice-inner

[ v3_sender ]
$(leaf_common)
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth

[ v3_admin ]
$(leaf_common)
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth

# Test-only: "wrong key usage" (no digitalSignature, no clientAuth).
[ v3_nosign ]
$(leaf_common)
keyUsage               = critical, keyEncipherment
extendedKeyUsage       = serverAuth
CNF
} >"$CA/openssl.cnf"

# ------------------------------------------------------------------ helpers
genkey() { # name
  run openssl genpkey "${GENKEY[@]}" -out "$STAGE/$1.key.pem"
  chmod 0600 "$STAGE/$1.key.pem"
}
cert_done() { # name [chain-extra-file]
  chmod 0644 "$STAGE/$1.cert.pem"
  if [[ $# -ge 2 ]]; then
    cat "$STAGE/$1.cert.pem" "$2" >"$STAGE/$1.chain.pem"
    chmod 0644 "$STAGE/$1.chain.pem"
  fi
}
selfsign() { # name subject days ext
  genkey "$1"
  run openssl req -config "$CA/openssl.cnf" -new -x509 -utf8 -key "$STAGE/$1.key.pem" \
      -subj "$2" -days "$3" -extensions "$4" -set_serial "0x$(openssl rand -hex 16)" \
      -out "$STAGE/$1.cert.pem"
}
ca_sign() { # ca-name name subject ext validity [extra openssl-ca args...]
  local caname=$1 name=$2 subj=$3 ext=$4 validity=$5; shift 5
  local v=(-days "$validity")
  [[ $validity == *-* ]] && v=(-startdate "${validity%-*}" -enddate "${validity#*-}")
  genkey "$name"
  run openssl req -config "$CA/openssl.cnf" -new -utf8 -key "$STAGE/$name.key.pem" \
      -subj "$subj" -out "$CA/csr/$name.csr.pem"
  (cd "$CA" && run openssl ca -batch -notext -config openssl.cnf -name "$caname" \
      -extensions "$ext" "${v[@]}" -in "csr/$name.csr.pem" -out "../$name.cert.pem" "$@")
}
gencrl() { # ca-name out [extra args...]
  local caname=$1 out=$2; shift 2
  (cd "$CA" && run openssl ca -batch -config openssl.cnf -name "$caname" -gencrl -out "../$out" "$@")
  chmod 0644 "$STAGE/$out"
}

# ------------------------------------------------------------- the real PKI
selfsign root "/C=CN/O=$GOV_ORG/CN=Sluice Dev Root CA" 3650 v3_root
cert_done root
ca_sign ca_root intermediate "/C=CN/O=$GOV_ORG/CN=Sluice Dev Issuing CA" v3_intermediate 1825
cert_done intermediate
cat "$STAGE/root.cert.pem" "$STAGE/intermediate.cert.pem" >"$STAGE/ca-bundle.pem"
chmod 0644 "$STAGE/ca-bundle.pem"

NOTYET="$(utc '+1 year' +1y)-$(utc '+2 years' +2y)"
LEAVES=(
  "gateway-outer|/C=CN/O=Sluice/OU=gateway/CN=sluice-outer|v3_gateway_outer|730"
  "gateway-inner|/C=CN/O=Sluice/OU=gateway/CN=sluice-inner|v3_gateway_inner|730"
  "sender-440604-approval|/C=CN/O=$SENDER_ORG/OU=440604/CN=approval|v3_sender|365"
  "sender-440605-tax|/C=CN/O=$SENDER_ORG/OU=440605/CN=tax|v3_sender|365"
  "sender-440600-market|/C=CN/O=$SENDER_ORG/OU=440600/CN=market|v3_sender|365"
  "sender-440600-supervision|/C=CN/O=$SENDER_ORG/OU=440600/CN=supervision|v3_sender|365"
  "admin-netadmin|/C=CN/O=Sluice/OU=admin/CN=netadmin|v3_admin|365"
  "admin-secadmin|/C=CN/O=Sluice/OU=admin/CN=secadmin|v3_admin|365"
  "admin-auditor|/C=CN/O=Sluice/OU=admin/CN=auditor|v3_admin|365"
  "monitor-prometheus|/C=CN/O=Sluice/OU=monitor/CN=prometheus|v3_admin|365"
  "sender-440606-revoked|/C=CN/O=$SENDER_ORG/OU=440606/CN=revoked|v3_sender|365"
  # test-only
  "sender-440607-expired|/C=CN/O=$SENDER_ORG/OU=440607/CN=expired|v3_sender|20200101000000Z-20210101000000Z"
  "sender-440608-notyet|/C=CN/O=$SENDER_ORG/OU=440608/CN=notyet|v3_sender|$NOTYET"
  "sender-440611-nosign|/C=CN/O=$SENDER_ORG/OU=440611/CN=nosign|v3_nosign|365"
)
for entry in "${LEAVES[@]}"; do
  IFS='|' read -r name subj ext validity <<<"$entry"
  ca_sign ca_intermediate "$name" "$subj" "$ext" "$validity"
  cert_done "$name" "$STAGE/intermediate.cert.pem"
done

# Revocation + CRLs. The expired CRL is generated first so that the current one
# has the higher CRL number.
(cd "$CA" && run openssl ca -batch -config openssl.cnf -name ca_intermediate \
    -revoke ../sender-440606-revoked.cert.pem -crl_reason keyCompromise)
gencrl ca_intermediate intermediate.expired-crl.pem \
    -crl_lastupdate "$(utc '-31 days' -31d)" -crl_nextupdate "$(utc '-1 day' -1d)"
gencrl ca_intermediate intermediate.crl.pem -crldays 30
gencrl ca_root root.crl.pem -crldays 30
cat "$STAGE/root.crl.pem" "$STAGE/intermediate.crl.pem" >"$STAGE/crl-chain.pem"
chmod 0644 "$STAGE/crl-chain.pem"

# ----------------------------------------------------- untrusted test material
selfsign sender-440609-selfsigned "/C=CN/O=$SENDER_ORG/OU=440609/CN=selfsigned" 365 v3_sender
cert_done sender-440609-selfsigned "/dev/null"        # chain = the leaf alone
selfsign rogue-ca "/C=CN/O=Sluice Dev Rogue CA/CN=Sluice Dev Rogue Root CA (UNTRUSTED)" 3650 v3_root
cert_done rogue-ca
ca_sign ca_rogue sender-440610-rogue "/C=CN/O=$SENDER_ORG/OU=440610/CN=rogue" v3_sender 365
cert_done sender-440610-rogue "$STAGE/rogue-ca.cert.pem"  # what a rogue client would present

# valid_until: one day before the 30-day CRLs expire (see check_existing).
printf 'keytype=%s\ncreated=%s\nvalid_until=%s\n' "$KEYTYPE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$(( $(date +%s) + 29 * 86400 ))" >"$CA/COMPLETE"

# Sanity: we produced exactly what the idempotency check expects.
while IFS= read -r f; do [[ -f "$STAGE/$f" ]] || die "internal error: $f was not generated"; done < <(expected_files)

# ------------------------------------------------------------------- install
# Marker (inside _ca/) disappears first and reappears last, so an interrupted
# install is never mistaken for a complete PKI.
rm -rf "$OUTDIR/_ca"
while IFS= read -r f; do rm -f "$OUTDIR/$f"; done < <(expected_files)
for f in "$STAGE"/*; do [[ $f == "$CA" ]] || mv -f "$f" "$OUTDIR/"; done
mv "$STAGE/_ca" "$OUTDIR/_ca"

# ------------------------------------------------------------------- summary
t_end=${EPOCHREALTIME:-$SECONDS}
elapsed=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN{printf "%.2f", b-a}')
cat <<SUM
$prog: $KEYTYPE development PKI written to $OUTDIR in ${elapsed}s
  trust store : ca-bundle.pem (root + intermediate), root.cert.pem, intermediate.cert.pem
  CA keys     : root.key.pem, intermediate.key.pem   (CA database: _ca/)
  CRLs        : root.crl.pem (empty), intermediate.crl.pem (revokes 440606), crl-chain.pem (both), all nextUpdate +30d
  gateways    : gateway-outer, gateway-inner            (.key.pem .cert.pem .chain.pem)
  senders     : sender-440604-approval, sender-440605-tax, sender-440600-market, sender-440600-supervision
  admin       : admin-netadmin (system), admin-secadmin (security), admin-auditor (audit)
  monitor     : monitor-prometheus (metrics and health only)
  revoked     : sender-440606-revoked (keyCompromise)
  test-only   : sender-440607-expired, sender-440608-notyet, sender-440609-selfsigned, sender-440611-nosign
  untrusted   : rogue-ca (NOT in ca-bundle.pem), sender-440610-rogue
  expired CRL : intermediate.expired-crl.pem (nextUpdate in the past)
SUM
