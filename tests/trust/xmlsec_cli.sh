#!/usr/bin/env bash
# Verifies each file with the xmlsec1 command-line tool against the development PKI (root as
# trust anchor, the issuing CA as an untrusted intermediate, keys only from X.509 data).
# The 1.2.37 CLI has no CRL option; revocation is covered by the verifier's own tests.
# Files named tampered-* must fail, every other file must pass.
#   xmlsec_cli.sh PKI_DIR FILE...
set -uo pipefail
pki="$1"; shift
passed=0; wrong=0
for f in "$@"; do
  if xmlsec1 --verify --enabled-key-data x509 --trusted-pem "$pki/root.cert.pem" \
       --untrusted-pem "$pki/intermediate.cert.pem" "$f" > /dev/null 2>&1; then ok=yes; else ok=no; fi
  case "$(basename "$f")" in
    tampered-*) [ "$ok" = no ] && echo "refused as expected: $f" || { echo "UNEXPECTED: $f verified although tampered"; wrong=$((wrong+1)); } ;;
    *) [ "$ok" = yes ] && passed=$((passed+1)) || { echo "UNEXPECTED: $f does not verify"; wrong=$((wrong+1)); } ;;
  esac
done
echo "xmlsec1: $passed signed documents verified, $wrong unexpected results"
[ "$wrong" -eq 0 ] && [ "$passed" -gt 0 ]
