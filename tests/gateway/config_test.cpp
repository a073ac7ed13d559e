#include <catch2/catch.hpp>

#include <algorithm>

#include "gateway/config.h"
#include "gateway/run_config.h"
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

TEST_CASE("the annotated halves are valid and name each other over the ferry") {
  auto outer = load_config(test::source_dir() / "deploy" / "outer.toml");
  INFO((outer ? std::string() : outer.error().message));
  REQUIRE(outer);
  CHECK(outer->role == "outer");
  CHECK(outer->ferry.listen == "tcp://10.0.0.1:7400");
  auto inner = load_config(test::source_dir() / "deploy" / "inner.toml");
  INFO((inner ? std::string() : inner.error().message));
  REQUIRE(inner);
  CHECK(inner->role == "inner");
  CHECK(inner->ferry.connect == outer->ferry.listen);
  CHECK(inner->ferry.listen.empty());
  // Each half's ferry peer is one of its peer gateways (MessageId and Trace kept).
  CHECK(std::find(inner->peer_gateways.begin(), inner->peer_gateways.end(),
                  "gateway/sluice-outer") != inner->peer_gateways.end());
  CHECK(outer->store.path != inner->store.path);
}

TEST_CASE("the inner half never listens toward the outer network") {
  const std::string keys =
      "secret_key = \"k\"\nserver_key = \"s\"\nallowed_keys = [\"a\"]\n"
      "peer = \"gateway/sluice-outer\"\n";
  auto listens = parse_config(
      "[gateway]\nrole = \"inner\"\n[ferry]\nlisten = "
      "\"tcp://0.0.0.0:7400\"\n" +
          keys,
      "t.toml", "/");
  REQUIRE_FALSE(listens);
  CHECK_THAT(listens.error().message, Catch::Contains("the inner half never listens"));
  auto connects = parse_config(
      "[gateway]\nrole = \"outer\"\n[ferry]\nconnect = "
      "\"tcp://10.0.0.1:7400\"\n" +
          keys,
      "t.toml", "/");
  REQUIRE_FALSE(connects);
  CHECK_THAT(connects.error().message, Catch::Contains("the inner half opens the link"));
  auto no_link = parse_config(
      "[[destination]]\nname = \"f\"\nkind = \"ferry\"\n[[route]]\n"
      "destinations = [\"f\"]\n",
      "t.toml", "/");
  REQUIRE_FALSE(no_link);
  CHECK_THAT(no_link.error().message, Catch::Contains("needs [ferry] listen (outer) or connect"));
  auto no_peer = parse_config(
      "[gateway]\nrole = \"inner\"\n[ferry]\nconnect = "
      "\"tcp://10.0.0.1:7400\"\nsecret_key = \"k\"\n",
      "t.toml", "/");
  REQUIRE_FALSE(no_peer);
  CHECK_THAT(no_peer.error().message, Catch::Contains("ferry.server_key is required"));
  CHECK_THAT(no_peer.error().message, Catch::Contains("ferry.peer must name the other half"));
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
  // A log level that does not exist is an error, not silence.
  auto level = parse_config("[gateway]\nlog_level = \"verbose\"\n", "t.toml", "/");
  REQUIRE_FALSE(level);
  CHECK_THAT(level.error().message,
             Catch::Contains("gateway.log_level = \"verbose\" is not one of trace, debug, info, "
                             "warn, error, off (line 2)"));
  // An admin role that does not exist, or a rule that names no OU/CN, is an error.
  auto role = parse_config(
      "[[admin_role]]\ncertificate = \"admin/root\"\nrole = \"superuser\"\n"
      "[[admin_role]]\ncertificate = \"netadmin\"\nrole = \"system\"\n",
      "t.toml", "/");
  REQUIRE_FALSE(role);
  CHECK_THAT(role.error().message,
             Catch::Contains("admin_role.role \"superuser\" for admin/root is not one of system, "
                             "security, audit, monitor"));
  CHECK_THAT(role.error().message,
             Catch::Contains("admin_role.certificate \"netadmin\" must be OU/CN"));
  auto warn = parse_config("[gateway]\nlog_level = \"warn\"\n", "t.toml", "/");
  CHECK((warn || warn.error().message.find("log_level") == std::string::npos));
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

namespace {

RunConfig run_of(const std::filesystem::path& file) {
  auto c = load_config(file);
  INFO((c ? std::string() : c.error().message));
  REQUIRE(c);
  return run_config_of(*c);
}

}  // namespace

TEST_CASE("run-time configuration: TOML that reads back the same, for every shipped file") {
  for (const char* name : {"sluiced.toml", "outer.toml", "inner.toml"}) {
    const auto file = test::source_dir() / "deploy" / name;
    auto config = load_config(file);
    REQUIRE(config);
    const RunConfig r = run_config_of(*config);
    const std::string text = to_toml(r);
    auto back = parse_run_config(text, name, "/nowhere");
    INFO(name << ":\n" << text << (back ? std::string() : back.error().message));
    REQUIRE(back);
    CHECK(to_toml(*back) == text);
    CHECK(diff(r, *back).empty());
    CHECK(back->destinations == r.destinations);
    // The shipped files open no DocType both ways, and every pattern matches something.
    CHECK(check_change(RunConfig{}, r, *config).empty());
    for (const auto& p : check_change(RunConfig{}, r, *config)) UNSCOPED_INFO(p);
  }
}

TEST_CASE("run-time configuration holds only its own sections and names what else it was given") {
  auto r = parse_run_config("[store]\nmap_size_mb = 16\n[[route]]\ndestinations = [\"x\"]\n",
                            "import", "/");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("store (line 1) is not run-time configuration") !=
        std::string::npos);
  CHECK(r.error().message.find("route 1 names unknown destination \"x\"") != std::string::npos);
  auto empty = parse_run_config("", "import", "/");
  REQUIRE(empty);
  CHECK(empty->routes.empty());
}

