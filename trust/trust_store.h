// The configured trust anchors (a CA bundle) and CRLs, for checking signers' certificates.
// A certificate is trusted only through a chain to a configured CA, valid now, not revoked
// (a CRL is required for every CA in the chain and must be current), with the
// digitalSignature key usage. Certificates that merely arrive inside a message are never
// anchors. Results are cached per certificate for a short time; reload() starts a new store.
// Thread-safe.
#pragma once

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

class TrustStore {
 public:
  static Result<std::shared_ptr<TrustStore>> load(const std::filesystem::path& ca_bundle,
                                                  const std::vector<std::filesystem::path>& crls);
  ~TrustStore();

  // Verifies `leaf` with `intermediates` (untrusted, from the message) now.
  Result<SignerIdentity> verify(X509* leaf, const std::vector<X509*>& intermediates) const;
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
