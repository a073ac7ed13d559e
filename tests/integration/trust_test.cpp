// Signatures, receipts, certificate refusals and CRL reload through a real sluiced.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <boost/json.hpp>

#include <fstream>
#include <thread>

#include "tests/support/harness.h"
#include "trust/verifier.h"

using namespace sluice;
using namespace sluice::test;
namespace json = boost::json;

namespace {

trust::DocumentVerifier verifier() {
  auto t = trust::TrustStore::load(dev_pki() / "ca-bundle.pem", {dev_pki() / "crl-chain.pem"});
  if (!t) FAIL(t.error().message);
  return trust::DocumentVerifier(*t);
}

json::object parse_object(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) FAIL("not a JSON object: " << body);
  return v.as_object();
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  if (p == std::string::npos) FAIL("cannot find " << from);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("every accepted document is stored signed, with a signed receipt") {
  test::TempDir delivered("delivered");
  tools::SinkOptions so;
  so.write_dir = delivered.path();
  SinkRunner sink(so);
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto client = gw.client("sender-440604-approval");
  auto r = client->request("POST", "/v1/messages", sample("case.fee/valid-1.xml", "sig-1"));
  REQUIRE(r);
  REQUIRE(r->status == 202);
  auto answer = parse_object(r->body);
  std::string id(answer["messageId"].as_string());
  std::string receipt(answer["receipt"].as_string());
  auto v = verifier();
  auto rv = v.verify_bytes(receipt, {});
  INFO(receipt);
  REQUIRE(rv);
  CHECK(rv->signer.system == "sluice-outer");
  CHECK(receipt.find(id) != std::string::npos);
  CHECK(receipt.find("<rc:Status>accepted</rc:Status>") != std::string::npos);

  REQUIRE(sink.wait_for(1).distinct == 1);
  std::string doc = read_text(delivered / (id + ".xml"));
  auto dv = v.verify_bytes(doc, {});
  INFO(doc);
  REQUIRE(dv);
  // The receipt's digest is the digest of what was stored and delivered.
  CHECK(receipt.find(dv->digest) != std::string::npos);

  // The receipt again, the same; and a delivery receipt once delivered.
  auto again = client->request("GET", "/v1/messages/" + id + "/receipt");
  CHECK(again->body == receipt);
  std::string delivery;
  for (int i = 0; i < 200 && delivery.empty(); ++i) {
    auto d = client->request("GET", "/v1/messages/" + id + "/receipt?status=delivered");
    if (d->status == 200) delivery = d->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE_FALSE(delivery.empty());
  CHECK(delivery.find("<rc:Status>delivered</rc:Status>") != std::string::npos);
  CHECK(v.verify_bytes(delivery, {}));
  // A resend answers with the original receipt.
  auto resend = client->request("POST", "/v1/messages", sample("case.fee/valid-1.xml", "sig-1"));
  CHECK(std::string(parse_object(resend->body)["receipt"].as_string()) == receipt);
}

TEST_CASE("a sender's own Body signature is verified and must be its own") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto signed_by = [](const std::string& cert, const std::string& smid) {
    return sender_signed_sample(cert, smid);
  };
  auto client = gw.client("sender-440604-approval");
  auto ok = client->request("POST", "/v1/messages", signed_by("sender-440604-approval", "body-1"));
  INFO(ok->body);
  CHECK(ok->status == 202);
  auto theirs = client->request("POST", "/v1/messages", signed_by("sender-440605-tax", "body-2"));
  INFO(theirs->body);
  CHECK(theirs->status == 403);
  CHECK(json_field(theirs->body, "code") == "signature.sender-mismatch");
  auto tampered = client->request(
      "POST", "/v1/messages",
      replace(signed_by("sender-440604-approval", "body-3"), "准予许可", "不予许可"));
  CHECK(tampered->status == 422);
  CHECK(json_field(tampered->body, "code") == "signature.invalid");
}

TEST_CASE("client certificates outside the trust store are refused at the handshake") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  for (const char* cert :
       {"sender-440606-revoked", "sender-440607-expired", "sender-440608-notyet",
        "sender-440609-selfsigned", "sender-440610-rogue", "sender-440611-nosign"}) {
    INFO(cert);
    auto c = gw.client(cert);
    auto r = c->request("GET", "/v1/health");
    CHECK_FALSE(r);
  }
  CHECK(gw.client("sender-440604-approval")->request("GET", "/v1/health")->status == 200);
}

