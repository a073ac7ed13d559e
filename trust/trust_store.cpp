#include "trust/trust_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "common/encoding.h"

namespace sluice::trust {
namespace {

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};

constexpr auto kCacheFor = std::chrono::minutes(5);

std::string entry(X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return {};
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string reason(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate not yet valid";
    case X509_V_ERR_CERT_REVOKED:
      return "certificate revoked";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return "self-signed certificate is not trusted";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "untrusted chain: the issuer is not a configured CA";
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return "the CRL has expired (refresh it)";
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return "the CRL is not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
      return "no CRL for the issuing CA";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "certificate signature is invalid";
    default:
      return X509_verify_cert_error_string(err);
  }
}

}  // namespace

SignerIdentity identity_of(X509* cert) {
  SignerIdentity id;
  X509_NAME* subject = X509_get_subject_name(cert);
  id.node = entry(subject, NID_organizationalUnitName);
  id.system = entry(subject, NID_commonName);
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio && X509_NAME_print_ex(bio.get(), subject, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    id.subject.assign(data, static_cast<std::size_t>(len));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    id.fingerprint = hex_encode(std::string_view(reinterpret_cast<char*>(md), md_len));
  }
  return id;
}

VerifiedCertificate::VerifiedCertificate(X509* cert, SignerIdentity identity)
    : cert_(cert), identity_(std::move(identity)) {}

VerifiedCertificate::~VerifiedCertificate() {
  for (EVP_PKEY_CTX* c : pool_) EVP_PKEY_CTX_free(c);
  X509_free(cert_);
}

bool VerifiedCertificate::verify_digest(const unsigned char* digest, std::size_t digest_len,
                                        const unsigned char* sig, std::size_t sig_len) const {
  static EVP_MD* sha256_md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_PKEY_CTX* ctx = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (!pool_.empty()) {
      ctx = pool_.back();
      pool_.pop_back();
    }
  }
  if (ctx == nullptr) {
    ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, public_key(), nullptr);
    if (ctx == nullptr || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, sha256_md) != 1) {
      EVP_PKEY_CTX_free(ctx);
      ERR_clear_error();
      return false;
    }
    if (EVP_PKEY_is_a(public_key(), "RSA")) {
      EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    }
  }
  bool ok = EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
  ERR_clear_error();
  std::lock_guard lock(mutex_);
  if (pool_.size() < 16) {
    pool_.push_back(ctx);
  } else {
    EVP_PKEY_CTX_free(ctx);
  }
  return ok;
}

class TrustStore::Impl {
 public:
  std::filesystem::path bundle;
  std::vector<std::filesystem::path> crls;

  Result<std::shared_ptr<X509_STORE>> build() const {
    std::shared_ptr<X509_STORE> store(X509_STORE_new(), X509_STORE_free);
    if (!store || X509_STORE_load_file(store.get(), bundle.c_str()) != 1) {
      ERR_clear_error();
      return fail(Errc::kCrypto, "cannot load the trust bundle " + bundle.string());
    }
    if (crls.empty()) {
      return fail(Errc::kInvalidArgument,
                  "no CRL configured for the trust store; revocation must be checked");
    }
    for (const auto& file : crls) {
      std::unique_ptr<BIO, BioFree> bio(BIO_new_file(file.c_str(), "r"));
      if (!bio) {
        return fail(Errc::kIo, "cannot read CRL file " + file.string());
      }
      int count = 0;
      for (;;) {
        X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
        if (crl == nullptr) {
          ERR_clear_error();
          break;
        }
        const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
        bool expired = next == nullptr || X509_cmp_current_time(next) <= 0;
        if (!expired) X509_STORE_add_crl(store.get(), crl);
        X509_CRL_free(crl);
        if (expired) {
          return fail(Errc::kCrypto,
                      "CRL in " + file.string() + " has expired; fetch a current one");
        }
        ++count;
      }
      if (count == 0) {
        return fail(Errc::kCrypto, "no CRL found in " + file.string());
      }
    }
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return store;
  }

