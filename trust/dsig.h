// The one XML-DSig profile Sluice produces and accepts for gateway signatures:
// enveloped, Reference URI="" (the whole document), transforms enveloped-signature then
// exclusive C14N 1.0 without comments, SHA-256 digest, ECDSA-SHA256 (P-256) or RSA-SHA256,
// the signer's certificate chain in KeyInfo/X509Data. Anything else is refused before any
// cryptography runs.
#pragma once

namespace sluice::trust {

inline constexpr const char* kDsigNs = "http://www.w3.org/2000/09/xmldsig#";
inline constexpr const char* kExcC14n = "http://www.w3.org/2001/10/xml-exc-c14n#";
inline constexpr const char* kEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
inline constexpr const char* kSha256 = "http://www.w3.org/2001/04/xmlenc#sha256";
inline constexpr const char* kEcdsaSha256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
inline constexpr const char* kRsaSha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

}  // namespace sluice::trust
