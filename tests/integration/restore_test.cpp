// Restoring a store from an online backup through real processes: sluicectl backup while
// sluiced runs, sluiced --restore-from while it is stopped, and what the restored half has.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/harness.h"

using namespace sluice;
using namespace sluice::test;

namespace {

int run(const std::string& cmd, std::string& said, const TempDir& dir) {
  const auto out = dir.path() / "out.txt";
  const int rc = std::system((cmd + " > " + out.string() + " 2>&1").c_str());
  std::ifstream in(out);
  said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  UNSCOPED_INFO(cmd << " -> " << said);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST_CASE(
    "a store restored from a backup has what was accepted before the backup and delivers what "
    "was waiting",
    "[faults]") {
  SinkRunner sink;
  sink.set_unavailable(true);  // what is accepted waits in the queue
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  TempDir work("restore");
  const auto backup = work.path() / "backup";
  auto client = gw.client("sender-440604-approval");
  auto before = client->request("POST", "/v1/messages", sample("case.accept/valid-1.xml", "rb-1"));
  REQUIRE(before);
  REQUIRE(before->status == 202);
  const std::string kept_id = json_field(before->body, "messageId");
  std::string said;
  const std::string ctl = "env SLUICE_PKI=" + dev_pki().string() +
                          " SLUICE_ADMIN_PORT=" + std::to_string(gw.admin_port()) + " " +
                          sluicectl_binary().string();
  REQUIRE(run(ctl + " backup " + backup.string(), said, work) == 0);
  auto after = client->request("POST", "/v1/messages", sample("case.accept/valid-1.xml", "rb-2"));
  REQUIRE(after);
  REQUIRE(after->status == 202);
  const std::string lost_id = json_field(after->body, "messageId");

  const std::string restore = sluiced_binary().string() + " --config " +
                              (gw.dir() / "sluiced.toml").string() + " --restore-from ";
  // While sluiced runs on the store: refused, nothing changes.
  CHECK(run(restore + backup.string(), said, work) == 1);
  CHECK(said.find("is in use: stop sluiced before restoring it") != std::string::npos);
  // Not a backup: refused, naming what is missing.
  REQUIRE(gw.stop() == 0);
  CHECK(run(restore + work.path().string(), said, work) == 1);
  CHECK(said.find("does not exist: name the directory sluicectl backup wrote") !=
        std::string::npos);
  // A damaged copy is refused before anything is replaced.
  const auto damaged = work.path() / "damaged";
  std::filesystem::create_directories(damaged);
  std::ofstream(damaged / "data.mdb") << std::string(8192, 'x');
  CHECK(run(restore + damaged.string(), said, work) == 1);
  CHECK(said.find("is not a store this sluiced can open") != std::string::npos);

  REQUIRE(run(restore + backup.string(), said, work) == 0);
  CHECK(said.find("1 message(s) waiting for delivery") != std::string::npos);
  CHECK(said.find("audit trail of") != std::string::npos);
  CHECK(said.find("the store it replaced is kept in") != std::string::npos);

  gw.restart();
  auto admin = gw.admin();
  auto kept = admin->request("GET", "/admin/v1/messages/" + kept_id);
  REQUIRE(kept);
  CHECK(kept->status == 200);
  auto lost = admin->request("GET", "/admin/v1/messages/" + lost_id);
  REQUIRE(lost);
  CHECK(lost->status == 404);  // accepted after the backup: in the kept store only
  sink.set_unavailable(false);
  CHECK(sink.wait_for(1).distinct == 1);
  // The trail is whole, and says the store was restored.
  auto trail = gw.auditor()->request("GET", "/admin/v1/audit/verify");
  REQUIRE(trail);
  CHECK(trail->body.find("\"intact\":true") != std::string::npos);
  auto tail = gw.auditor()->request("GET", "/admin/v1/audit?n=5");
  REQUIRE(tail);
  CHECK(tail->body.find("store.restore") != std::string::npos);
}
