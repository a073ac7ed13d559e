#!/usr/bin/env bash
# tools/xmlsec1-verify.sh, the receivers' stock-tools check, against the signature-wrapping
# attack that plain `xmlsec1 --verify` falls for: a sender puts a ds:Signature of its own (an
# XPath false() transform: it covers nothing, signed with its CA-issued key) directly under the
# Envelope; the gateway's signature follows it; the Body is then tampered with. Plain xmlsec1
# checks the first Signature it finds and says OK; the pinned check must refuse it, and refuse
# a receipt a sender re-signed, tampered copies and the wrong gateway, and pass every good file.
#   xmlsec1_verify_test.sh SOURCE_DIR PKI_DIR SIGNED_DIR WORK_DIR [RSA_PKI_DIR]
set -uo pipefail
src="$1"; pki="$2"; signed="$3"; work="$4"; rsa_pki="${5:-}"
check="$src/tools/xmlsec1-verify.sh"
opts=(--root "$pki/root.cert.pem" --untrusted "$pki/intermediate.cert.pem" --crl "$pki/crl-chain.pem")
wrong=0
expect() {  # expect ok|FAILED-substring FILE [more options]
  local want="$1" f="$2"; shift 2
  out=$("$check" "${opts[@]}" "$@" "$f" 2>&1); rc=$?
  if [ "$want" = ok ]; then
    [ $rc -eq 0 ] || { echo "UNEXPECTED: $f refused: $out"; wrong=$((wrong+1)); }
  else
    if [ $rc -eq 0 ] || ! grep -qF "$want" <<< "$out"; then
      echo "UNEXPECTED: $f: wanted a refusal naming '$want', got (rc=$rc): $out"; wrong=$((wrong+1))
    else
      echo "refused as expected: $(basename "$f"): $out"
    fi
  fi
}

rm -rf "$work"; mkdir -p "$work"
good=0
for f in "$signed"/good-*-ecdsa-*.xml "$signed"/good-ecdsa-*.xml; do
  [ -e "$f" ] || continue
  expect ok "$f"; good=$((good+1))
done
for f in "$signed"/tampered-*ecdsa*.xml; do expect "FAILED" "$f"; done
expect "not a gateway certificate" "$signed/forged/receipt-by-sender.xml"
doc="$signed/good-ecdsa-case.accept.xml"
expect "signed by gateway sluice-outer, not by sluice-inner" "$doc" --gateway sluice-inner
expect ok "$doc" --gateway sluice-outer

# The wrapping attack, made with xmlsec1 itself and a sender's key.
DS=http://www.w3.org/2000/09/xmldsig#
injected="<ds:Signature xmlns:ds=\"$DS\" Id=\"injected\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>false()</ds:XPath></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo></ds:Signature>"
python3 - "$doc" "$injected" "$work/template.xml" <<'EOF'
import sys
doc = open(sys.argv[1], encoding="utf-8").read()
at = doc.rindex("<ds:Signature ")
open(sys.argv[3], "w", encoding="utf-8").write(doc[:at] + sys.argv[2] + doc[at:])
EOF
xmlsec1 --sign --privkey-pem "$pki/sender-440604-approval.key.pem,$pki/sender-440604-approval.cert.pem" \
  --node-xpath "//*[@Id='injected']" --output "$work/wrapped.xml" "$work/template.xml" > "$work/sign.log" 2>&1 ||
  { echo "xmlsec1 --sign failed: $(cat "$work/sign.log")"; exit 1; }
sed 's/予以受理/不予受理/' "$work/wrapped.xml" > "$work/wrapped-tampered.xml"
cmp -s "$work/wrapped.xml" "$work/wrapped-tampered.xml" && { echo "the tamper did not change the document"; exit 1; }
plain=(--verify --enabled-key-data x509 --trusted-pem "$pki/root.cert.pem" --untrusted-pem "$pki/intermediate.cert.pem")
if xmlsec1 "${plain[@]}" "$work/wrapped-tampered.xml" > /dev/null 2>&1; then
  echo "plain xmlsec1 --verify accepts the tampered, wrapped copy (the attack the pinned check closes)"
else
  echo "UNEXPECTED: plain xmlsec1 refused the wrapped copy: the attack sample is not what it should be"
  wrong=$((wrong+1))
fi
expect "exactly one XML-DSig element" "$work/wrapped-tampered.xml"
expect "exactly one XML-DSig element" "$work/wrapped.xml"
# A ds:Object beside the gateway's signature; the gateway's signature not last.
sed "s|</env:Envelope>|<ds:Object xmlns:ds=\"$DS\">x</ds:Object></env:Envelope>|" "$doc" > "$work/object.xml"
expect "exactly one XML-DSig element" "$work/object.xml"
sed "s#</ds:Signature></env:Envelope>#</ds:Signature><env:Note xmlns:env=\"urn:sluice:xs:envelope:1\"/></env:Envelope>#" "$doc" > "$work/not-last.xml"
expect "must be the root's last element" "$work/not-last.xml"

# RSA-SHA256 is the profile's other method: the RSA development PKI's files pass too.
if [ -n "$rsa_pki" ]; then
  opts=(--root "$rsa_pki/root.cert.pem" --untrusted "$rsa_pki/intermediate.cert.pem" --crl "$rsa_pki/crl-chain.pem")
  for f in "$signed"/good-*rsa-*.xml; do
    [ -e "$f" ] || continue
    expect ok "$f"; good=$((good+1))
  done
  for f in "$signed"/tampered-*rsa*.xml; do expect "FAILED" "$f"; done
fi

echo "xmlsec1-verify.sh: $good good files verified, $wrong unexpected results"
[ "$wrong" -eq 0 ] && [ "$good" -gt 0 ]
