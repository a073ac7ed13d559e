#include "trust/sender_signature.h"

#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include <libxml/valid.h>

#include <functional>
#include <mutex>

#include "common/encoding.h"
#include "trust/dsig.h"
#include "trust/keys.h"
#include "xml/parse.h"

namespace sluice::trust {
namespace {

struct DsigFree {
  void operator()(xmlSecDSigCtxPtr c) const { xmlSecDSigCtxDestroy(c); }
};
struct KeyFree {
  void operator()(xmlSecKeyPtr k) const { xmlSecKeyDestroy(k); }
};

std::string attr(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetNoNsProp(n, reinterpret_cast<const xmlChar*>(name));
  std::string out = v != nullptr ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return out;
}

void walk(xmlNode* n, const std::function<void(xmlNode*)>& f) {
  for (xmlNode* c = xml::first_child_element(n); c != nullptr; c = xml::next_element(c)) {
    f(c);
    walk(c, f);
  }
}

Error refuse(const std::string& why) { return Error(Errc::kCrypto, "sender signature: " + why); }

}  // namespace

xmlNode* sender_signature_of(xmlNode* business) {
  for (xmlNode* c = xml::first_child_element(business); c != nullptr; c = xml::next_element(c)) {
    if (xml::is(c, kDsigNs, "Signature")) return c;
  }
  return nullptr;
}

Result<std::unique_ptr<SenderSignatureVerifier>> SenderSignatureVerifier::create(
    std::shared_ptr<TrustStore> trust) {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    ok = xmlSecInit() >= 0 && xmlSecCheckVersion() == 1 && xmlSecCryptoAppInit(nullptr) >= 0 &&
         xmlSecCryptoInit() >= 0;
    // Refusals are reported by us with their reason; xmlsec prints nothing of its own.
    xmlSecErrorsDefaultCallbackEnableOutput(0);
  });
  if (!ok) return fail(Errc::kCrypto, "cannot initialise xmlsec1 with the OpenSSL backend");
  return std::unique_ptr<SenderSignatureVerifier>(new SenderSignatureVerifier(std::move(trust)));
}