  Result<SignerIdentity> verify(X509* leaf, const std::vector<X509*>& intermediates) {
    SignerIdentity id = identity_of(leaf);
    auto now = std::chrono::steady_clock::now();
    std::shared_ptr<X509_STORE> store;
    {
      std::lock_guard lock(mutex);
      auto it = cache.find(id.fingerprint);
      if (it != cache.end() && it->second.until > now) {
        if (it->second.ok) return id;
        return fail(Errc::kCrypto, it->second.reason);
      }
      store = current;
    }
    std::string why;
    uint32_t ku = X509_get_key_usage(leaf);
    if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 && (ku & KU_DIGITAL_SIGNATURE) == 0) {
      why = "wrong key usage: the certificate may not make digital signatures";
    } else {
      std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
      for (X509* c : intermediates) sk_X509_push(chain.get(), c);
      std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
      if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1) {
        return fail(Errc::kCrypto, "cannot set up certificate verification");
      }
      if (X509_verify_cert(ctx.get()) != 1) {
        why = reason(X509_STORE_CTX_get_error(ctx.get()));
      }
      ERR_clear_error();
    }
    {
      std::lock_guard lock(mutex);
      if (cache.size() > 10'000) cache.clear();
      cache[id.fingerprint] = Cached{why.empty(), why, now + kCacheFor};
    }
    if (!why.empty()) {
      return fail(Errc::kCrypto, why + " (" + id.subject + ")");
    }
    return id;
  }

  struct Cached {
    bool ok;
    std::string reason;
    std::chrono::steady_clock::time_point until;
  };
  struct CachedCert {
    std::shared_ptr<const VerifiedCertificate> cert;  // null when refused
    std::string reason;
    std::chrono::steady_clock::time_point until;
  };
  std::map<std::string, CachedCert, std::less<>> by_der;  // Guarded by mutex.
  std::mutex mutex;
  std::shared_ptr<X509_STORE> current;  // Guarded by mutex.
  std::map<std::string, Cached> cache;  // Guarded by mutex.
};

TrustStore::TrustStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrustStore::~TrustStore() = default;

Result<std::shared_ptr<TrustStore>> TrustStore::load(
    const std::filesystem::path& ca_bundle, const std::vector<std::filesystem::path>& crls) {
  auto impl = std::make_unique<Impl>();
  impl->bundle = ca_bundle;
  impl->crls = crls;
  auto store = impl->build();
  if (!store) return fail(store.error());
  impl->current = *store;
  return std::shared_ptr<TrustStore>(new TrustStore(std::move(impl)));
}

Result<SignerIdentity> TrustStore::verify(X509* leaf,
                                          const std::vector<X509*>& intermediates) const {
  return impl_->verify(leaf, intermediates);
}

Result<void> TrustStore::reload() {
  auto store = impl_->build();
  if (!store) return fail(store.error());
  std::lock_guard lock(impl_->mutex);
  impl_->current = *store;
  impl_->cache.clear();
  impl_->by_der.clear();
  return {};
}

Result<std::shared_ptr<const VerifiedCertificate>> TrustStore::verify_base64(
    std::string_view der_base64, const std::vector<std::string_view>& intermediates_base64) const {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->by_der.find(der_base64);
    if (it != impl_->by_der.end() && it->second.until > now) {
      if (it->second.cert) return it->second.cert;
      return fail(Errc::kCrypto, it->second.reason);
    }
  }
  auto decode = [](std::string_view b64) -> X509* {
    auto der = base64_decode(b64);
    if (!der) return nullptr;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
    return d2i_X509(nullptr, &p, static_cast<long>(der->size()));
  };
  X509* leaf = decode(der_base64);
  if (leaf == nullptr) return fail(Errc::kCrypto, "an X509Certificate in KeyInfo cannot be read");
  std::vector<X509*> rest;
  for (auto b : intermediates_base64) {
    if (X509* c = decode(b)) rest.push_back(c);
  }
  auto id = impl_->verify(leaf, rest);
  for (X509* c : rest) X509_free(c);
  Impl::CachedCert entry;
  entry.until = now + kCacheFor;
  if (id) {
    entry.cert = std::make_shared<VerifiedCertificate>(leaf, *id);
  } else {
    X509_free(leaf);
    entry.reason = id.error().message;
  }
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->by_der.size() > 1000) impl_->by_der.clear();
    impl_->by_der[std::string(der_base64)] = entry;
  }
  if (!entry.cert) return fail(Errc::kCrypto, entry.reason);
  return entry.cert;
}

}  // namespace sluice::trust
