#include "trust/verifier.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/encoding.h"
#include "trust/c14n.h"
#include "trust/dsig.h"
#include "trust/keys.h"
#include "xml/envelope.h"

namespace sluice::trust {
namespace {

std::string attr(xmlNode* n, const char* name, bool* present = nullptr) {
  xmlChar* v = xmlGetNoNsProp(n, reinterpret_cast<const xmlChar*>(name));
  if (present != nullptr) *present = v != nullptr;
  std::string out = v != nullptr ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return out;
}

bool is_ds(xmlNode* n, const char* name) { return xml::is(n, kDsigNs, name); }

// Element children only; any non-whitespace text is reported through `text`.
std::vector<xmlNode*> elements(xmlNode* parent, bool* text = nullptr) {
  std::vector<xmlNode*> out;
  for (xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      out.push_back(c);
    } else if (c->type == XML_TEXT_NODE && text != nullptr) {
      for (const xmlChar* p = c->content; p != nullptr && *p != 0; ++p) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') *text = true;
      }
    } else if (c->type != XML_TEXT_NODE && text != nullptr) {
      *text = true;
    }
  }
  return out;
}

Error refuse(const std::string& why) { return Error(Errc::kCrypto, why); }

void collect_signatures(xmlNode* n, std::vector<xmlNode*>& out) {
  for (xmlNode* c = xml::first_child_element(n); c != nullptr; c = xml::next_element(c)) {
    if (is_ds(c, "Signature")) out.push_back(c);
    collect_signatures(c, out);
  }
}

std::string weak_or_unknown(const std::string& uri, const char* what) {
  bool weak = uri.find("sha1") != std::string::npos || uri.find("md5") != std::string::npos ||
              uri.find("dsa-") != std::string::npos;
  return std::string(weak ? "weak " : "unsupported ") + what + " " + uri;
}

}  // namespace

Result<Verified> DocumentVerifier::verify_bytes(std::string_view bytes,
                                                const xml::ParseLimits& limits,
                                                xml::DocPtr* out) const {
  xml::ParseLimits strict = limits;
  strict.comments = xml::Comments::kRefuse;
  auto doc = xml::parse(bytes, strict);
  if (!doc) {
    return fail(Errc::kCrypto, "the signed document cannot be read: " + doc.error().message);
  }
  auto r = verify(doc->get());
  if (r && out != nullptr) *out = std::move(*doc);
  return r;
}