Result<SignerIdentity> SenderSignatureVerifier::verify(xmlDoc* doc, xmlNode* business,
                                                       xmlNode* signature) const {
  std::string id = attr(business, "Id");
  if (id.empty()) return fail(refuse("the signed business document has no Id attribute"));

  // Profile checks with precise reasons, before xmlsec or any cryptography.
  xmlNode* si = xml::child(signature, kDsigNs, "SignedInfo");
  if (si == nullptr) return fail(refuse("no SignedInfo"));
  int refs = 0;
  std::string problem;
  walk(si, [&](xmlNode* n) {
    if (!problem.empty()) return;
    std::string alg = attr(n, "Algorithm");
    if (xml::is(n, kDsigNs, "Reference")) {
      ++refs;
      std::string uri = attr(n, "URI");
      if (uri.find(':') != std::string::npos) {
        problem = "external Reference URI " + uri + " refused (never fetched)";
      } else if (uri != "#" + id) {
        problem =
            "the Reference must point to the business document (#" + id + "), not \"" + uri + "\"";
      }
    } else if (xml::is(n, kDsigNs, "SignatureMethod") && alg != kEcdsaSha256 && alg != kRsaSha256) {
      problem = "weak or unsupported signature algorithm " + alg;
    } else if (xml::is(n, kDsigNs, "DigestMethod") && alg != kSha256) {
      problem = "weak or unsupported digest " + alg;
    } else if (xml::is(n, kDsigNs, "Transform") && alg != kEnveloped && alg != kExcC14n &&
               alg != "http://www.w3.org/TR/2001/REC-xml-c14n-20010315") {
      problem = "transform not allowed: " + alg;
    }
  });
  if (!problem.empty()) return fail(refuse(problem));
  if (refs != 1)
    return fail(refuse("exactly one Reference is required, found " + std::to_string(refs)));

  // The key comes only from a certificate our trust store accepts.
  xmlNode* key_info = xml::child(signature, kDsigNs, "KeyInfo");
  xmlNode* x509 = key_info != nullptr ? xml::child(key_info, kDsigNs, "X509Data") : nullptr;
  if (key_info != nullptr && xml::child(key_info, kDsigNs, "KeyValue") != nullptr &&
      x509 == nullptr) {
    return fail(refuse("a bare key in KeyInfo is never trusted; an X.509 certificate is required"));
  }
  if (x509 == nullptr) return fail(refuse("KeyInfo must carry the signer's X.509 certificate"));
  std::vector<X509Ptr> certs;
  for (xmlNode* c = xml::first_child_element(x509); c != nullptr; c = xml::next_element(c)) {
    if (!xml::is(c, kDsigNs, "X509Certificate")) continue;
    auto der = base64_decode(xml::text(c));
    const unsigned char* p = der ? reinterpret_cast<const unsigned char*>(der->data()) : nullptr;
    X509* cert = der ? d2i_X509(nullptr, &p, static_cast<long>(der->size())) : nullptr;
    if (cert == nullptr) return fail(refuse("an X509Certificate cannot be read"));
    certs.emplace_back(cert);
  }
  if (certs.empty()) return fail(refuse("KeyInfo holds no certificate"));
  std::vector<X509*> rest;
  for (std::size_t i = 1; i < certs.size(); ++i) rest.push_back(certs[i].get());
  auto signer = trust_->verify(certs[0].get(), rest);
  if (!signer) return fail(refuse(signer.error().message));

  EVP_PKEY* pub = X509_get0_pubkey(certs[0].get());
  if (pub == nullptr || EVP_PKEY_up_ref(pub) != 1)
    return fail(refuse("cannot use the certificate's key"));
  xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pub);
  if (data == nullptr) {
    EVP_PKEY_free(pub);
    return fail(refuse("cannot hand the certificate's key to xmlsec"));
  }
  std::unique_ptr<xmlSecKey, KeyFree> key(xmlSecKeyCreate());
  if (!key || xmlSecKeySetValue(key.get(), data) < 0) {
    xmlSecKeyDataDestroy(data);
    return fail(refuse("cannot create the verification key"));
  }

  // Only the business element is an ID, so "#id" can resolve to nothing else.
  xmlAttr* id_attr = xmlHasProp(business, reinterpret_cast<const xmlChar*>("Id"));
  if (xmlGetID(doc, reinterpret_cast<const xmlChar*>(id.c_str())) == nullptr) {
    xmlAddID(nullptr, doc, reinterpret_cast<const xmlChar*>(id.c_str()), id_attr);
  }

  std::unique_ptr<xmlSecDSigCtx, DsigFree> ctx(xmlSecDSigCtxCreate(nullptr));
  if (!ctx) return fail(refuse("cannot create an xmlsec context"));
  ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
  ctx->flags = XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS | XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
  for (xmlSecTransformId t : {xmlSecTransformEnvelopedId, xmlSecTransformExclC14NId,
                              xmlSecTransformInclC14NId, xmlSecTransformSha256Id}) {
    xmlSecDSigCtxEnableReferenceTransform(ctx.get(), t);
  }
  for (xmlSecTransformId t : {xmlSecTransformExclC14NId, xmlSecTransformInclC14NId,
                              xmlSecTransformEcdsaSha256Id, xmlSecTransformRsaSha256Id}) {
    xmlSecDSigCtxEnableSignatureTransform(ctx.get(), t);
  }
  ctx->signKey = key.release();  // owned by the context from here
  if (xmlSecDSigCtxVerify(ctx.get(), signature) < 0) {
    return fail(refuse("xmlsec could not process the signature (a disallowed construct)"));
  }
  if (ctx->status != xmlSecDSigStatusSucceeded) {
    return fail(
        refuse("bad signature or digest: the business document was changed after it was signed"));
  }
  xmlSecDSigReferenceCtxPtr ref =
      static_cast<xmlSecDSigReferenceCtxPtr>(xmlSecPtrListGetItem(&ctx->signedInfoReferences, 0));
  if (xmlSecPtrListGetSize(&ctx->signedInfoReferences) != 1 || ref == nullptr ||
      ref->uri == nullptr || std::string(reinterpret_cast<const char*>(ref->uri)) != "#" + id) {
    return fail(refuse("the verified Reference is not the business document"));
  }
  return std::move(*signer);
}

}  // namespace sluice::trust
