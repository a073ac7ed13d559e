// A signing key with its certificate chain, loaded from PEM files. The private key file must
// not be readable by group or others. sign() is thread-safe (the key is only read).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace sluice::trust {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

enum class KeyAlgorithm { kEcdsaP256Sha256, kRsaSha256 };
const char* signature_method_uri(KeyAlgorithm alg);

class SigningKey {
 public:
  static Result<SigningKey> load(const std::filesystem::path& cert_chain,
                                 const std::filesystem::path& key);
  // The XML-DSig SignatureValue bytes over `data`: ECDSA as r||s (32 + 32 bytes, as XML-DSig
  // requires, not DER), RSA as PKCS#1 v1.5 with SHA-256.
  Result<std::string> sign(std::string_view data) const;
  KeyAlgorithm algorithm() const { return alg_; }
  // Base64 DER of each certificate, leaf first.
  const std::vector<std::string>& chain_base64() const { return chain_b64_; }
  const std::string& subject() const { return subject_; }
  X509* certificate() const { return chain_.front().get(); }

 private:
  KeyAlgorithm alg_ = KeyAlgorithm::kEcdsaP256Sha256;
  std::shared_ptr<EVP_PKEY> key_;
  // Ready signing contexts for key_ (OpenSSL 3 looks implementations up on every init).
  struct Pool;
  std::shared_ptr<Pool> pool_;
  std::vector<std::shared_ptr<X509>> chain_;
  std::vector<std::string> chain_b64_;
  std::string subject_;
};

// An XML-DSig ECDSA SignatureValue (r||s, 64 bytes for P-256) as DER, or nullopt.
std::optional<std::string> ecdsa_raw_to_der(std::string_view raw);

// Verifies an XML-DSig SignatureValue (ECDSA r||s or RSA) over `data` with `key`.
Result<void> verify_signature_value(EVP_PKEY* key, KeyAlgorithm alg, std::string_view data,
                                    std::string_view signature);

}  // namespace sluice::trust