TEST_CASE("run-time configuration edits: add, update and remove one object, checked whole") {
  const RunConfig start = run_of(test::source_dir() / "deploy" / "sluiced.toml");
  REQUIRE(!start.destinations.empty());
  const std::string first = start.destinations.front().name;
  auto added = edit(start, Edit::kAdd, "destination", "",
                    "name = \"county\"\nurl = \"https://10.1.2.3/inbox\"\nca = \"pki/ca.pem\"\n",
                    "/etc/sluice");
  INFO((added ? std::string() : added.error().message));
  REQUIRE(added);
  REQUIRE(added->destinations.size() == start.destinations.size() + 1);
  CHECK(added->destinations.back().ca == "/etc/sluice/pki/ca.pem");  // relative to the file
  auto lines = diff(start, *added);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].starts_with("+ destination county: { "));
  // Update changes only the keys given; a route keeps its place when another is removed.
  auto updated = edit(*added, Edit::kUpdate, "destination", "county", "concurrency = 9\n", "/");
  REQUIRE(updated);
  CHECK(updated->destinations.back().concurrency == 9);
  CHECK(updated->destinations.back().url == "https://10.1.2.3/inbox");
  lines = diff(*added, *updated);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].starts_with("- destination county: "));
  CHECK(lines[1].starts_with("+ destination county: "));
  auto removed = edit(*updated, Edit::kRemove, "destination", "county", "", "/");
  REQUIRE(removed);
  CHECK(to_toml(*removed) == to_toml(start));
  // Errors name the object and what is wrong with it, without lines of a generated document.
  auto twice = edit(start, Edit::kAdd, "destination", "",
                    "name = \"" + first + "\"\nurl = \"http://a/\"\n", "/");
  REQUIRE_FALSE(twice);
  CHECK(twice.error().message.find("destination \"" + first + "\" is defined twice") !=
        std::string::npos);
  CHECK(twice.error().message.find("(line") == std::string::npos);
  auto unknown = edit(start, Edit::kUpdate, "route", "99", "sender = \"*\"\n", "/");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message.find("name it by its place, 1 to") != std::string::npos);
  auto kind = edit(start, Edit::kAdd, "routes", "", "x = 1\n", "/");
  REQUIRE_FALSE(kind);
  CHECK(kind.error().message.find("is not a kind of run-time configuration") != std::string::npos);
  auto typo = edit(start, Edit::kAdd, "route", "", "doctype = \"case.*\"\n", "/");
  REQUIRE_FALSE(typo);
  CHECK(typo.error().message.find("unknown key route.doctype") != std::string::npos);
}

TEST_CASE("a change may not open a DocType both ways or add patterns that match nothing") {
  auto base = parse_config(embedded_default_toml(), "(embedded)", test::source_dir());
  REQUIRE(base);
  const RunConfig from = run_config_of(*base);
  RunConfig to = from;
  to.gate_inbound.push_back({.doc_types = {"case.*"}});
  CHECK(check_change(from, to, *base).empty());
  RunConfig both = to;
  both.gate_outbound.push_back({.doc_types = {"public.*", "case.conclude"}});
  auto problems = check_change(to, both, *base);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] ==
        "the gate would let case.conclude cross inbound (gate.inbound (\"case.*\")) and "
        "outbound (gate.outbound (\"case.conclude\")) at once; a DocType crosses one way only");
  // What was so before the change is not the change's doing: another change goes ahead.
  RunConfig later = both;
  later.routes.push_back({.doc_type = "case.accept", .destinations = {from.destinations[0].name}});
  CHECK(check_change(both, later, *base).empty());
  RunConfig nothing = from;
  nothing.senders.push_back({.id = "440699/new", .doc_types = {"cases.*"}});
  problems = check_change(from, nothing, *base);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("sender 440699/new: DocType pattern \"cases.*\" matches no DocType") == 0);
  RunConfig nobody = from;
  nobody.routes.push_back(
      {.doc_type = "case.*", .sender = "449999/*", .destinations = {from.destinations[0].name}});
  problems = check_change(from, nobody, *base);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("sender pattern \"449999/*\" matches no configured [[sender]]") !=
        std::string::npos);
}
