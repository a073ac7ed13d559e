// Department feeds, batch uploads, spool directories and the quarantine, through a real
// sluiced.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <fstream>
#include <thread>

#include "tests/support/harness.h"

using namespace sluice;
using namespace sluice::test;
namespace json = boost::json;

namespace {

json::object parse_object(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) FAIL("not a JSON object: " << body);
  return v.as_object();
}

std::string multipart(const std::string& boundary, const std::string& filename,
                      const std::string& content) {
  return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
         filename + "\"\r\nContent-Type: text/csv\r\n\r\n" + content + "\r\n--" + boundary +
         "--\r\n";
}

std::string src_file(const std::string& rel) { return read_text(source_dir() / rel); }

}  // namespace

TEST_CASE("the market-regulation JSON feed is translated, validated and delivered") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto market = gw.client("sender-440600-market");
  auto r = market->request("POST", "/v1/submit/market-json",
                           src_file("adapters/samples/market-regulation.json"), "application/json");
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == 202);
  auto o = parse_object(r->body);
  CHECK(o["accepted"].as_int64() == 3);
  CHECK(o["rejected"].as_int64() == 0);
  CHECK(sink.wait_for(3).distinct == 3);
  // The same input again is recognised record by record.
  auto again =
      market->request("POST", "/v1/submit/market-json",
                      src_file("adapters/samples/market-regulation.json"), "application/json");
  auto o2 = parse_object(again->body);
  for (const auto& m : o2["messages"].as_array()) CHECK(m.as_object().at("duplicate").as_bool());
}

TEST_CASE("a GBK CSV upload stores the good rows and names the bad ones by line") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto tax = gw.client("sender-440605-tax");
  auto r = tax->request(
      "POST", "/v1/submit/tax-csv",
      multipart("XyZ123", "tax.csv", src_file("adapters/samples/tax-register-gbk.csv")),
      "multipart/form-data; boundary=XyZ123");
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == 207);
  auto o = parse_object(r->body);
  CHECK(o["part"].as_string() == "tax.csv");
  CHECK(o["accepted"].as_int64() == 4);
  REQUIRE(o["errors"].as_array().size() == 2);
  auto e1 = o["errors"].as_array()[0].as_object();
  auto e2 = o["errors"].as_array()[1].as_object();
  CHECK(e1["line"].as_int64() == 4);
  CHECK(e1["code"].as_string() == "document.invalid");
  CHECK(json::serialize(e1).find("IdNumber") != std::string::npos);
  CHECK(json::serialize(e1).find("**********") != std::string::npos);  // the ID is masked
  CHECK(e2["line"].as_int64() == 6);
  CHECK(e2["code"].as_string() == "record.untranslatable");
  CHECK_FALSE(e1["quarantineId"].as_string().empty());
  CHECK_FALSE(e2["quarantineId"].as_string().empty());
  CHECK(sink.wait_for(4).distinct == 4);
  auto list = gw.admin()->request("GET", "/admin/v1/quarantine");
  CHECK(parse_object(list->body)["total"].as_int64() == 2);
}

TEST_CASE("a sender may only submit to its own feeds") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .senders = "[[feed]]\nname = \"tax-csv\"\nmapping = \"" +
                         (source_dir() / "adapters/mappings/tax-register-csv-gbk.toml").string() +
                         "\"\n[[sender]]\nid = \"440600/market\"\nfeeds = []\n"});
  auto market = gw.client("sender-440600-market");
  auto r = market->request("POST", "/v1/submit/tax-csv",
                           src_file("adapters/samples/tax-register-gbk.csv"), "text/csv");
  REQUIRE(r);
  CHECK(r->status == 403);
  CHECK(r->body.find("may not submit to feed tax-csv") != std::string::npos);
  auto unknown = market->request("POST", "/v1/submit/nothing", "x", "text/plain");
  CHECK(unknown->status == 404);
  auto admin = gw.admin();
  CHECK(eventually([&] {
    auto audit = gw.auditor()->request("GET", "/admin/v1/audit?n=50");
    return audit && audit->body.find("feed.refused") != std::string::npos;
  }));
}

