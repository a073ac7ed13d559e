#include <catch2/catch.hpp>

#include "gateway/config.h"
#include "pipeline/routes.h"
#include "tests/support/harness.h"

using namespace sluice;
using namespace sluice::gateway;
using sluice::pipeline::pattern_matches;
using sluice::pipeline::RouteTable;

TEST_CASE("the embedded defaults and the annotated example are valid") {
  auto defaults = parse_config(embedded_default_toml(), "(embedded)", test::source_dir());
  INFO((defaults ? std::string() : defaults.error().message));
  REQUIRE(defaults);
  CHECK(defaults->data.tls.require_client_cert);
  CHECK(defaults->signing.enabled);
  CHECK(defaults->feeds.size() == 4);
  auto example = load_config(test::source_dir() / "deploy" / "sluiced.toml");
  INFO((example ? std::string() : example.error().message));
  REQUIRE(example);
  CHECK(example->store.map_size_bytes == 8192ull << 20);
  CHECK(example->store.retry.max_attempts == 12);
}

TEST_CASE("configuration errors name the key and the line") {
  auto typo = parse_config("[store]\nmap_size_mb = 64\nmax_queue_mb = 5\n", "t.toml", "/");
  REQUIRE_FALSE(typo);
  CHECK_THAT(typo.error().message, Catch::Contains("unknown key store.max_queue_mb (line 3)"));
  auto range = parse_config("[retry]\nmax_attempts = 0\n", "t.toml", "/");
  REQUIRE_FALSE(range);
  CHECK_THAT(range.error().message, Catch::Contains("retry.max_attempts = 0 is out of range"));
  auto type = parse_config("[gateway]\nthreads = \"two\"\n", "t.toml", "/");
  REQUIRE_FALSE(type);
  CHECK_THAT(type.error().message, Catch::Contains("gateway.threads must be an integer (line 2)"));
  auto syntax = parse_config("[store\n", "t.toml", "/");
  REQUIRE_FALSE(syntax);
  CHECK_THAT(syntax.error().message, Catch::Contains("line 1"));
}

TEST_CASE("routes, senders and feeds must refer to what exists") {
  auto r = parse_config(
      "[[destination]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\n"
      "[[route]]\ndoc_type = \"*\"\ndestinations = [\"b\"]\n"
      "[[sender]]\nid = \"440604/approval\"\nfeeds = [\"nope\"]\n"
      "[[spool_in]]\nname = \"s\"\npath = \"/tmp/s\"\nfeed = \"nope\"\nsender = \"440600/x\"\n"
      "[signing]\ncert = \"c\"\n",
      "t.toml", "/");
  REQUIRE_FALSE(r);
  const std::string& m = r.error().message;
  CHECK_THAT(m, Catch::Contains("unknown destination \"b\""));
  CHECK_THAT(m, Catch::Contains("names unknown feed \"nope\""));
  CHECK_THAT(m, Catch::Contains("spool_in \"s\" names unknown feed"));
  CHECK_THAT(m, Catch::Contains("[signing] needs cert, key, trust and crls"));
}

TEST_CASE("every matching route adds its destinations once, in order") {
  RouteTable t(
      {{.doc_type = "case.*", .destinations = {"district", "city"}},
       {.doc_type = "case.conclude", .sender = "440604/*", .destinations = {"archive", "city"}},
       {.doc_type = "public.*", .receiver = "440600/portal", .destinations = {"portal"}}});
  CHECK(t.destinations("case.conclude", "440604/approval", "440600/supervision") ==
        std::vector<std::string>{"district", "city", "archive"});
  CHECK(t.destinations("case.conclude", "440605/tax", "440600/supervision") ==
        std::vector<std::string>{"district", "city"});
  CHECK(t.destinations("public.reply", "440600/supervision", "440600/supervision").empty());
  CHECK(pattern_matches("*", "anything"));
  CHECK_FALSE(pattern_matches("case.accept", "case.accepted"));
}
