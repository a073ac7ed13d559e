#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "adapters/builder.h"
#include "adapters/csv/csv_adapter.h"
#include "adapters/registry.h"
#include "xml/validate.h"

using namespace sluice;
using namespace sluice::adapters;

namespace {

std::filesystem::path src() { return SLUICE_SOURCE_DIR; }

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const xml::Validator& validator() {
  static std::unique_ptr<xml::Validator> v = [] {
    xml::initialize(src() / "schemas");
    return std::move(*xml::Validator::load(src() / "schemas"));
  }();
  return *v;
}

Context context(const std::string& sender) {
  Context c;
  auto slash = sender.find('/');
  c.sender = {sender.substr(0, slash), sender.substr(slash + 1)};
  c.feed = "test-feed";
  c.now_ms = 1'795'400'000'000;
  return c;
}

std::unique_ptr<Adapter> adapter(const std::string& mapping) {
  Registry r;
  register_builtin_adapters(r);
  auto a = r.create(src() / "adapters" / "mappings" / mapping);
  if (!a) FAIL(a.error().message);
  return std::move(*a);
}

std::vector<Translated> run(const Adapter& a, std::string_view input, const Context& ctx,
                            std::optional<xml::Problem>* fatal = nullptr) {
  std::vector<Translated> out;
  auto f = a.translate(input, ctx, [&](Translated&& t) { out.push_back(std::move(t)); });
  if (fatal != nullptr) *fatal = f;
  return out;
}

}  // namespace

TEST_CASE("the registry builds every shipped mapping and refuses unknown adapters") {
  Registry r;
  register_builtin_adapters(r);
  CHECK(r.names() == std::vector<std::string>{"csv", "json", "xml", "xslt"});
  for (const char* m : {"market-regulation-json.toml", "tax-register-csv-gbk.toml",
                        "public-security-xslt.toml", "standard-xml.toml"}) {
    INFO(m);
    CHECK(r.create(src() / "adapters" / "mappings" / m));
  }
  auto bad = parse_mapping(
      "adapter = \"yaml\"\ndoc_type = \"case.accept\"\nreceiver = \"440600/s\"\n", "x.toml");
  REQUIRE(bad);
  auto created = r.create(*bad);
  REQUIRE_FALSE(created);
  CHECK(created.error().message.find("known adapters") != std::string::npos);
}

TEST_CASE("mapping files name what is wrong") {
  auto typo = parse_mapping(
      "adapter = \"json\"\ndoc_type = \"case.accept\"\nreceiver = \"440600/s\"\nrecievers = 1\n",
      "m.toml");
  REQUIRE_FALSE(typo);
  CHECK(typo.error().message.find("unknown key recievers") != std::string::npos);
  auto doc = parse_mapping(
      "adapter = \"json\"\ndoc_type = \"case.nothing\"\nreceiver = \"440600/s\"\n", "m.toml");
  REQUIRE_FALSE(doc);
  CHECK(doc.error().message.find("doc_type") != std::string::npos);
  auto field = parse_mapping(
      "adapter = \"json\"\ndoc_type = \"case.accept\"\nreceiver = \"440600/s\"\n[[field]]\npath = "
      "\"CaseId\"\n",
      "m.toml");
  REQUIRE_FALSE(field);
  CHECK(field.error().message.find("needs `from` or `const`") != std::string::npos);
}

TEST_CASE("values are converted by code maps, date patterns and amounts") {
  FieldMapping f;
  f.path = "AcceptedAt";
  f.format = "datetime:yyyyMMddHHmmss";
  CHECK(convert_value(f, " 20261123091000 ").value() == "2026-11-23T09:10:00+08:00");
  CHECK_FALSE(convert_value(f, "2026-11-23"));
  f.format = "amount";
  CHECK(convert_value(f, "80").value() == "80.00");
  CHECK(convert_value(f, "80.5").value() == "80.50");
  CHECK_FALSE(convert_value(f, "80.555"));
  f.format.clear();
  f.value_map = {{"1", "自然人"}};
  CHECK(convert_value(f, "1").value() == "自然人");
  CHECK(convert_value(f, "9").error().find("not in the code map") != std::string::npos);
  FieldMapping g;
  g.path = "Opinion";
  CHECK_FALSE(convert_value(g, std::string("a\x01b")));
}

