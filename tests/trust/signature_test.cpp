#include <catch2/catch.hpp>

#include <fstream>
#include <regex>

#include "tests/support/harness.h"
#include "trust/c14n.h"
#include "trust/dsig.h"
#include "trust/sender_signature.h"
#include "trust/signer.h"
#include "trust/verifier.h"
#include "xml/envelope.h"
#include "xml/validate.h"

using namespace sluice;
using namespace sluice::trust;
using sluice::test::dev_pki;
using sluice::test::dev_pki_rsa;

namespace {

std::shared_ptr<TrustStore> trust_store(const std::filesystem::path& pki = dev_pki()) {
  auto t = TrustStore::load(pki / "ca-bundle.pem", {pki / "crl-chain.pem"});
  if (!t) FAIL(t.error().message);
  return *t;
}

std::unique_ptr<DocumentSigner> signer(const std::string& name,
                                       const std::filesystem::path& pki = dev_pki()) {
  auto s = DocumentSigner::create(pki / (name + ".chain.pem"), pki / (name + ".key.pem"), name);
  if (!s) FAIL(s.error().message);
  return std::move(*s);
}

xml::DocPtr parse(const std::string& text) {
  xml::initialize(test::source_dir() / "schemas");
  auto d = xml::parse(text, {});
  if (!d) FAIL(d.error().message);
  return std::move(*d);
}

// A signed sample envelope, serialised.
std::string signed_sample(const DocumentSigner& s,
                          const std::string& rel = "case.accept/valid-1.xml") {
  auto doc = parse(test::sample(rel));
  auto r = s.sign(doc.get());
  if (!r) FAIL(r.error().message);
  return xml::serialize(doc.get());
}

std::string verify_error(const std::string& bytes, const std::filesystem::path& pki = dev_pki()) {
  DocumentVerifier v(trust_store(pki));
  auto r = v.verify_bytes(bytes, {});
  REQUIRE_FALSE(r);
  return r.error().message;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  if (p == std::string::npos) FAIL("cannot find " << from);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("a signed envelope verifies and names its signer (ECDSA and RSA)") {
  for (const auto& pki : {dev_pki(), dev_pki_rsa()}) {
    INFO(pki);
    auto s = signer("gateway-outer", pki);
    std::string bytes = signed_sample(*s);
    DocumentVerifier v(trust_store(pki));
    auto r = v.verify_bytes(bytes, {});
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r);
    CHECK(r->signer.system == "sluice-outer");
    CHECK(r->signer.node == "gateway");
    // The signed envelope is still valid against the schema.
    auto d = parse(bytes);
    static auto validator = xml::Validator::load(test::source_dir() / "schemas");
    CHECK((*validator)->validate(d.get()).empty());
  }
}

TEST_CASE("the fast path's SignedInfo is exactly what exclusive C14N makes of the element") {
  auto s = signer("gateway-outer");
  auto doc = parse(test::sample("case.register/valid-1.xml"));
  auto digest = s->sign(doc.get());
  REQUIRE(digest);
  xmlNode* root = xmlDocGetRootElement(doc.get());
  xmlNode* sig = xml::child(root, kDsigNs, "Signature");
  REQUIRE(sig != nullptr);
  auto c14n = canonical_element(xml::child(sig, kDsigNs, "SignedInfo"));
  REQUIRE(c14n);
  CHECK(*c14n == canonical_signed_info(kEcdsaSha256, *digest));
}

TEST_CASE("tampering with any signed part is refused with the reason") {
  auto s = signer("gateway-outer");
  std::string good = signed_sample(*s);
  SECTION("tampered header") {
    CHECK_THAT(verify_error(replace(good, "<env:DocVersion>1<", "<env:DocVersion>2<")),
               Catch::Contains("bad digest"));
  }
  SECTION("tampered body") {
    CHECK_THAT(verify_error(replace(good, "予以受理", "不予受理")), Catch::Contains("bad digest"));
  }
  SECTION("tampered signature value") {
    std::regex sv("<ds:SignatureValue>[A-Za-z0-9+/]{4}");
    std::string t = std::regex_replace(good, sv, "<ds:SignatureValue>AAAA",
                                       std::regex_constants::format_first_only);
    CHECK_THAT(verify_error(t), Catch::Contains("bad signature"));
  }
  SECTION("a comment inserted into a signed text node") {
    CHECK_THAT(verify_error(replace(good, "予以受理", "予以<!-- -->受理")),
               Catch::Contains("comment"));
  }
}

TEST_CASE("signature wrapping (moved, duplicated, re-parented) is refused") {
  auto s = signer("gateway-outer");
  std::string good = signed_sample(*s);
  auto sig_start = good.find("<ds:Signature");
  auto sig_end = good.find("</ds:Signature>") + 15;
  std::string sig = good.substr(sig_start, sig_end - sig_start);
  std::string unsigned_doc = good.substr(0, sig_start) + good.substr(sig_end);
  SECTION("signature moved into the Body") {
    std::string moved = replace(unsigned_doc, "</env:Body>", sig + "</env:Body>");
    CHECK_THAT(verify_error(moved), Catch::Contains("signature wrapping"));
  }
  SECTION("signature moved before the Body") {
    std::string moved = replace(unsigned_doc, "<env:Body>", sig + "<env:Body>");
    CHECK_THAT(verify_error(moved), Catch::Contains("signature wrapping"));
  }
  SECTION("signature duplicated") {
    std::string twice = replace(good, "</env:Envelope>", sig + "</env:Envelope>");
    CHECK_THAT(verify_error(twice), Catch::Contains("more than one"));
  }
  SECTION("a duplicated signed element (second Body)") {
    auto b0 = good.find("<env:Body>");
    auto b1 = good.find("</env:Body>") + 11;
    std::string dup = good.substr(0, b1) + good.substr(b0, b1 - b0) + good.substr(b1);
    CHECK_THAT(verify_error(dup), Catch::Contains("bad digest"));
  }
  SECTION("the original wrapped inside an Object of the signature (XSW)") {
    std::string payload = unsigned_doc.substr(unsigned_doc.find("<env:Envelope"));
    std::string wrapped =
        replace(good, "</ds:KeyInfo>", "</ds:KeyInfo><ds:Object>" + payload + "</ds:Object>");
    CHECK_THAT(verify_error(wrapped),
               Catch::Contains("exactly SignedInfo, SignatureValue and KeyInfo"));
  }
  SECTION("a signature over a different element (#id reference)") {
    CHECK_THAT(verify_error(replace(good, "URI=\"\"", "URI=\"#body\"")),
               Catch::Contains("whole document"));
  }
  SECTION("an external Reference URI") {
    CHECK_THAT(verify_error(replace(good, "URI=\"\"", "URI=\"http://attacker.example/doc.xml\"")),
               Catch::Contains("external Reference URI"));
    CHECK_THAT(verify_error(replace(good, "URI=\"\"", "URI=\"file:///etc/passwd\"")),
               Catch::Contains("never fetched"));
  }
  SECTION("an extra transform (XSLT, XPath) that changes what was signed") {
    std::string xslt = replace(
        good, "<ds:Transforms>",
        "<ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"/>");
    CHECK_THAT(verify_error(xslt), Catch::Contains("transform not allowed"));
  }
  SECTION("more than one Reference") {
    auto r0 = good.find("<ds:Reference");
    auto r1 = good.find("</ds:Reference>") + 15;
    std::string two = good.substr(0, r1) + good.substr(r0, r1 - r0) + good.substr(r1);
    CHECK_THAT(verify_error(two), Catch::Contains("more than one Reference"));
  }
}

TEST_CASE("weak algorithms and bare keys are refused before any cryptography") {
  auto s = signer("gateway-outer");
  std::string good = signed_sample(*s);
  CHECK_THAT(verify_error(
                 replace(good, kEcdsaSha256, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1")),
             Catch::Contains("weak signature algorithm"));
  CHECK_THAT(
      verify_error(replace(good, kEcdsaSha256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1")),
      Catch::Contains("weak signature algorithm"));
  CHECK_THAT(verify_error(replace(good, kSha256, "http://www.w3.org/2000/09/xmldsig#sha1")),
             Catch::Contains("weak digest"));
  CHECK_THAT(verify_error(replace(good, kSha256, "http://www.w3.org/2001/04/xmldsig-more#md5")),
             Catch::Contains("weak digest"));
  auto k0 = good.find("<ds:KeyInfo>");
  auto k1 = good.find("</ds:KeyInfo>") + 13;
  std::string bare =
      good.substr(0, k0) +
      "<ds:KeyInfo><ds:KeyValue><ds:ECKeyValue>AAAA</ds:ECKeyValue></ds:KeyValue></ds:KeyInfo>" +
      good.substr(k1);
  CHECK_THAT(verify_error(bare), Catch::Contains("bare key"));
}

TEST_CASE("only certificates that chain to the configured CAs, valid and unrevoked, are accepted") {
  struct Case {
    const char* cert;
    const char* reason;
  };
  for (auto c : {Case{"sender-440607-expired", "certificate expired"},
                 Case{"sender-440608-notyet", "not yet valid"},
                 Case{"sender-440606-revoked", "certificate revoked"},
                 Case{"sender-440610-rogue", "untrusted chain"},
                 Case{"sender-440609-selfsigned", "self-signed"},
                 Case{"sender-440611-nosign", "wrong key usage"}}) {
    INFO(c.cert);
    auto s = signer(c.cert);
    CHECK_THAT(verify_error(signed_sample(*s)), Catch::Contains(c.reason));
  }
  auto ok = signer("sender-440604-approval");
  DocumentVerifier v(trust_store());
  auto r = v.verify_bytes(signed_sample(*ok), {});
  REQUIRE(r);
  CHECK(r->signer.sender() == "440604/approval");
}

TEST_CASE("a trust store refuses a missing or expired CRL") {
  auto none = TrustStore::load(dev_pki() / "ca-bundle.pem", {});
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message, Catch::Contains("no CRL"));
  auto expired =
      TrustStore::load(dev_pki() / "ca-bundle.pem",
                       {dev_pki() / "root.crl.pem", dev_pki() / "intermediate.expired-crl.pem"});
  REQUIRE_FALSE(expired);
  CHECK_THAT(expired.error().message, Catch::Contains("expired"));
}

TEST_CASE("receipts are signed, schema-valid and verifiable") {
  auto s = signer("gateway-outer");
  ReceiptFields f{.message_id = "01a206a5-7269-79a7-baea-dc5e35d66065",
                  .sender = "440604/approval",
                  .sender_message_id = "S-1",
                  .doc_type = "case.accept",
                  .digest = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                  .status = "accepted",
                  .time_ms = 1'795'400'000'000};
  auto receipt = s->receipt(f);
  REQUIRE(receipt);
  DocumentVerifier v(trust_store());
  auto r = v.verify_bytes(*receipt, {});
  INFO(*receipt);
  REQUIRE(r);
  auto d = parse(*receipt);
  static auto validator = xml::Validator::load(test::source_dir() / "schemas");
  auto problems = (*validator)->validate(d.get());
  INFO(xml::describe(problems));
  CHECK(problems.empty());
  CHECK_THAT(verify_error(replace(*receipt, "accepted", "rejected")),
             Catch::Contains("bad digest"));
}

namespace {

Result<SignerIdentity> verify_sender(const std::string& text) {
  auto doc = parse(text);
  auto verifier = SenderSignatureVerifier::create(trust_store());
  REQUIRE(verifier);
  xmlNode* root = xmlDocGetRootElement(doc.get());
  xmlNode* business = xml::first_child_element(xml::child(root, xml::kEnvelopeNs, "Body"));
  xmlNode* sig = sender_signature_of(business);
  REQUIRE(sig != nullptr);
  return (*verifier)->verify(doc.get(), business, sig);
}

}  // namespace

TEST_CASE("a sender's own signature over its Body is verified (made by the xmlsec1 CLI)") {
  std::string signed_doc = test::sender_signed_sample("sender-440604-approval", "sender-signed-1");
  auto ok = verify_sender(signed_doc);
  INFO((ok ? std::string() : ok.error().message));
  REQUIRE(ok);
  CHECK(ok->sender() == "440604/approval");
  auto tampered = verify_sender(replace(signed_doc, "准予许可", "不予许可"));
  REQUIRE_FALSE(tampered);
  CHECK_THAT(tampered.error().message, Catch::Contains("changed after it was signed"));
  auto other = verify_sender(replace(signed_doc, "URI=\"#body-conclude\"", "URI=\"#elsewhere\""));
  REQUIRE_FALSE(other);
  CHECK_THAT(other.error().message, Catch::Contains("must point to the business document"));
  auto revoked =
      verify_sender(test::sender_signed_sample("sender-440606-revoked", "sender-signed-1"));
  REQUIRE_FALSE(revoked);
  CHECK_THAT(revoked.error().message, Catch::Contains("revoked"));
}
