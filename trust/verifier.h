// Verification of gateway signatures (the profile in dsig.h) on envelopes and receipts.
// The structure is checked first, without any cryptography: exactly one Signature, the last
// element child of the root; SignedInfo with exclusive C14N, ECDSA-SHA256 or RSA-SHA256, one
// Reference with URI="" and exactly the enveloped + exclusive-C14N transforms, SHA-256; a
// KeyInfo holding only X.509 certificates. Then the signer's certificate must chain to the
// trust store (current, not revoked, digitalSignature), the SignatureValue must match the
// canonical SignedInfo, and the digest must match the canonical document. The document the
// caller goes on using is the very tree that was verified. Every refusal names its reason.
#pragma once

#include <string>
#include <vector>

#include <libxml/tree.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "trust/trust_store.h"
#include "xml/parse.h"

namespace sluice::trust {

struct Verified {
  SignerIdentity signer;
  std::string digest;  // base64 SHA-256 of the canonical document
};

class DocumentVerifier {
 public:
  explicit DocumentVerifier(std::shared_ptr<TrustStore> trust) : trust_(std::move(trust)) {}
  // `doc` must have been parsed with comments and processing instructions refused.
  Result<Verified> verify(xmlDoc* doc) const;
  // Parses with the hardened parser (comments refused) and verifies; the parsed tree is
  // returned through `out` when given.
  Result<Verified> verify_bytes(std::string_view bytes, const xml::ParseLimits& limits,
                                xml::DocPtr* out = nullptr) const;
  TrustStore& trust() const { return *trust_; }

 private:
  std::shared_ptr<TrustStore> trust_;
};

// A gateway signature must come from a gateway's certificate, not merely from one the CA
// issued (a sender could otherwise re-sign a receipt with its own key). Gateways carry
// OU=gateway; with `gateways` non-empty, the CN must also be one of them. kForbidden names
// the signer otherwise.
Result<void> require_gateway(const SignerIdentity& signer,
                             const std::vector<std::string>& gateways);

}  // namespace sluice::trust