TEST_CASE("a 50,000-row CSV upload becomes 50,000 stored documents") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port(), 16),
              .store_extra = "map_size_mb = 1024\n",
              .data_extra = "max_batch_bytes = 67108864\n"});
  std::string sample = src_file("adapters/samples/tax-register-gbk.csv");
  std::string header = sample.substr(0, sample.find("\r\n") + 2);
  std::string row =
      sample.substr(header.size(), sample.find("\r\n", header.size()) + 2 - header.size());
  std::string big = header;
  for (int i = 0; i < 50'000; ++i) {
    std::string r = row;
    char serial[8];
    std::snprintf(serial, sizeof serial, "%06d", i);
    r.replace(r.find("000001"), 6, serial);  // a distinct SBLSH per row
    big += r;
  }
  net::ClientOptions o;
  o.host = "localhost";
  o.port = std::to_string(gw.data_port());
  o.ca = dev_pki() / "ca-bundle.pem";
  o.cert = dev_pki() / "sender-440605-tax.chain.pem";
  o.key = dev_pki() / "sender-440605-tax.key.pem";
  o.timeout = std::chrono::seconds(280);
  net::HttpsClient tax(o);
  auto r = tax.request("POST", "/v1/submit/tax-csv", multipart("b0undary", "big.csv", big),
                       "multipart/form-data; boundary=b0undary");
  REQUIRE(r);
  REQUIRE(r->status == 202);
  auto obj = parse_object(r->body);
  CHECK(obj["records"].as_int64() == 50'000);
  CHECK(obj["accepted"].as_int64() == 50'000);
  CHECK(obj["rejected"].as_int64() == 0);
  CHECK(obj["messages"].as_array().size() == 50'000);
  std::size_t fresh = 0;
  for (const auto& m : obj["messages"].as_array())
    fresh += m.as_object().at("duplicate").as_bool() ? 0 : 1;
  CHECK(fresh == 50'000);
  auto stats = parse_object(gw.admin()->request("GET", "/admin/v1/stats")->body);
  CHECK(stats["committedOperations"].as_int64() >= 50'000);
}

TEST_CASE("files dropped into a spool directory are processed, partial files are never read") {
  SinkRunner sink;
  test::TempDir spool("spool-in");
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .extra = "[[spool_in]]\nname = \"psb\"\npath = \"" + spool.path().string() +
                       "\"\nfeed = \"psb-xml\"\nsender = \"440600/psb\"\n"});
  auto incoming = spool / "incoming";
  REQUIRE(eventually([&] { return std::filesystem::exists(incoming); }));
  // A file still being written (dot name, never renamed) stays untouched.
  std::ofstream(incoming / ".writing.xml") << "<BJXXLB>";
  // A complete file, renamed into place.
  std::ofstream(spool / "tmp-1.xml") << src_file("adapters/samples/public-security.xml");
  std::filesystem::rename(spool / "tmp-1.xml", incoming / "GA-1.xml");
  REQUIRE(eventually([&] { return std::filesystem::exists(spool / "done" / "GA-1.xml"); }));
  CHECK(sink.wait_for(2).distinct == 2);
  // A broken file goes to failed/ with its errors beside it.
  std::ofstream(spool / "tmp-2.xml") << "<BJXXLB><BJXX>";
  std::filesystem::rename(spool / "tmp-2.xml", incoming / "GA-2.xml");
  REQUIRE(eventually(
      [&] { return std::filesystem::exists(spool / "failed" / "GA-2.xml.errors.json"); }));
  CHECK(read_text(spool / "failed" / "GA-2.xml.errors.json").find("not well-formed") !=
        std::string::npos);
  CHECK(std::filesystem::exists(incoming / ".writing.xml"));
  CHECK_FALSE(std::filesystem::exists(spool / "failed" / ".writing.xml"));
}

TEST_CASE("an invalid document is quarantined and can be corrected and resubmitted") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto client = gw.client("sender-440604-approval");
  std::string bad = sample("case.accept/invalid-opinion-too-long.xml", "q-1");
  auto r = client->request("POST", "/v1/messages", bad);
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == 422);
  auto err = parse_object(r->body)["error"].as_object();
  CHECK(err["code"].as_string() == "document.invalid");
  auto problem = err["problems"].as_array()[0].as_object();
  CHECK(problem["field"].as_string() == "Opinion");
  CHECK(problem["line"].as_int64() > 0);
  std::string qid(err["quarantineId"].as_string());
  REQUIRE_FALSE(qid.empty());

  auto admin = gw.admin();
  auto shown = admin->request("GET", "/admin/v1/quarantine/" + qid);
  REQUIRE(shown->status == 200);
  auto entry = parse_object(shown->body);
  CHECK(entry["sender"].as_string() == "440604/approval");
  CHECK(entry["raw"].as_string() == bad);

  // Resubmitting unchanged fails again and is counted.
  auto again =
      admin->request("POST", "/admin/v1/quarantine/" + qid + "/resubmit", "{}", "application/json");
  CHECK(again->status == 422);
  CHECK(parse_object(admin->request("GET", "/admin/v1/quarantine/" + qid)->body)["resubmissions"]
            .as_int64() == 1);

  // Corrected content goes through and leaves the quarantine.
  std::string good = sample("case.accept/valid-1.xml", "q-1");
  auto fixed = admin->request("POST", "/admin/v1/quarantine/" + qid + "/resubmit",
                              json::serialize(json::object{{"content", good}}), "application/json");
  INFO(fixed->body);
  CHECK(fixed->status == 202);
  CHECK(admin->request("GET", "/admin/v1/quarantine/" + qid)->status == 404);
  CHECK(sink.wait_for(1).distinct == 1);

  // A second bad input is discarded with a reason; both actions are audited.
  auto r2 = client->request("POST", "/v1/messages", "<not-closed>");
  std::string qid2(parse_object(r2->body)["error"].as_object()["quarantineId"].as_string());
  auto no_reason =
      admin->request("POST", "/admin/v1/quarantine/" + qid2 + "/discard", "{}", "application/json");
  CHECK(no_reason->status == 400);
  auto discarded = admin->request("POST", "/admin/v1/quarantine/" + qid2 + "/discard",
                                  R"({"reason":"test garbage"})", "application/json");
  CHECK(discarded->status == 200);
  auto audit = gw.auditor()->request("GET", "/admin/v1/audit?n=50")->body;
  CHECK(audit.find("quarantine.resubmit") != std::string::npos);
  CHECK(audit.find("quarantine.discard") != std::string::npos);
  auto verify = parse_object(gw.auditor()->request("GET", "/admin/v1/audit/verify")->body);
  CHECK(verify["intact"].as_bool());
}