TEST_CASE("the market-regulation JSON feed gives valid standard documents") {
  auto a = adapter("market-regulation-json.toml");
  auto out =
      run(*a, read(src() / "adapters/samples/market-regulation.json"), context("440600/market"));
  REQUIRE(out.size() == 3);
  for (auto& t : out) {
    REQUIRE(t.document);
    auto problems = validator().validate(t.document->get());
    INFO(xml::describe(problems));
    CHECK(problems.empty());
    auto env = xml::read_envelope(t.document->get());
    REQUIRE(env);
    CHECK(env->sender.str() == "440600/market");
    CHECK(env->doc_type == "case.accept");
    CHECK(env->sender_message_id.starts_with("SCJG-SL-"));
  }
  CHECK(out[2].record == 3);
}

TEST_CASE("a JSON record missing a field is reported by record, the others go through") {
  auto a = adapter("market-regulation-json.toml");
  std::string input = read(src() / "adapters/samples/market-regulation.json");
  auto pos = input.find("\"sblsh\"", input.find("SCJG-SL-20261123-0002"));
  input.replace(pos, 7, "\"xxxxx\"");
  auto out = run(*a, input, context("440600/market"));
  REQUIRE(out.size() == 3);
  CHECK(out[0].document);
  REQUIRE_FALSE(out[1].document);
  CHECK(out[1].document.error()[0].record == 2);
  CHECK(out[1].document.error()[0].field == "CaseId");
  CHECK(out[2].document);
  std::optional<xml::Problem> fatal;
  run(*a, "{not json", context("440600/market"), &fatal);
  REQUIRE(fatal);
  CHECK(fatal->code == "json.malformed");
  std::string deep(200, '[');
  run(*a, deep, context("440600/market"), &fatal);
  REQUIRE(fatal);
}

TEST_CASE("the GBK tax CSV feed reports bad rows with their line numbers") {
  auto a = adapter("tax-register-csv-gbk.toml");
  auto out = run(*a, read(src() / "adapters/samples/tax-register-gbk.csv"), context("440605/tax"));
  REQUIRE(out.size() == 6);
  int valid = 0;
  for (auto& t : out) {
    INFO("record " << t.record << " line " << t.line);
    CHECK(t.line == t.record + 1);
    if (!t.document) {
      CHECK(t.record == 5);  // SBLSH empty
      CHECK(t.document.error()[0].line == 6);
      CHECK(t.document.error()[0].code == "mapping.missing");
      CHECK(t.raw.starts_with("SBLSH,"));  // header + row kept for the quarantine
      continue;
    }
    auto problems = validator().validate(t.document->get());
    if (t.record == 3) {
      REQUIRE_FALSE(problems.empty());
      CHECK(problems[0].code == "check.id-number");
    } else {
      INFO(xml::describe(problems));
      CHECK(problems.empty());
      ++valid;
    }
  }
  CHECK(valid == 4);
}

TEST_CASE("a row with bytes that are not GBK fails alone") {
  auto a = adapter("tax-register-csv-gbk.toml");
  std::string input = read(src() / "adapters/samples/tax-register-gbk.csv");
  // Corrupt row 2 (line 3) with a lone lead byte.
  std::size_t line3 = input.find('\n', input.find('\n') + 1) + 1;
  input.insert(line3 + 5, "\x81");
  auto out = run(*a, input, context("440605/tax"));
  REQUIRE(out.size() == 6);
  REQUIRE_FALSE(out[1].document);
  CHECK(out[1].document.error()[0].message.find("line 3") != std::string::npos);
  CHECK(out[0].document);
  CHECK(out[3].document);
}