TEST_CASE("a refused sender is answered 403 and audited") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .senders = "[[sender]]\nid = \"440604/approval\"\ndoc_types = [\"case.accept\"]\n"
                         "receivers = [\"440600/supervision\"]\n"});
  auto client = gw.client("sender-440604-approval");
  auto r = client->request("POST", "/v1/messages", sample("case.review/valid-1.xml", "deny-1"));
  CHECK(r->status == 403);
  CHECK(r->body.find("may not send DocType case.review") != std::string::npos);
  auto tax = gw.client("sender-440605-tax");
  auto r2 = tax->request("POST", "/v1/messages",
                         sample("case.accept/valid-1.xml", "deny-2", "440605/tax"));
  CHECK(r2->status == 403);
  CHECK(r2->body.find("not configured") != std::string::npos);
  auto audit = gw.auditor()->request("GET", "/admin/v1/audit?n=20")->body;
  CHECK(audit.find("ingest.refused") != std::string::npos);
}

TEST_CASE("a new CRL is taken at run time by sluicectl tls reload") {
  // Start with a CRL set that does not revoke 440606 yet: the root's CRL plus an
  // intermediate CRL issued before the revocation is not available, so use a copy of the
  // current files and swap in the expired one to show the reload is read (and refused).
  test::TempDir pki("reload-pki");
  std::filesystem::copy(dev_pki(), pki.path(), std::filesystem::copy_options::recursive);
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .data_extra = "crls = [\"" + (pki / "crl-chain.pem").string() + "\"]\n"});
  auto admin = gw.client("admin-secadmin");  // the security admin's task
  // A reload with current CRLs works and is audited.
  auto ok = admin->request("POST", "/admin/v1/tls/reload", "", "application/json");
  CHECK(ok->status == 200);
  // An expired CRL is refused; the previous material stays in force.
  std::filesystem::copy_file(dev_pki() / "intermediate.expired-crl.pem", pki / "crl-chain.pem",
                             std::filesystem::copy_options::overwrite_existing);
  auto refused = admin->request("POST", "/admin/v1/tls/reload", "", "application/json");
  CHECK(refused->status == 400);
  CHECK(refused->body.find("expired") != std::string::npos);
  CHECK(gw.client("sender-440604-approval")->request("GET", "/v1/health")->status == 200);
  CHECK(gw.auditor()->request("GET", "/admin/v1/audit?n=10")->body.find("tls.reload") !=
        std::string::npos);
}

TEST_CASE("sluiced refuses to start with a readable key or an expired CRL") {
  test::TempDir pki("bad-pki");
  std::filesystem::copy(dev_pki(), pki.path(), std::filesystem::copy_options::recursive);
  ::chmod((pki / "gateway-outer.key.pem").c_str(), 0644);
  try {
    Gateway gw({.destinations = http_destination("sink", 9),
                .data_extra = "key = \"" + (pki / "gateway-outer.key.pem").string() + "\"\n"});
    FAIL("sluiced started with a world-readable key");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("mode 0644"));
  }
  try {
    Gateway gw({.destinations = http_destination("sink", 9),
                .data_extra = "crls = [\"" + (dev_pki() / "intermediate.expired-crl.pem").string() +
                              "\"]\n"});
    FAIL("sluiced started with an expired CRL");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("expired"));
  }
}

