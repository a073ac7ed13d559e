#!/usr/bin/env node
// Independent verification of Sluice's gateway signatures with xml-crypto (its own
// canonicalisation and digests) and Node's crypto (the certificate chain and ECDSA).
//   node verify.js CA_BUNDLE FILE...
// Files named tampered-* must FAIL, every other file must PASS; the exit status says whether
// that held for all of them.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { SignedXml } = require('xml-crypto');
const { DOMParser } = require('@xmldom/xmldom');

const DS = 'http://www.w3.org/2000/09/xmldsig#';

// xml-crypto 6 has no ECDSA: verify with Node, signatures in the r||s form XML-DSig uses.
class EcdsaSha256 {
  getSignature() { throw new Error('signing is not needed here'); }
  verifySignature(material, key, signatureValue) {
    return crypto.verify('sha256', Buffer.from(material, 'utf8'), { key, dsaEncoding: 'ieee-p1363' },
                         Buffer.from(signatureValue, 'base64'));
  }
  getAlgorithmName() { return 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256'; }
}

const bundle = (fs.readFileSync(process.argv[2], 'utf8')
  .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) || [])
  .map((pem) => new crypto.X509Certificate(pem));

// The signer's certificate must chain to a self-signed CA of the bundle, all valid now.
function chainOk(cert) {
  const now = new Date();
  for (let c = cert, depth = 0; depth < 5; depth++) {
    if (new Date(c.validFrom) > now || new Date(c.validTo) < now) return false;
    const issuer = bundle.find((ca) => c.checkIssued(ca) && c.verify(ca.publicKey));
    if (!issuer) return false;
    if (issuer.checkIssued(issuer) && issuer.verify(issuer.publicKey)) return true;
    c = issuer;
  }
  return false;
}

function verify(file) {
  const xml = fs.readFileSync(file, 'utf8');
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  let sigNode = null;
  for (let n = doc.documentElement.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && n.localName === 'Signature' && n.namespaceURI === DS) sigNode = n;
  }
  if (!sigNode) return 'no Signature at the end of the document';
  const certs = sigNode.getElementsByTagNameNS(DS, 'X509Certificate');
  if (certs.length === 0) return 'no certificate';
  const cert = new crypto.X509Certificate(Buffer.from(certs[0].textContent.replace(/\s/g, ''), 'base64'));
  if (!chainOk(cert)) return 'certificate does not chain to the CA bundle';
  const sig = new SignedXml({ publicCert: cert.publicKey.export({ type: 'spki', format: 'pem' }) });
  sig.SignatureAlgorithms['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256'] = EcdsaSha256;
  sig.loadSignature(sigNode);
  try {
    if (!sig.checkSignature(xml)) return 'signature or digest does not verify';
  } catch (e) {
    return 'signature or digest does not verify: ' + e.message.split('\n')[0];
  }
  return null;
}

let wrong = 0;
let passed = 0;
for (const file of process.argv.slice(3)) {
  const problem = verify(file);
  const expectFail = require('path').basename(file).startsWith('tampered-');
  if (problem === null && !expectFail) {
    passed++;
  } else if (problem !== null && expectFail) {
    console.log(`refused as expected: ${file}: ${problem}`);
  } else {
    wrong++;
    console.log(`UNEXPECTED: ${file}: ${problem === null ? 'verified although tampered' : problem}`);
  }
}
console.log(`xml-crypto: ${passed} signed documents verified, ${wrong} unexpected results`);
process.exit(wrong === 0 && passed > 0 ? 0 : 1);
