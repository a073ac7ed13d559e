// Operations at scale through a real sluiced and sluicectl: messages and dead letters found by
// filter, a page at a time, and dead letters redriven or discarded in bulk with dry runs first.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "tests/support/harness.h"
#include "tests/support/sluicectl.h"

using namespace sluice;
using namespace sluice::test;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "dead letters are found by filter a page at a time and redriven or discarded in bulk after "
    "a dry run",
    "[operations]") {
  SinkRunner flaky({.fail_first = 4});  // the first four deliveries fail, one attempt each
  Gateway gw({.destinations = "[[destination]]\nname = \"flaky\"\nurl = \"http://127.0.0.1:" +
                              std::to_string(flaky.port()) +
                              "/inbox\"\nconcurrency = 1\nbreaker_failures = 1000\n",
              .routes = "[[route]]\ndoc_type = \"case.*\"\ndestinations = [\"flaky\"]\n",
              .retry = "max_attempts = 1\n"});
  auto client = gw.client("sender-440604-approval");
  for (int i = 0; i < 3; ++i) {
    auto r = client->request("POST", "/v1/messages",
                             sample("case.accept/valid-1.xml", "bulk-" + std::to_string(i)));
    REQUIRE(r);
    REQUIRE(r->status == 202);
  }
  auto fee = client->request("POST", "/v1/messages", sample("case.fee/valid-1.xml", "bulk-fee"));
  REQUIRE(fee);
  REQUIRE(fee->status == 202);
  std::string said;
  REQUIRE(eventually([&] {
    return ctl(gw, "dead list --destination flaky", said) == 0 &&
           count(said, "\"state\":\"dead\",\"docType\"") == 4;
  }));

  // Filters: DocType, sender, case, time.
  REQUIRE(ctl(gw, "messages --state dead --doc-type case.fee", said) == 0);
  CHECK(count(said, "\"messageId\"") == 1);
  REQUIRE(ctl(gw, "messages --state dead --doc-type 'case.*' --sender '440604/*'", said) == 0);
  CHECK(count(said, "\"messageId\"") == 4);
  REQUIRE(ctl(gw, "messages --sender 440605/tax", said) == 0);
  CHECK(count(said, "\"messageId\"") == 0);
  REQUIRE(ctl(gw, "messages --from 2099-01-01T00:00:00+08:00", said) == 0);
  CHECK(count(said, "\"messageId\"") == 0);
  REQUIRE(ctl(gw, "messages --from 2020-01-01T00:00:00+08:00 --to 2099-01-01T00:00:00Z", said) ==
          0);
  CHECK(count(said, "\"messageId\"") == 4);
  CHECK(ctl(gw, "messages --from yesterday", said) == 1);
  CHECK(said.find("is not a time") != std::string::npos);
  CHECK(ctl(gw, "messages --state lost", said) == 1);
  CHECK(said.find("is not one of queued") != std::string::npos);

  // Pages of two: a cursor, then the rest and none.
  REQUIRE(ctl(gw, "dead list --limit 2", said) == 0);
  CHECK(count(said, "\"messageId\"") == 2);
  const auto at = said.find("\"next\":\"");
  REQUIRE(at != std::string::npos);
  const std::string next = said.substr(at + 8, said.find('"', at + 8) - at - 8);
  REQUIRE_FALSE(next.empty());
  REQUIRE(ctl(gw, "dead list --limit 2 --cursor " + next, said) == 0);
  CHECK(count(said, "\"messageId\"") == 2);
  CHECK(said.find("\"next\":\"\"") != std::string::npos);

  // A dry run counts and changes nothing; then the case.accept ones go again.
  REQUIRE(ctl(gw, "dead redrive --all --doc-type case.accept --dry-run", said) == 0);
  CHECK(said.find("\"matched\":3") != std::string::npos);
  CHECK(said.find("\"redriven\":0") != std::string::npos);
  REQUIRE(ctl(gw, "dead list", said) == 0);
  CHECK(count(said, "\"state\":\"dead\",\"docType\"") == 4);
  REQUIRE(ctl(gw, "dead redrive --all --doc-type case.accept", said) == 0);
  CHECK(said.find("\"redriven\":3") != std::string::npos);
  CHECK(flaky.wait_for(3).distinct == 3);  // the receiver is well again
  // The fee is given up, with the reason.
  CHECK(ctl(gw, "dead discard --all --reason x --destination nowhere", said) == 0);
  CHECK(said.find("\"matched\":0") != std::string::npos);
  REQUIRE(ctl(gw, "dead discard --all --reason 'receiver retired' --dry-run", said) == 0);
  CHECK(said.find("\"matched\":1") != std::string::npos);
  REQUIRE(ctl(gw, "dead discard --all --reason 'receiver retired'", said) == 0);
  CHECK(said.find("\"discarded\":1") != std::string::npos);
  REQUIRE(ctl(gw, "messages --state discarded", said) == 0);
  CHECK(count(said, "\"messageId\"") == 1);
  CHECK(said.find("discarded by admin/netadmin: receiver retired") != std::string::npos);
  REQUIRE(ctl(gw, "dead list", said) == 0);
  CHECK(count(said, "\"messageId\"") == 0);
  REQUIRE(ctl(gw, "messages --state delivered", said) == 0);
  CHECK(count(said, "\"messageId\"") == 3);

  // Who did what, in the trail.
  REQUIRE(ctl(gw, "audit tail -n 20", said, "admin-auditor") == 0);
  CHECK(said.find("\"action\":\"dead.redrive-bulk\",\"object\":\"doc_type=case.accept\","
                  "\"outcome\":\"3 of 3 redriven\"") != std::string::npos);
  CHECK(said.find("\"outcome\":\"1 of 1 discarded: receiver retired\"") != std::string::npos);
  CHECK(count(said, "\"action\":\"dead.redrive\"") == 3);
}
