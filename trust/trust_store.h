// The configured trust anchors (a CA bundle) and CRLs, for checking signers' certificates.
// A certificate is trusted only through a chain to a configured CA, valid now, not revoked
// (a CRL is required for every CA in the chain and must be current), with the
// digitalSignature key usage. Certificates that merely arrive inside a message are never
// anchors. Results are cached per certificate for a short time; reload() starts a new store.
// Thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"

namespace sluice::trust {

struct SignerIdentity {
  std::string subject;      // RFC 2253
  std::string node;         // OU
  std::string system;       // CN
  std::string fingerprint;  // SHA-256 hex of the certificate
  std::string sender() const { return node + "/" + system; }
};

// A signer certificate the trust store accepted, decoded once and kept (with a pool of ready
// verification contexts for its key) while it stays in the cache. Thread-safe.
class VerifiedCertificate {
 public:
  VerifiedCertificate(X509* cert, SignerIdentity identity);
  ~VerifiedCertificate();
  const SignerIdentity& identity() const { return identity_; }
  X509* certificate() const { return cert_; }
  EVP_PKEY* public_key() const { return X509_get0_pubkey(cert_); }
  // Verifies a DER-encoded signature (ECDSA or RSA PKCS#1 v1.5) over the SHA-256 `digest`.
  bool verify_digest(const unsigned char* digest, std::size_t digest_len, const unsigned char* sig,
                     std::size_t sig_len) const;

 private:
  X509* cert_;
  SignerIdentity identity_;
  mutable std::mutex mutex_;
  mutable std::vector<EVP_PKEY_CTX*> pool_;  // Guarded by mutex_.
};

class TrustStore {
 public:
  static Result<std::shared_ptr<TrustStore>> load(const std::filesystem::path& ca_bundle,
                                                  const std::vector<std::filesystem::path>& crls);
  ~TrustStore();

  // Verifies `leaf` with `intermediates` (untrusted, from the message) now.
  Result<SignerIdentity> verify(X509* leaf, const std::vector<X509*>& intermediates) const;
  // The same for a certificate given as base64 DER (as in KeyInfo), decoded once and cached
  // with the verdict for a few minutes (cleared by reload()).
  Result<std::shared_ptr<const VerifiedCertificate>> verify_base64(
      std::string_view der_base64, const std::vector<std::string_view>& intermediates_base64) const;
  // Re-reads the bundle and CRLs (failures keep the old state) and clears the cache.
  Result<void> reload();

  class Impl;

 private:
  explicit TrustStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Subject OU/CN and fingerprint of a certificate (no trust decision).
SignerIdentity identity_of(X509* cert);

}  // namespace sluice::trust