Result<Verified> DocumentVerifier::verify(xmlDoc* doc) const {
  xmlNode* root = xmlDocGetRootElement(doc);
  if (root == nullptr) return fail(refuse("no document"));

  // 1. Where the signatures are: one gateway signature, the root's last element child; a
  //    sender's own may sit at the end of the Body's business document. Nothing else.
  std::vector<xmlNode*> sigs;
  collect_signatures(root, sigs);
  xmlNode* gateway_sig = nullptr;
  xmlNode* last = nullptr;
  for (xmlNode* c = xml::first_child_element(root); c != nullptr; c = xml::next_element(c))
    last = c;
  xmlNode* body = xml::child(root, xml::kEnvelopeNs, "Body");
  xmlNode* business = body != nullptr ? xml::first_child_element(body) : nullptr;
  if (std::count_if(sigs.begin(), sigs.end(), [&](xmlNode* s) { return s->parent == root; }) > 1) {
    return fail(refuse("signature wrapping: more than one gateway Signature"));
  }
  for (xmlNode* s : sigs) {
    if (s->parent == root) {
      if (s != last) {
        return fail(refuse(
            "signature wrapping: the gateway Signature must be the last element of the document"));
      }
      gateway_sig = s;
    } else if (!(business != nullptr && s->parent == business)) {
      return fail(refuse("signature wrapping: unexpected Signature at " + xml::node_path(s)));
    }
  }
  if (gateway_sig == nullptr) {
    return fail(refuse("the document is not signed (no Signature at the end of the document)"));
  }

  // 2. The profile, before any cryptography.
  bool stray = false;
  auto parts = elements(gateway_sig, &stray);
  if (stray || parts.size() != 3 || !is_ds(parts[0], "SignedInfo") ||
      !is_ds(parts[1], "SignatureValue") || !is_ds(parts[2], "KeyInfo")) {
    return fail(refuse("Signature must hold exactly SignedInfo, SignatureValue and KeyInfo"));
  }
  xmlNode* signed_info = parts[0];
  auto si = elements(signed_info, &stray);
  if (stray || si.size() < 3 || !is_ds(si[0], "CanonicalizationMethod") ||
      !is_ds(si[1], "SignatureMethod")) {
    return fail(
        refuse("SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference"));
  }
  if (si.size() > 3) return fail(refuse("more than one Reference is not accepted"));
  if (!is_ds(si[2], "Reference")) return fail(refuse("SignedInfo must end with one Reference"));
  if (attr(si[0], "Algorithm") != kExcC14n || xml::first_child_element(si[0]) != nullptr) {
    return fail(refuse(weak_or_unknown(attr(si[0], "Algorithm"), "canonicalization") +
                       " (exclusive C14N without parameters is required)"));
  }
  std::string method = attr(si[1], "Algorithm");
  KeyAlgorithm alg;
  if (method == kEcdsaSha256) {
    alg = KeyAlgorithm::kEcdsaP256Sha256;
  } else if (method == kRsaSha256) {
    alg = KeyAlgorithm::kRsaSha256;
  } else {
    return fail(refuse(weak_or_unknown(method, "signature algorithm")));
  }
  xmlNode* ref = si[2];
  bool has_uri = false;
  std::string uri = attr(ref, "URI", &has_uri);
  if (!has_uri || !uri.empty()) {
    if (uri.find(':') != std::string::npos) {
      return fail(refuse("external Reference URI " + uri + " refused (never fetched)"));
    }
    return fail(refuse("the Reference must cover the whole document (URI=\"\"), not " +
                       (has_uri ? "\"" + uri + "\"" : std::string("a missing URI"))));
  }
  auto rparts = elements(ref, &stray);
  if (stray || rparts.size() != 3 || !is_ds(rparts[0], "Transforms") ||
      !is_ds(rparts[1], "DigestMethod") || !is_ds(rparts[2], "DigestValue")) {
    return fail(refuse("Reference must hold exactly Transforms, DigestMethod and DigestValue"));
  }
  auto transforms = elements(rparts[0], &stray);
  const char* expected[] = {kEnveloped, kExcC14n};
  for (std::size_t i = 0; i < transforms.size(); ++i) {
    std::string t = attr(transforms[i], "Algorithm");
    if (!is_ds(transforms[i], "Transform") || i >= 2 || t != expected[i] ||
        xml::first_child_element(transforms[i]) != nullptr) {
      return fail(refuse("transform not allowed: " + t +
                         " (only enveloped-signature then exclusive C14N)"));
    }
  }
  if (stray || transforms.size() != 2) {
    return fail(
        refuse("exactly the enveloped-signature and exclusive C14N transforms are required"));
  }
  std::string digest_method = attr(rparts[1], "Algorithm");
  if (digest_method != kSha256) return fail(refuse(weak_or_unknown(digest_method, "digest")));
  std::string digest_value = xml::text(rparts[2]);
  auto digest_bytes = base64_decode(digest_value);
  if (!digest_bytes || digest_bytes->size() != 32) {
    return fail(refuse("DigestValue is not a base64 SHA-256 digest"));
  }
  auto signature_value = base64_decode(xml::text(parts[1]));
  if (!signature_value) return fail(refuse("SignatureValue is not base64"));
  auto key_info = elements(parts[2], &stray);
  if (stray || key_info.size() != 1 || !is_ds(key_info[0], "X509Data")) {
    for (xmlNode* k : key_info) {
      if (is_ds(k, "KeyValue")) {
        return fail(
            refuse("a bare key in KeyInfo is never trusted; an X.509 certificate is required"));
      }
    }
    return fail(refuse("KeyInfo must hold exactly one X509Data"));
  }
  std::vector<std::string> cert_texts;
  for (xmlNode* c : elements(key_info[0], &stray)) {
    if (!is_ds(c, "X509Certificate")) {
      return fail(refuse("X509Data may hold only X509Certificate elements"));
    }
    std::string t = xml::text(c);
    std::erase_if(t, [](char ch) { return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t'; });
    cert_texts.push_back(std::move(t));
  }
  if (cert_texts.empty()) return fail(refuse("KeyInfo holds no certificate"));

  // 3. The signer: a chain to the trust store (decoded and judged once per certificate).
  std::vector<std::string_view> intermediates(cert_texts.begin() + 1, cert_texts.end());
  auto signer = trust_->verify_base64(cert_texts[0], intermediates);
  if (!signer) return fail(signer.error());

  // 4. The signature over SignedInfo.
  auto canonical_si = canonical_element(signed_info);
  if (!canonical_si) return fail(canonical_si.error());
  EVP_PKEY* pub = (*signer)->public_key();
  bool ec = pub != nullptr && EVP_PKEY_is_a(pub, "EC");
  if (pub == nullptr || ec != (alg == KeyAlgorithm::kEcdsaP256Sha256)) {
    return fail(refuse("the certificate's key does not match the SignatureMethod " + method));
  }
  std::optional<std::string> sig_der =
      ec ? ecdsa_raw_to_der(*signature_value) : std::optional<std::string>(*signature_value);
  if (!sig_der) {
    return fail(refuse("ECDSA-SHA256 SignatureValue must be 64 bytes (r||s)"));
  }
  auto si_digest = sha256(*canonical_si);
  if (!(*signer)->verify_digest(si_digest.data(), si_digest.size(),
                                reinterpret_cast<const unsigned char*>(sig_der->data()),
                                sig_der->size())) {
    return fail(refuse("bad signature: the SignatureValue does not match SignedInfo"));
  }

  // 5. The digest over the document without its signature: the very tree the caller uses.
  xmlNode* next = gateway_sig->next;
  xmlUnlinkNode(gateway_sig);
  auto canonical = canonical_document(doc);
  if (next != nullptr) {
    xmlAddPrevSibling(next, gateway_sig);
  } else {
    xmlAddChild(root, gateway_sig);
  }
  if (!canonical) return fail(canonical.error());
  auto md = sha256(*canonical);
  if (CRYPTO_memcmp(md.data(), digest_bytes->data(), 32) != 0) {
    return fail(refuse("bad digest: the document was changed after it was signed"));
  }
  return Verified{(*signer)->identity(), digest_value};
}

Result<void> require_gateway(const SignerIdentity& signer,
                             const std::vector<std::string>& gateways) {
  if (signer.node != "gateway") {
    return fail(Errc::kForbidden, "signed by " + signer.sender() + " (" + signer.subject +
                                      "), which is not a gateway certificate (OU=gateway)");
  }
  if (!gateways.empty() &&
      std::find(gateways.begin(), gateways.end(), signer.system) == gateways.end()) {
    std::string list;
    for (const auto& g : gateways) list += (list.empty() ? "" : ", ") + g;
    return fail(Errc::kForbidden, "signed by gateway " + signer.system + ", not by one of " + list);
  }
  return {};
}

}  // namespace sluice::trust
