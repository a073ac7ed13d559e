#include "trust/signer.h"

#include "common/encoding.h"
#include "trust/c14n.h"
#include "trust/dsig.h"
#include "xml/envelope.h"
#include "xml/parse.h"

namespace sluice::trust {
namespace {

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
const xmlChar* X(const std::string& s) { return reinterpret_cast<const xmlChar*>(s.c_str()); }

xmlNode* child(xmlNode* parent, xmlNs* ns, const char* name) {
  return xmlNewChild(parent, ns, X(name), nullptr);
}

xmlNode* with_algorithm(xmlNode* parent, xmlNs* ns, const char* name, const char* algorithm) {
  xmlNode* n = child(parent, ns, name);
  xmlNewProp(n, X("Algorithm"), X(algorithm));
  return n;
}

}  // namespace

std::string canonical_signed_info(const char* signature_method, const std::string& digest_b64) {
  std::string s;
  s.reserve(700);
  s += "<ds:SignedInfo xmlns:ds=\"";
  s += kDsigNs;
  s += "\"><ds:CanonicalizationMethod Algorithm=\"";
  s += kExcC14n;
  s += "\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"";
  s += signature_method;
  s += "\"></ds:SignatureMethod><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"";
  s += kEnveloped;
  s += "\"></ds:Transform><ds:Transform Algorithm=\"";
  s += kExcC14n;
  s += "\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"";
  s += kSha256;
  s += "\"></ds:DigestMethod><ds:DigestValue>";
  s += digest_b64;
  s += "</ds:DigestValue></ds:Reference></ds:SignedInfo>";
  return s;
}

Result<std::unique_ptr<DocumentSigner>> DocumentSigner::create(
    const std::filesystem::path& cert_chain, const std::filesystem::path& key,
    std::string signer_name) {
  auto k = SigningKey::load(cert_chain, key);
  if (!k) return fail(k.error());
  return std::unique_ptr<DocumentSigner>(new DocumentSigner(std::move(*k), std::move(signer_name)));
}

Result<std::string> DocumentSigner::sign(xmlDoc* doc) const {
  xmlNode* root = xmlDocGetRootElement(doc);
  if (root == nullptr) {
    return fail(Errc::kInvalidArgument, "nothing to sign: the document has no root element");
  }
  // The digest of the document as it is now equals the digest of the signed document minus
  // its enveloped signature, because the signature is added without any other node.
  auto canonical = canonical_document(doc);
  if (!canonical) return fail(canonical.error());
  auto md = sha256(*canonical);
  std::string digest =
      base64_encode(std::string_view(reinterpret_cast<const char*>(md.data()), md.size()));
  const char* method = signature_method_uri(key_.algorithm());
  auto value = key_.sign(canonical_signed_info(method, digest));
  if (!value) return fail(value.error());

  xmlNode* sig = xmlNewDocNode(doc, nullptr, X("Signature"), nullptr);
  xmlNs* ds = xmlNewNs(sig, X(kDsigNs), X("ds"));
  xmlSetNs(sig, ds);
  xmlAddChild(root, sig);
  xmlNode* si = child(sig, ds, "SignedInfo");
  with_algorithm(si, ds, "CanonicalizationMethod", kExcC14n);
  with_algorithm(si, ds, "SignatureMethod", method);
  xmlNode* ref = child(si, ds, "Reference");
  xmlNewProp(ref, X("URI"), X(""));
  xmlNode* transforms = child(ref, ds, "Transforms");
  with_algorithm(transforms, ds, "Transform", kEnveloped);
  with_algorithm(transforms, ds, "Transform", kExcC14n);
  with_algorithm(ref, ds, "DigestMethod", kSha256);
  xmlNewTextChild(ref, ds, X("DigestValue"), X(digest));
  xmlNewTextChild(sig, ds, X("SignatureValue"), X(base64_encode(*value)));
  xmlNode* key_info = child(sig, ds, "KeyInfo");
  xmlNode* x509 = child(key_info, ds, "X509Data");
  // The leaf only: the issuing CA is in every verifier's trust bundle.
  xmlNewTextChild(x509, ds, X("X509Certificate"), X(key_.chain_base64().front()));
  return digest;
}

Result<std::string> DocumentSigner::receipt(const ReceiptFields& f) const {
  xml::DocPtr doc(xmlNewDoc(X("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, X("Receipt"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  xmlNs* rc = xmlNewNs(root, X(xml::kReceiptNs), X("rc"));
  xmlNs* cm = xmlNewNs(root, X(xml::kCommonNs), X("cm"));
  xmlSetNs(root, rc);
  xmlNewTextChild(root, rc, X("MessageId"), X(f.message_id));
  if (auto slash = f.sender.find('/'); slash != std::string::npos) {
    xmlNode* sender = xmlNewChild(root, rc, X("Sender"), nullptr);
    xmlNewTextChild(sender, cm, X("Node"), X(f.sender.substr(0, slash)));
    xmlNewTextChild(sender, cm, X("System"), X(f.sender.substr(slash + 1)));
  }
  if (!f.sender_message_id.empty())
    xmlNewTextChild(root, rc, X("SenderMessageId"), X(f.sender_message_id));
  if (!f.doc_type.empty()) xmlNewTextChild(root, rc, X("DocType"), X(f.doc_type));
  if (!f.digest.empty()) {
    xmlNode* d = xmlNewTextChild(root, rc, X("Digest"), X(f.digest));
    xmlNewProp(d, X("Algorithm"), X(kSha256));
  }
  xmlNewTextChild(root, rc, X("Status"), X(f.status));
  if (!f.reason_code.empty()) xmlNewTextChild(root, rc, X("ReasonCode"), X(f.reason_code));
  if (!f.reason_text.empty())
    xmlNewTextChild(root, rc, X("ReasonText"), X(f.reason_text.substr(0, 1024)));
  xmlNewTextChild(root, rc, X("Time"), X(format_time_cn(f.time_ms)));
  xmlNewTextChild(root, rc, X("Signer"), X(signer_name_));
  if (auto r = sign(doc.get()); !r) return fail(r.error());
  return xml::serialize(doc.get());
}

}  // namespace sluice::trust
