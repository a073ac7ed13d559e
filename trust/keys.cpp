#include "trust/keys.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <openssl/rsa.h>
#include <cstring>
#include <mutex>

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

struct SigningKey::Pool {
  std::mutex mutex;
  std::vector<EVP_PKEY_CTX*> free;  // Guarded by mutex.
  ~Pool() {
    for (EVP_PKEY_CTX* c : free) EVP_PKEY_CTX_free(c);
  }
};

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
  k.pool_ = std::make_shared<Pool>();
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
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  auto digest = sha256(data);
  EVP_PKEY_CTX* ctx = nullptr;
  {
    std::lock_guard lock(pool_->mutex);
    if (!pool_->free.empty()) {
      ctx = pool_->free.back();
      pool_->free.pop_back();
    }
  }
  if (ctx == nullptr) {
    ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr);
    if (ctx == nullptr || EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, kSha256) != 1 ||
        (alg_ == KeyAlgorithm::kRsaSha256 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)) {
      EVP_PKEY_CTX_free(ctx);
      return fail(Errc::kCrypto, "cannot set up signing: " + ossl_error());
    }
  }
  std::size_t len = 0;
  std::string der;
  bool ok = EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_PKEY_sign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len, digest.data(),
                       digest.size()) == 1;
    der.resize(len);
  }
  {
    std::lock_guard lock(pool_->mutex);
    if (pool_->free.size() < 16) {
      pool_->free.push_back(ctx);
      ctx = nullptr;
    }
  }
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    return fail(Errc::kCrypto, "signing failed: " + ossl_error());
  }
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

std::optional<std::string> ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* out = nullptr;
  int n = i2d_ECDSA_SIG(sig.get(), &out);
  if (n <= 0) return std::nullopt;
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

Result<void> verify_signature_value(EVP_PKEY* key, KeyAlgorithm alg, std::string_view data,
                                    std::string_view signature) {
  std::string der;
  if (alg == KeyAlgorithm::kEcdsaP256Sha256) {
    auto d = ecdsa_raw_to_der(signature);
    if (!d) {
      return fail(Errc::kCrypto, "ECDSA-SHA256 signature must be 64 bytes (r||s), got " +
                                     std::to_string(signature.size()));
    }
    der = std::move(*d);
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
