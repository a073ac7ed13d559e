// Run-time configuration through a real sluiced and sluicectl: a network admin adds a
// destination, a route and a sender, documents follow them without a restart, bad changes are
// refused with their reason, every change is a version with its audit entry, and a rollback
// goes back.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "tests/support/harness.h"
#include "tests/support/sluicectl.h"

using namespace sluice;
using namespace sluice::test;

namespace {

unsigned post(const Gateway& gw, const std::string& cert, const std::string& doc) {
  auto r = gw.client(cert)->request("POST", "/v1/messages", doc);
  return r ? r->status : 0;
}

}  // namespace

TEST_CASE(
    "a network admin adds a destination and a route and a sender at run time and documents "
    "follow them without a restart",
    "[config]") {
  SinkRunner sink, district;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .routes = "[[route]]\ndoc_type = \"case.*\"\ndestinations = [\"sink\"]\n",
              .senders = "[[sender]]\nid = \"440604/approval\"\ndoc_types = [\"case.*\"]\n"});
  std::string said;
  int n = 0;
  auto accept = [&](const std::string& sender = "440604/approval") {
    return sample("case.accept/valid-1.xml", "cfg-" + std::to_string(++n), sender);
  };
  // Version 1 is the file's, seeded by the system at first start.
  REQUIRE(ctl(gw, "config history", said) == 0);
  CHECK(said.find("\"action\":\"config.seed\"") != std::string::npos);
  CHECK(said.find("\"version\":1") != std::string::npos);
  REQUIRE(post(gw, "sender-440604-approval", accept()) == 202);
  REQUIRE(sink.wait_for(1).distinct == 1);

  // A dry run prints the diff and changes nothing.
  const std::string add_district =
      "config add destination 'name = \"district\"' 'url = "
      "\"http://127.0.0.1:" +
      std::to_string(district.port()) + "/inbox\"'";
  REQUIRE(ctl(gw, add_district + " --dry-run", said) == 0);
  CHECK(said.find("\"dryRun\":true") != std::string::npos);
  CHECK(said.find("+ destination district: {") != std::string::npos);
  REQUIRE(ctl(gw, "config history", said) == 0);
  CHECK(said.find("\"version\":2") == std::string::npos);

  // Refused, each with its reason, and nothing changes.
  CHECK(run_sluicectl(
            gw, "config add route 'doc_type = \"case.accept\"' 'destinations = [\"nowhere\"]'",
            said) == 1);
  CHECK(said.find("unknown destination \\\"nowhere\\\"") != std::string::npos);
  CHECK(ctl(gw,
            "config add route 'doc_type = \"case.accept\"' 'sender = \"999999/*\"' "
            "'destinations = [\"sink\"]'",
            said) == 1);
  CHECK(said.find("matches no configured [[sender]]") != std::string::npos);
  CHECK(ctl(gw, "config add route 'doc_type = \"cse.*\"' 'destinations = [\"sink\"]'", said) == 1);
  CHECK(said.find("matches no DocType") != std::string::npos);
  CHECK(ctl(gw, "config update destination sink 'concurrency = 0'", said) == 1);
  CHECK(said.find("concurrency = 0 is out of range") != std::string::npos);
  CHECK(ctl(gw, "config remove destination nowhere", said) == 1);
  CHECK(said.find("no destination with name \\\"nowhere\\\"") != std::string::npos);
  CHECK(ctl(gw, "config add route 'doc_type = ' ", said) == 1);
  CHECK(said.find("not TOML") != std::string::npos);

  // The destination, then a route of case.accept to it: version 2 and 3.
  REQUIRE(ctl(gw, add_district, said) == 0);
  CHECK(said.find("\"version\":2") != std::string::npos);
  REQUIRE(run_sluicectl(
              gw, "config add route 'doc_type = \"case.accept\"' 'destinations = [\"district\"]'",
              said) == 0);
  CHECK(said.find("\"version\":3") != std::string::npos);
  CHECK(said.find("+ route: {") != std::string::npos);
  REQUIRE(post(gw, "sender-440604-approval", accept()) == 202);
  CHECK(district.wait_for(1).distinct == 1);
  CHECK(sink.wait_for(2).distinct == 2);

  // A sender that was not configured is refused, then allowed once added.
  CHECK(post(gw, "sender-440605-tax", accept("440605/tax")) == 403);
  REQUIRE(ctl(gw, "config add sender 'id = \"440605/tax\"' 'doc_types = [\"case.accept\"]'",
              said) == 0);
  CHECK(said.find("\"version\":4") != std::string::npos);
  REQUIRE(post(gw, "sender-440605-tax", accept("440605/tax")) == 202);
  CHECK(district.wait_for(2).distinct == 2);
  REQUIRE(ctl(gw, "config show sender 440605/tax", said) == 0);
  CHECK(said.find("\"doc_types\":[\"case.accept\"]") != std::string::npos);

  // The gate's rules are the security admin's; a DocType may not be opened both ways.
  CHECK(ctl(gw, "config add gate.inbound 'doc_types = [\"case.*\"]'", said) == 1);
  CHECK(said.find("auth.role") != std::string::npos);
  REQUIRE(ctl(gw, "config add gate.inbound 'doc_types = [\"case.*\"]'", said, "admin-secadmin") ==
          0);
  CHECK(ctl(gw, "config add gate.outbound 'doc_types = [\"case.conclude\"]'", said,
            "admin-secadmin") == 1);
  CHECK(said.find("the gate would let case.conclude cross inbound") != std::string::npos);
  // ... and may not change routes even by an import.
  REQUIRE(ctl(gw, "config export", said) == 0);
  TempDir files("config-files");
  const auto exported = files.path() / "exported.toml";
  std::ofstream(exported) << said;
  CHECK(said.find("[[destination]]") != std::string::npos);
  CHECK(ctl(gw, "config import " + exported.string(), said) == 0);  // the same: no new version
  CHECK(said.find("\"changed\":false") != std::string::npos);

  // A destination with messages waiting cannot be removed: they keep their routing.
  district.set_unavailable(true);
  REQUIRE(post(gw, "sender-440604-approval", accept()) == 202);
  CHECK(ctl(gw, "config remove route 2", said) == 0);  // version 6: no more routes to district
  CHECK(ctl(gw, "config remove destination district", said) == 1);
  CHECK(said.find("still has 1 message(s) to deliver") != std::string::npos);
  district.set_unavailable(false);
  CHECK(district.wait_for(3).distinct == 3);  // routed before the change: still delivered
  REQUIRE(post(gw, "sender-440604-approval", accept()) == 202);
  CHECK(sink.wait_for(5).distinct == 5);

  // The trail says who changed what, before -> after.
  REQUIRE(ctl(gw, "audit tail -n 20", said, "admin-auditor") == 0);
  CHECK(said.find("\"actor\":\"admin/netadmin\",\"action\":\"config.add\"") != std::string::npos);
  CHECK(said.find("version 3 (was 2): + route: {") != std::string::npos);
  CHECK(said.find("\"actor\":\"admin/secadmin\",\"action\":\"config.add\"") != std::string::npos);
  REQUIRE(ctl(gw, "config diff 2 3", said) == 0);
  CHECK(said.find("+ route: { destinations = [ 'district' ], doc_type = 'case.accept'") !=
        std::string::npos);

  // After a restart the store's version is in use, not the file's (which the log says).
  gw.restart();
  CHECK(gw.log().find("differ from run-time configuration version 6") != std::string::npos);
  CHECK(post(gw, "sender-440605-tax", accept("440605/tax")) == 202);  // added at run time
  CHECK(sink.wait_for(6).distinct == 6);

  // Back to the file's version 1: the sender added later is refused again.
  CHECK(ctl(gw, "config rollback 1", said) == 1);  // only the security admin may undo the gate
  CHECK(said.find("only the security admin") != std::string::npos);
  REQUIRE(ctl(gw, "config remove gate.inbound 1", said, "admin-secadmin") == 0);
  REQUIRE(ctl(gw, "config rollback 1 --dry-run", said) == 0);
  CHECK(said.find("- sender 440605/tax") != std::string::npos);
  REQUIRE(ctl(gw, "config rollback 1", said) == 0);
  CHECK(said.find("\"version\":8") != std::string::npos);
  CHECK(post(gw, "sender-440605-tax", accept("440605/tax")) == 403);
  REQUIRE(ctl(gw, "config history -n 1", said) == 0);
  CHECK(said.find("\"action\":\"config.rollback\"") != std::string::npos);
  CHECK(said.find("\"actor\":\"admin/netadmin\"") != std::string::npos);
}

