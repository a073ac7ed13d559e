#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>

#include "common/encoding.h"

namespace sluice::net {
namespace {

namespace ssl = boost::asio::ssl;

constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return "unknown OpenSSL error";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};

Result<void> add_crls(X509_STORE* store, const std::filesystem::path& file) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    return fail(Errc::kIo, "cannot read CRL file " + file.string() + ": " + openssl_error());
  }
  int count = 0;
  for (;;) {
    std::unique_ptr<X509_CRL, CrlFree> crl(
        PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) {
      ERR_clear_error();
      break;
    }
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    if (next == nullptr || X509_cmp_current_time(next) <= 0) {
      return fail(Errc::kCrypto, "CRL in " + file.string() +
                                     " has expired (nextUpdate passed); fetch a current CRL");
    }
    if (X509_STORE_add_crl(store, crl.get()) != 1) {
      return fail(Errc::kCrypto, "cannot add CRL from " + file.string() + ": " + openssl_error());
    }
    ++count;
  }
  if (count == 0) {
    return fail(Errc::kCrypto, "no CRL found in " + file.string());
  }
  return {};
}

std::string name_entry(X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) {
    return {};
  }
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    return {};
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

Result<std::shared_ptr<ssl::context>> build_server(const TlsServerConfig& c) {
  if (auto r = check_key_permissions(c.key); !r) {
    return fail(r.error());
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* s = ctx->native_handle();
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  SSL_CTX_set_options(
      s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(s, kTls12Ciphers) != 1) {
    return fail(Errc::kCrypto, "cipher list: " + openssl_error());
  }
  if (SSL_CTX_use_certificate_chain_file(s, c.cert.c_str()) != 1) {
    return fail(Errc::kCrypto,
                "cannot load certificate " + c.cert.string() + ": " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(s, c.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(Errc::kCrypto, "cannot load key " + c.key.string() + ": " + openssl_error());
  }
  if (SSL_CTX_check_private_key(s) != 1) {
    return fail(Errc::kCrypto, "key " + c.key.string() + " does not match " + c.cert.string());
  }
  static const unsigned char kSessionContext[] = "sluice";
  SSL_CTX_set_session_id_context(s, kSessionContext, sizeof kSessionContext - 1);
  if (!c.client_ca.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(s);
    if (X509_STORE_load_file(store, c.client_ca.c_str()) != 1) {
      return fail(Errc::kCrypto,
                  "cannot load client CA bundle " + c.client_ca.string() + ": " + openssl_error());
    }
    if (c.crls.empty()) {
      return fail(Errc::kInvalidArgument,
                  "client certificates are verified against " + c.client_ca.string() +
                      " but no CRL is configured (crls = [...]); revocation must be checked");
    }
    for (const auto& crl : c.crls) {
      if (auto r = add_crls(store, crl); !r) {
        return fail(r.error());
      }
    }
    X509_STORE_set_flags(
        store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_X509_STRICT);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca.c_str());
    if (names != nullptr) {
      SSL_CTX_set_client_CA_list(s, names);
    }
    int mode = SSL_VERIFY_PEER;
    if (c.require_client_cert) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(s, mode, nullptr);
    SSL_CTX_set_verify_depth(s, 4);
  } else if (c.require_client_cert) {
    return fail(Errc::kInvalidArgument,
                "require_client_cert is set but no client_ca is configured");
  }
  return ctx;
}

}  // namespace

Result<void> check_key_permissions(const std::filesystem::path& key) {
  struct stat st;
  if (::stat(key.c_str(), &st) != 0) {
    return fail(Errc::kIo, "cannot stat private key " + key.string() + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Errc::kForbidden, "private key " + key.string() + " has mode " + mode +
                                      "; it must not be readable by group or others (chmod 600)");
  }
  return {};
}

Result<std::shared_ptr<ServerTls>> ServerTls::create(const TlsServerConfig& config) {
  auto ctx = build_server(config);
  if (!ctx) {
    return fail(ctx.error());
  }
  std::shared_ptr<ServerTls> tls(new ServerTls(config));
  tls->context_ = std::move(*ctx);
  return tls;
}

std::shared_ptr<ssl::context> ServerTls::context() const {
  std::lock_guard lock(mutex_);
  return context_;
}

Result<void> ServerTls::reload() {
  auto ctx = build_server(config_);
  if (!ctx) {
    return fail(ctx.error());
  }
  std::lock_guard lock(mutex_);
  context_ = std::move(*ctx);
  return {};
}

Result<std::shared_ptr<ssl::context>> make_client_context(const std::filesystem::path& ca,
                                                          const std::filesystem::path& cert,
                                                          const std::filesystem::path& key) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* s = ctx->native_handle();
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (!ca.empty()) {
    if (SSL_CTX_load_verify_file(s, ca.c_str()) != 1) {
      return fail(Errc::kCrypto, "cannot load CA bundle " + ca.string() + ": " + openssl_error());
    }
  } else {
    SSL_CTX_set_default_verify_paths(s);
  }
  SSL_CTX_set_verify(s, SSL_VERIFY_PEER, nullptr);
  if (!cert.empty()) {
    if (auto r = check_key_permissions(key); !r) {
      return fail(r.error());
    }
    if (SSL_CTX_use_certificate_chain_file(s, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(s, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s) != 1) {
      return fail(Errc::kCrypto,
                  "cannot load client certificate " + cert.string() + ": " + openssl_error());
    }
  }
  return ctx;
}

PeerIdentity peer_identity(ssl_st* ssl) {
  PeerIdentity id;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
    return id;
  }
  X509_NAME* subject = X509_get_subject_name(cert);
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio && X509_NAME_print_ex(bio.get(), subject, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    id.subject.assign(data, static_cast<std::size_t>(len));
  }
  id.node = name_entry(subject, NID_organizationalUnitName);
  id.system = name_entry(subject, NID_commonName);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      id.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    id.fingerprint = hex_encode(std::string_view(reinterpret_cast<char*>(md), md_len));
  }
  id.authenticated = true;
  return id;
}

}  // namespace sluice::net