TEST_CASE("a quarantined CSV row is resubmitted through its feed once corrected") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto tax = gw.client("sender-440605-tax");
  auto r = tax->request("POST", "/v1/submit/tax-csv",
                        src_file("adapters/samples/tax-register-gbk.csv"), "text/csv");
  auto errors = parse_object(r->body)["errors"].as_array();
  std::string qid;
  for (const auto& e : errors) {
    if (e.as_object().at("code").as_string() == "record.untranslatable") {
      qid = std::string(e.as_object().at("quarantineId").as_string());
    }
  }
  REQUIRE_FALSE(qid.empty());
  auto admin = gw.admin();
  auto entry = parse_object(admin->request("GET", "/admin/v1/quarantine/" + qid)->body);
  CHECK(entry["kind"].as_string() == "feed-record");
  std::string raw(entry["raw"].as_string());
  const auto entries = [&] {
    return parse_object(admin->request("GET", "/admin/v1/quarantine")->body)["total"].as_int64();
  };
  const auto before = entries();
  // Resubmitted as it is, it fails again: answered, and not kept a second time.
  auto again =
      admin->request("POST", "/admin/v1/quarantine/" + qid + "/resubmit", "{}", "application/json");
  INFO(again->body);
  CHECK(again->status == 422);
  CHECK(entries() == before);
  // The row lost its SBLSH; put one back.
  std::string row = raw.substr(raw.find('\n') + 1);
  std::string corrected = raw.substr(0, raw.find('\n') + 1) + "44060520261123000099" + row;
  auto fixed =
      admin->request("POST", "/admin/v1/quarantine/" + qid + "/resubmit",
                     json::serialize(json::object{{"content", corrected}}), "application/json");
  INFO(fixed->body);
  CHECK(fixed->status == 202);
  CHECK(admin->request("GET", "/admin/v1/quarantine/" + qid)->status == 404);
  CHECK(entries() == before - 1);  // nothing left behind by the failed attempt
}