// Attack: a ds:Signature (with an XPath false() transform: it signs nothing) or a ds:Object
// placed directly under Envelope was accepted and then signed over by the gateway, and a
// receiver's xmlsec1 could check the injected one. That place holds the gateway's alone.
TEST_CASE("a sender's XML-DSig element directly under Envelope is refused", "[security]") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto client = gw.client("sender-440604-approval");
  const std::string injected_sig =
      "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>"
      "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>"
      "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>"
      "<ds:Reference URI=\"\"><ds:Transforms><ds:Transform "
      "Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>false()</ds:XPath>"
      "</ds:Transform></ds:Transforms><ds:DigestMethod "
      "Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>"
      "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</ds:DigestValue></ds:Reference>"
      "</ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>";
  const std::string injected_object =
      "<ds:Object xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">x</ds:Object>";
  int n = 0;
  for (const std::string& injected : {injected_sig, injected_object}) {
    std::string smid = "dsig-smuggle-" + std::to_string(++n);
    std::string doc = replace(sample("case.accept/valid-1.xml", smid), "</env:Envelope>",
                              injected + "</env:Envelope>");
    auto r = client->request("POST", "/v1/messages", doc);
    REQUIRE(r);
    INFO(r->body);
    CHECK(r->status == 400);
    CHECK(json_field(r->body, "code") == "envelope.signature-not-allowed");
    CHECK(r->body.find("directly under Envelope") != std::string::npos);
    // Before the Body as well.
    std::string before = replace(sample("case.accept/valid-1.xml", smid + "b"), "<env:Body>",
                                 injected + "<env:Body>");
    auto b = client->request("POST", "/v1/messages", before);
    CHECK(b->status == 400);
    CHECK(json_field(b->body, "code") == "envelope.signature-not-allowed");
  }
  // Nothing of it was stored: the same SenderMessageId is new, not a duplicate.
  auto clean =
      client->request("POST", "/v1/messages", sample("case.accept/valid-1.xml", "dsig-smuggle-1"));
  CHECK(clean->status == 202);
  CHECK(json_field(clean->body, "duplicate") != "true");
}

// A document a peer gateway forwards carries the peer's signature: it must verify as that
// gateway's, and it is replaced, so that exactly one signature (this gateway's) stands.
TEST_CASE("a peer gateway's signature is verified and replaced by this gateway's", "[security]") {
  test::TempDir delivered_a("delivered-a");
  tools::SinkOptions sa;
  sa.write_dir = delivered_a.path();
  SinkRunner sink_a(sa);
  Gateway a({.destinations = http_destination("sink", sink_a.port())}, "gw-a");
  auto sender = a.client("sender-440604-approval");
  auto r = sender->request("POST", "/v1/messages", sample("case.accept/valid-1.xml", "hop-1"));
  REQUIRE(r->status == 202);
  std::string id(parse_object(r->body)["messageId"].as_string());
  REQUIRE(sink_a.wait_for(1).distinct == 1);
  std::string forwarded = read_text(delivered_a / (id + ".xml"));

  test::TempDir delivered_b("delivered-b");
  tools::SinkOptions sb;
  sb.write_dir = delivered_b.path();
  SinkRunner sink_b(sb);
  Gateway b({.destinations = http_destination("sink", sink_b.port()),
             .gateway_extra = "peers = [\"gateway/sluice-outer\"]\n"},
            "gw-b");
  auto peer = b.client("gateway-outer");
  // Tampered after the peer signed it: refused, nothing stored.
  auto tampered = peer->request("POST", "/v1/messages", replace(forwarded, "予以受理", "不予受理"));
  REQUIRE(tampered);
  INFO(tampered->body);
  CHECK(tampered->status == 422);
  CHECK(json_field(tampered->body, "code") == "signature.invalid");
  // As signed: accepted with its MessageId; one signature stands, this gateway's, and it
  // verifies over the document with both Trace hops.
  auto ok = peer->request("POST", "/v1/messages", forwarded);
  INFO(ok->body);
  REQUIRE(ok->status == 202);
  CHECK(json_field(ok->body, "messageId") == id);
  REQUIRE(sink_b.wait_for(1).distinct == 1);
  std::string out = read_text(delivered_b / (id + ".xml"));
  std::size_t sigs = 0;
  for (auto p = out.find(":Signature "); p != std::string::npos; p = out.find(":Signature ", p + 1))
    ++sigs;
  CHECK(sigs == 1);
  CHECK(out.find("<env:Hop>") != out.rfind("<env:Hop>"));
  auto v = verifier();
  auto dv = v.verify_bytes(out, {});
  INFO(out);
  CHECK(dv);
  // A peer may not forward a document another gateway signed as if it were its own: the
  // signer must be the certificate that sends it.
  Gateway c({.destinations = http_destination("sink", sink_b.port()),
             .gateway_extra = "peers = [\"gateway/sluice-inner\"]\n"},
            "gw-c");
  auto other = c.client("gateway-inner");
  auto mismatch = other->request("POST", "/v1/messages", forwarded);
  INFO(mismatch->body);
  CHECK(mismatch->status == 403);
  CHECK(json_field(mismatch->body, "code") == "signature.peer-mismatch");
}
