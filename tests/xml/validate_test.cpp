#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "xml/checks.h"
#include "xml/parse.h"
#include "xml/validate.h"

using namespace sluice::xml;

namespace {

std::string read(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Validator& validator() {
  static std::unique_ptr<Validator> v = [] {
    initialize(std::string(SLUICE_SOURCE_DIR) + "/schemas");
    auto r = Validator::load(std::string(SLUICE_SOURCE_DIR) + "/schemas");
    if (!r) FAIL(r.error().message);
    return std::move(*r);
  }();
  return *v;
}

struct Expectation {
  std::string path, expect, field, reason;
};

std::vector<Expectation> expectations() {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/schemas/examples/expectations.tsv");
  std::vector<Expectation> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    Expectation e;
    std::getline(ss, e.path, '\t');
    std::getline(ss, e.expect, '\t');
    std::getline(ss, e.field, '\t');
    std::getline(ss, e.reason, '\t');
    out.push_back(e);
  }
  return out;
}

}  // namespace

TEST_CASE("GB 11643 resident ID numbers are checked") {
  CHECK(valid_resident_id("11010519491231002X"));
  CHECK_FALSE(valid_resident_id("110105194912310021"));  // wrong check character
  CHECK_FALSE(valid_resident_id("11010519491331002X"));  // month 13
  CHECK_FALSE(valid_resident_id("99010519491231002X"));  // no such province
  CHECK_FALSE(valid_resident_id("1101051949123100"));
}

TEST_CASE("GB 32100 unified social credit codes are checked") {
  CHECK(valid_credit_code("91350100M000100Y43"));
  CHECK_FALSE(valid_credit_code("91350100M000100Y44"));
  CHECK_FALSE(valid_credit_code("91350100M000100YI3"));  // I is not in the alphabet
  CHECK_FALSE(valid_credit_code("9135"));
}

TEST_CASE("GB/T 2260 region codes name a province") {
  CHECK(valid_region_code("440604"));
  CHECK(valid_region_code("110101"));
  CHECK_FALSE(valid_region_code("990101"));
  CHECK_FALSE(valid_region_code("44060"));
}

TEST_CASE("every example validates or fails for its stated reason") {
  const Validator& v = validator();
  auto all = expectations();
  REQUIRE(all.size() > 80);
  std::size_t valid = 0, xsd = 0, semantic = 0;
  for (const auto& e : all) {
    INFO(e.path << " (" << e.expect << ", " << e.field << "): " << e.reason);
    auto doc = parse(read(std::string(SLUICE_SOURCE_DIR) + "/schemas/examples/" + e.path), {});
    REQUIRE(doc);
    Problems schema = v.validate_schema(doc->get());
    Problems all_problems = v.validate(doc->get());
    if (e.expect == "valid") {
      CHECK(all_problems.empty());
      for (const auto& p : all_problems) INFO(describe(p));
      ++valid;
    } else if (e.expect == "xsd") {
      REQUIRE_FALSE(schema.empty());
      bool named = false;
      for (const auto& p : schema) {
        named |= p.field == e.field || p.message.find(e.field) != std::string::npos;
      }
      CHECK(named);
      CHECK(schema[0].line > 0);
      ++xsd;
    } else if (e.expect == "semantic") {
      CHECK(schema.empty());
      REQUIRE_FALSE(all_problems.empty());
      bool named = false;
      for (const auto& p : all_problems) named |= p.field == e.field;
      CHECK(named);
      CHECK(all_problems[0].code.rfind("check.", 0) == 0);
      ++semantic;
    } else {
      FAIL("unknown expectation " << e.expect);
    }
  }
  CHECK(valid >= 21);
  CHECK(xsd >= 40);
  CHECK(semantic >= 10);
}

TEST_CASE("validation problems never carry personal data in clear") {
  const Validator& v = validator();
  std::string doc = read(std::string(SLUICE_SOURCE_DIR) +
                         "/schemas/examples/case.register/invalid-idcard-check-digit.xml");
  auto d = parse(doc, {});
  REQUIRE(d);
  auto problems = v.validate(d->get());
  REQUIRE_FALSE(problems.empty());
  for (const auto& p : problems) {
    // 18-digit runs are masked to 4 + 10 stars + 4.
    CHECK(p.message.find("**********") != std::string::npos);
  }
}
