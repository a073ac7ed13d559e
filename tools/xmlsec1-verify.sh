#!/usr/bin/env bash
# Checks a document or receipt that a Sluice gateway signed with stock tools only (xmllint,
# xmlsec1, openssl), pinned to the one signature profile Sluice makes, for receivers who do not
# run sluicectl. What it checks, in order:
#   1. no DOCTYPE; exactly one XML-DSig element directly under the root, a ds:Signature, and it
#      is the root's last element (a ds:Signature or ds:Object placed anywhere else at that
#      level is what a signature-wrapping attack needs);
#   2. that signature has the gateway profile: exclusive C14N, ECDSA-SHA256 or RSA-SHA256, one
#      Reference with URI="" and exactly the enveloped + exclusive-C14N transforms, SHA-256, and
#      a KeyInfo with exactly one X.509 certificate (no XPath, XSLT, Manifest or key names);
#   3. xmlsec1 verifies exactly that signature (--node-xpath), keys only from X.509 data, only
#      URI="" references, the certificate chained to --root (and --untrusted intermediates);
#   4. the certificate is a gateway's (OU=gateway; with --gateway NAME also CN=NAME) and, with
#      --crl, not revoked (openssl verify -crl_check_all against the same chain).
# Exit status 0 and "OK: signed by gateway CN" when every check passes; 1 and the reason else.
#   xmlsec1-verify.sh --root ROOT.pem [--untrusted INTERMEDIATE.pem] [--crl CRLS.pem]
#                     [--gateway NAME] FILE
set -uo pipefail

root="" untrusted="" crl="" gateway="" file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --untrusted) untrusted="$2"; shift 2 ;;
    --crl) crl="$2"; shift 2 ;;
    --gateway) gateway="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) file="$1"; shift ;;
  esac
done
[ -n "$root" ] && [ -n "$file" ] || { echo "usage: $0 --root ROOT.pem [--untrusted I.pem] [--crl C.pem] [--gateway NAME] FILE" >&2; exit 2; }
for tool in xmllint xmlsec1 openssl base64; do
  command -v "$tool" > /dev/null || { echo "FAILED: $tool is not installed" >&2; exit 2; }
done
refuse() { echo "FAILED: $*"; exit 1; }

DS="http://www.w3.org/2000/09/xmldsig#"
is() { echo "local-name()='$1' and namespace-uri()='$DS'"; }
SIG="/*/*[last()][$(is Signature)]"
SI="$SIG/*[1][$(is SignedInfo)]"
REF="$SI/*[3][$(is Reference)]"
TR="$REF/*[1][$(is Transforms)]"
CERT="$SIG/*[3][$(is KeyInfo)]/*[1][$(is X509Data)]/*[1][$(is X509Certificate)]"

xpath() {  # xpath EXPR: its string value over FILE (no network, no entities)
  xmllint --nonet --xpath "$1" "$file" 2> /dev/null
}
check() {  # check WHAT EXPR: refuse unless the boolean EXPR holds
  [ "$(xpath "boolean($2)")" = "true" ] || refuse "$1"
}

xmllint --nonet --noout "$file" 2> /dev/null || refuse "not well-formed XML"
grep -q '<!DOCTYPE' "$file" && refuse "a DOCTYPE is not accepted"
check "exactly one XML-DSig element may stand directly under the root" \
  "count(/*/*[namespace-uri()='$DS'])=1"
check "the gateway's ds:Signature must be the root's last element" "$SIG"
check "Signature must hold exactly SignedInfo, SignatureValue and KeyInfo" \
  "count($SIG/*)=3 and $SIG/*[2][$(is SignatureValue)] and $SIG/*[3][$(is KeyInfo)]"
check "SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference" \
  "count($SI/*)=3 and $REF"
check "canonicalization must be exclusive C14N without parameters" \
  "$SI/*[1][$(is CanonicalizationMethod)][@Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#'][not(*)]"
check "signature method must be ECDSA-SHA256 or RSA-SHA256" \
  "$SI/*[2][$(is SignatureMethod)][@Algorithm='http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256' or @Algorithm='http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'][not(*)]"
check "the Reference must cover the whole document (URI=\"\")" "$REF[@URI='']"
check "the Reference must hold Transforms, DigestMethod (SHA-256) and DigestValue" \
  "count($REF/*)=3 and $REF/*[2][$(is DigestMethod)][@Algorithm='http://www.w3.org/2001/04/xmlenc#sha256'] and $REF/*[3][$(is DigestValue)]"
check "the transforms must be exactly enveloped-signature then exclusive C14N" \
  "count($TR/*)=2 and $TR/*[1][$(is Transform)][@Algorithm='http://www.w3.org/2000/09/xmldsig#enveloped-signature'][not(*)] and $TR/*[2][$(is Transform)][@Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#'][not(*)]"
check "KeyInfo must hold exactly one X.509 certificate" \
  "count($SIG/*[3]/*)=1 and count($SIG/*[3]/*[1]/*)=1 and $CERT"

args=(--verify --enabled-reference-uris empty --enabled-key-data x509 --ignore-manifests
      --trusted-pem "$root" --node-xpath "$SIG")
[ -n "$untrusted" ] && args+=(--untrusted-pem "$untrusted")
out=$(xmlsec1 "${args[@]}" "$file" 2>&1) || refuse "xmlsec1: $(echo "$out" | grep -m1 -E 'FAIL|error' || echo "$out" | tail -1)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
xpath "string($CERT)" | tr -d ' \n\r\t' | base64 -d > "$work/cert.der" 2> /dev/null ||
  refuse "the X509Certificate is not base64"
openssl x509 -inform DER -in "$work/cert.der" -out "$work/cert.pem" 2> /dev/null ||
  refuse "the X509Certificate is not a certificate"
subject=$(openssl x509 -in "$work/cert.pem" -noout -subject -nameopt RFC2253,sep_comma_plus)
subject=${subject#subject=}
ou=$(echo "$subject" | tr ',' '\n' | sed -n 's/^OU=//p' | head -1)
cn=$(echo "$subject" | tr ',' '\n' | sed -n 's/^CN=//p' | head -1)
[ "$ou" = "gateway" ] || refuse "signed by $subject, which is not a gateway certificate (OU=gateway)"
[ -z "$gateway" ] || [ "$cn" = "$gateway" ] || refuse "signed by gateway $cn, not by $gateway"
if [ -n "$crl" ]; then
  chain="$work/chain.pem"
  cat "$root" > "$chain"
  [ -n "$untrusted" ] && cat "$untrusted" >> "$chain"
  openssl verify -crl_check_all -CAfile "$chain" -CRLfile "$crl" "$work/cert.pem" > "$work/v" 2>&1 ||
    refuse "the gateway certificate: $(grep -m1 -i error "$work/v" || tail -1 "$work/v")"
fi
echo "OK: signed by gateway $cn ($subject)"
