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
  auto audit = gw.admin()->request("GET", "/admin/v1/audit?n=20")->body;
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
  auto admin = gw.admin();
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
  CHECK(admin->request("GET", "/admin/v1/audit?n=10")->body.find("tls.reload") !=
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
