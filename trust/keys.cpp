#include "trust/keys.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstring>

#include "common/encoding.h"
#include "trust/dsig.h"

namespace sluice::trust {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

std::string ossl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return e == 0 ? "unknown OpenSSL error" : buf;
}

}  // namespace

const char* signature_method_uri(KeyAlgorithm alg) {
  return alg == KeyAlgorithm::kEcdsaP256Sha256 ? kEcdsaSha256 : kRsaSha256;
}

Result<SigningKey> SigningKey::load(const std::filesystem::path& cert_chain,
                                    const std::filesystem::path& key) {
  struct stat st;
  if (::stat(key.c_str(), &st) != 0) {
    return fail(Errc::kIo, "cannot read signing key " + key.string() + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::kForbidden, "signing key " + key.string() +
                                      " is readable by group or others; it must be mode 0600");
  }
  SigningKey k;
  std::unique_ptr<BIO, BioFree> kb(BIO_new_file(key.c_str(), "r"));
  EVP_PKEY* pkey = kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr;
  if (pkey == nullptr) {
    return fail(Errc::kCrypto, "cannot load signing key " + key.string() + ": " + ossl_error());
  }
  k.key_.reset(pkey, EVP_PKEY_free);
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {0};
    std::size_t len = 0;
    EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &len);
    if (std::string(group) != "prime256v1") {
      return fail(Errc::kCrypto, "signing key " + key.string() + " is EC on " + group +
                                     "; ECDSA signing uses P-256 (prime256v1)");
    }
    k.alg_ = KeyAlgorithm::kEcdsaP256Sha256;
  } else if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < 2048) {
      return fail(Errc::kCrypto, "RSA signing keys must have at least 2048 bits");
    }
    k.alg_ = KeyAlgorithm::kRsaSha256;
  } else {
    return fail(Errc::kCrypto, "signing key " + key.string() + " is neither ECDSA P-256 nor RSA");
  }
  std::unique_ptr<BIO, BioFree> cb(BIO_new_file(cert_chain.c_str(), "r"));
  if (!cb) {
    return fail(Errc::kIo, "cannot read certificate chain " + cert_chain.string());
  }
  for (;;) {
    X509* c = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
    if (c == nullptr) {
      ERR_clear_error();
      break;
    }
    k.chain_.emplace_back(c, X509_free);
    unsigned char* der = nullptr;
    int n = i2d_X509(c, &der);
    k.chain_b64_.push_back(base64_encode(std::string_view(reinterpret_cast<char*>(der), n)));
    OPENSSL_free(der);
  }
  if (k.chain_.empty()) {
    return fail(Errc::kCrypto, "no certificate in " + cert_chain.string());
  }
  if (X509_check_private_key(k.chain_.front().get(), pkey) != 1) {
    return fail(Errc::kCrypto, "signing key " + key.string() +
                                   " does not match the certificate in " + cert_chain.string());
  }
  char* subject = X509_NAME_oneline(X509_get_subject_name(k.chain_.front().get()), nullptr, 0);
  k.subject_ = subject != nullptr ? subject : "";
  OPENSSL_free(subject);
  return k;
}

Result<std::string> SigningKey::sign(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return fail(Errc::kCrypto, "signing failed: " + ossl_error());
  }
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return fail(Errc::kCrypto, "signing failed: " + ossl_error());
  }
  der.resize(len);
  if (alg_ == KeyAlgorithm::kRsaSha256) {
    return der;
  }
  // XML-DSig wants ECDSA signatures as the two 32-byte integers r and s, concatenated.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigFree> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) {
    return fail(Errc::kCrypto, "cannot decode the ECDSA signature");
  }
  std::string raw(64, '\0');
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(raw.data()), 32) !=
          32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(raw.data()) + 32,
                   32) != 32) {
    return fail(Errc::kCrypto, "cannot encode the ECDSA signature");
  }
  return raw;
}

Result<void> verify_signature_value(EVP_PKEY* key, KeyAlgorithm alg, std::string_view data,
                                    std::string_view signature) {
  std::string der;
  if (alg == KeyAlgorithm::kEcdsaP256Sha256) {
    if (signature.size() != 64) {
      return fail(Errc::kCrypto, "ECDSA-SHA256 signature must be 64 bytes (r||s), got " +
                                     std::to_string(signature.size()));
    }
    std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr);
    BIGNUM* s =
        BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 32, 32, nullptr);
    if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return fail(Errc::kCrypto, "cannot decode the ECDSA signature");
    }
    unsigned char* out = nullptr;
    int n = i2d_ECDSA_SIG(sig.get(), &out);
    if (n <= 0) {
      return fail(Errc::kCrypto, "cannot encode the ECDSA signature");
    }
    der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
    OPENSSL_free(out);
  } else {
    der.assign(signature);
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return fail(Errc::kCrypto, "cannot set up signature verification: " + ossl_error());
  }
  int rc =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  if (rc != 1) {
    return fail(Errc::kCrypto, "bad signature: the SignatureValue does not match SignedInfo");
  }
  return {};
}

}  // namespace sluice::trust
