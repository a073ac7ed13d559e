// A sender's own XML-DSig over its business document (the Body's element, referenced as
// URI="#<its Id>", enveloped inside it), verified with xmlsec1 — with its permissive defaults
// closed: references only to that element of the same document, an explicit allow-list of
// transforms and algorithms (enveloped, exclusive/inclusive C14N 1.0, SHA-256,
// ECDSA/RSA-SHA256: no XSLT, XPath, SHA-1, MD5), and a verification key that comes only from
// an X.509 certificate in KeyInfo that our trust store accepted (a bare key never verifies;
// xmlsec does no key lookup of its own). The certificate's OU/CN must be the envelope's Sender.
#pragma once

#include <libxml/tree.h>

#include <memory>

#include "common/error.h"
#include "trust/trust_store.h"

namespace sluice::trust {

class SenderSignatureVerifier {
 public:
  // Initialises xmlsec1 (OpenSSL backend) once per process.
  static Result<std::unique_ptr<SenderSignatureVerifier>> create(std::shared_ptr<TrustStore> trust);
  // The Signature (a child of `business`) over `business`. `doc` must come from the hardened
  // parser; the business element's Id attribute is registered as the only ID.
  Result<SignerIdentity> verify(xmlDoc* doc, xmlNode* business, xmlNode* signature) const;

 private:
  explicit SenderSignatureVerifier(std::shared_ptr<TrustStore> trust) : trust_(std::move(trust)) {}
  std::shared_ptr<TrustStore> trust_;
};

// The ds:Signature child of a business document, or nullptr.
xmlNode* sender_signature_of(xmlNode* business);

}  // namespace sluice::trust