TEST_CASE("CSV quoting, embedded delimiters and newlines follow RFC 4180") {
  auto rows = csv::parse_rows("a,b,c\r\n\"x,1\",\"he said \"\"hi\"\"\",\"two\nlines\"\r\nq,r\n",
                              ',', '"', {}, 100);
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].fields == std::vector<std::string>{"x,1", "he said \"hi\"", "two\nlines"});
  CHECK(rows[1].line == 2);
  CHECK(rows[2].line == 4);
  CHECK(rows[2].fields.size() == 2);
  auto bad = csv::parse_rows("\"open,1\n", ',', '"', {}, 100);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].error.find("not closed") != std::string::npos);
}

TEST_CASE("a 50,000-row GBK export becomes 50,000 documents") {
  auto a = adapter("tax-register-csv-gbk.toml");
  std::string sample = read(src() / "adapters/samples/tax-register-gbk.csv");
  std::string header = sample.substr(0, sample.find("\r\n") + 2);
  std::string row =
      sample.substr(header.size(), sample.find("\r\n", header.size()) + 2 - header.size());
  std::string big = header;
  big.reserve(header.size() + row.size() * 50'000);
  for (int i = 0; i < 50'000; ++i) {
    std::string r = row;
    char serial[8];
    std::snprintf(serial, sizeof serial, "%06d", i);
    r.replace(r.find("000001"), 6, serial);  // a distinct SBLSH per row
    big += r;
  }
  std::size_t docs = 0;
  auto fatal = a->translate(big, context("440605/tax"), [&](Translated&& t) {
    if (t.document) ++docs;
  });
  CHECK_FALSE(fatal);
  CHECK(docs == 50'000);
}

TEST_CASE("the public-security XML feed is translated through its stylesheet") {
  auto a = adapter("public-security-xslt.toml");
  auto out = run(*a, read(src() / "adapters/samples/public-security.xml"), context("440600/psb"));
  REQUIRE(out.size() == 2);
  for (auto& t : out) {
    REQUIRE(t.document);
    auto problems = validator().validate(t.document->get());
    INFO(xml::describe(problems));
    CHECK(problems.empty());
    auto env = xml::read_envelope(t.document->get());
    CHECK(env->doc_type == "case.conclude");
    CHECK(env->sender.str() == "440600/psb");
  }
}

TEST_CASE("a stylesheet may not read files or the network, and input DOCTYPEs are refused") {
  auto dir = std::filesystem::temp_directory_path() / "sluice-xslt-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "evil.xsl") << R"XSL(<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:sx="urn:sluice:xs:adapter:1">
  <xsl:template match="/"><sx:Records><xsl:value-of select="document('/etc/passwd')"/><xsl:value-of select="document('http://127.0.0.1:9/x')"/></sx:Records></xsl:template>
</xsl:stylesheet>)XSL";
  std::ofstream(dir / "evil.toml")
      << "adapter = \"xslt\"\nreceiver = \"440600/s\"\nstylesheet = \"evil.xsl\"\n";
  Registry r;
  register_builtin_adapters(r);
  auto a = r.create(dir / "evil.toml");
  REQUIRE(a);
  std::optional<xml::Problem> fatal;
  auto out = run(**a, "<x/>", context("440600/psb"), &fatal);
  REQUIRE(fatal);
  CHECK(fatal->code == "xslt.failed");
  auto psb = adapter("public-security-xslt.toml");
  run(*psb, R"X(<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><BJXXLB>&e;</BJXXLB>)X",
      context("440600/psb"), &fatal);
  REQUIRE(fatal);
  CHECK(fatal->code == "xml.doctype-forbidden");
  std::filesystem::remove_all(dir);
}

TEST_CASE("content-derived ids are stable and differ by feed") {
  CHECK(content_id("a", "case.accept", "row") == content_id("a", "case.accept", "row"));
  CHECK(content_id("a", "case.accept", "row") != content_id("b", "case.accept", "row"));
  CHECK(content_id("a", "case.accept", "row").size() == 41);
}