TEST_CASE(
    "a destination changed at run time takes the next deliveries and a feed and spool "
    "directory added at run time take files",
    "[config]") {
  SinkRunner sink, moved;
  TempDir spool("spool-run-time");
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  std::string said;
  REQUIRE(post(gw, "sender-440604-approval", sample("case.accept/valid-1.xml", "move-1")) == 202);
  REQUIRE(sink.wait_for(1).distinct == 1);
  // The receiver moved: its destination's url changes, and the next document goes there.
  REQUIRE(ctl(gw,
              "config update destination sink 'url = \"http://127.0.0.1:" +
                  std::to_string(moved.port()) + "/inbox\"'",
              said) == 0);
  CHECK(said.find("- destination sink: ") != std::string::npos);
  REQUIRE(post(gw, "sender-440604-approval", sample("case.accept/valid-1.xml", "move-2")) == 202);
  CHECK(moved.wait_for(1).distinct == 1);
  CHECK(sink.stats().distinct == 1);

  // A feed whose mapping does not load, and a spool directory that is not one, are refused.
  const std::string maps = (source_dir() / "adapters" / "mappings").string();
  CHECK(ctl(gw, "config add feed 'name = \"psb-drop\"' 'mapping = \"/nowhere/psb.toml\"'", said) ==
        1);
  CHECK(said.find("feed psb-drop: ") != std::string::npos);
  REQUIRE(ctl(gw,
              "config add feed 'name = \"psb-drop\"' 'mapping = \"" + maps +
                  "/public-security-xslt.toml\"'",
              said) == 0);
  REQUIRE(ctl(gw, "config update sender 440600/psb 'feeds = [\"psb-drop\"]'", said) == 0);
  const std::string add_spool =
      "config add spool_in 'name = \"psb\"' 'feed = \"psb-drop\"' "
      "'sender = \"440600/psb\"' 'path = \"";
  CHECK(ctl(gw, add_spool + (spool.path() / "missing").string() + "\"'", said) == 1);
  CHECK(said.find("is not a directory") != std::string::npos);
  REQUIRE(ctl(gw, add_spool + spool.path().string() + "\"'", said) == 0);
  const auto incoming = spool.path() / "incoming";
  REQUIRE(eventually([&] { return std::filesystem::exists(incoming); }));
  std::ofstream(spool.path() / "tmp-1.xml")
      << read_text(source_dir() / "adapters" / "samples" / "public-security.xml");
  std::filesystem::rename(spool.path() / "tmp-1.xml", incoming / "GA-1.xml");
  REQUIRE(eventually([&] { return std::filesystem::exists(spool.path() / "done" / "GA-1.xml"); }));
  CHECK(moved.wait_for(3).distinct == 3);  // its two records, at the moved receiver
}