TEST_CASE("a spool directory reads only regular files it was given, never through a link",
          "[security]") {
  SinkRunner sink;
  test::TempDir spool("spool-links");
  test::TempDir outside("outside");
  // What an attacker would like to read through the spool: the gateway's private key.
  auto secret = outside / "gateway.key.pem";
  std::ofstream(secret) << "-----BEGIN PRIVATE KEY-----\nSECRET-KEY-BYTES\n";
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .extra = "[[spool_in]]\nname = \"psb\"\npath = \"" + spool.path().string() +
                       "\"\nfeed = \"psb-xml\"\nsender = \"440600/psb\"\n"});
  auto incoming = spool / "incoming";
  REQUIRE(eventually([&] { return std::filesystem::exists(incoming); }));
  // A symbolic link and a hard link, each renamed into incoming/ as a complete file would be.
  std::filesystem::create_symlink(secret, spool / "tmp-link.xml");
  std::filesystem::rename(spool / "tmp-link.xml", incoming / "link.xml");
  std::filesystem::create_hard_link(secret, spool / "tmp-hard.xml");
  std::filesystem::rename(spool / "tmp-hard.xml", incoming / "hard.xml");
  for (const char* name : {"link.xml", "hard.xml"}) {
    INFO(name);
    auto errors = spool / "failed" / (std::string(name) + ".errors.json");
    REQUIRE(eventually([&] { return std::filesystem::exists(errors); }));
    CHECK(read_text(errors).find("spool.unreadable") != std::string::npos);
  }
  CHECK(read_text(spool / "failed" / "link.xml.errors.json").find("symbolic link") !=
        std::string::npos);
  CHECK(read_text(spool / "failed" / "hard.xml.errors.json").find("hard links") !=
        std::string::npos);
  // Nothing of the key reached the quarantine or the log.
  auto q = gw.admin()->request("GET", "/admin/v1/quarantine?limit=100");
  REQUIRE(q);
  CHECK(q->body.find("SECRET-KEY-BYTES") == std::string::npos);
  CHECK(gw.log().find("SECRET-KEY-BYTES") == std::string::npos);
  CHECK(sink.stats().distinct == 0);
}

TEST_CASE("the one-document bound holds on every path, feeds included", "[security]") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  // A standard envelope of about 3 MiB: over the data listener's bound of one document
  // (max_body_bytes, 256 KiB in these tests), far under the batch bound of a feed input.
  std::string doc = sample("case.accept/valid-1.xml", "big-1");
  auto at = doc.find("</env:SenderMessageId>");
  REQUIRE(at != std::string::npos);
  doc.insert(at, std::string(3u << 20, 'x'));
  auto sender = gw.client("sender-440604-approval");
  auto direct = sender->request("POST", "/v1/messages", doc);
  REQUIRE(direct);
  CHECK(direct->status == 413);
  auto fed = sender->request("POST", "/v1/submit/standard-xml", doc);
  REQUIRE(fed);
  INFO(fed->body.substr(0, 600));
  CHECK(fed->status != 202);
  CHECK(fed->body.find("xml.too-large") != std::string::npos);
  CHECK(fed->body.find("\"accepted\":0") != std::string::npos);
}
