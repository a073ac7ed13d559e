// End to end through a real sluiced: HTTPS + client certificates in, LMDB, HTTP delivery out.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <csignal>
#include <set>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "queue/queue.h"
#include "tests/support/harness.h"

using namespace sluice;
using namespace sluice::test;

namespace {

std::string post(net::HttpsClient& c, const std::string& body, unsigned* status = nullptr) {
  auto r = c.request("POST", "/v1/messages", body);
  REQUIRE(r);
  if (status != nullptr) *status = r->status;
  return r->body;
}

std::string state_of(net::HttpsClient& c, const std::string& id) {
  auto r = c.request("GET", "/v1/messages/" + id);
  REQUIRE(r);
  return json_field(r->body, "state");
}

std::string wait_state(net::HttpsClient& c, const std::string& id, const std::string& want,
                       std::chrono::seconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = state_of(c, id);
    if (s == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return s;
}

std::string admin_stats(const Gateway& gw) {
  auto r = gw.admin()->request("GET", "/admin/v1/stats");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return r->body;
}

const char* kSamples[] = {
    "case.accept/valid-1.xml",  "case.register/valid-1.xml", "case.conclude/valid-1.xml",
    "case.fee/valid-1.xml",     "case.review/valid-1.xml",   "public.complaint/valid-1.xml",
    "catalog.item/valid-1.xml", "stats.report/valid-1.xml",
};

}  // namespace

TEST_CASE("posted documents are stored, answered at once and delivered exactly once") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto client = gw.client("sender-440604-approval");
  std::set<std::string> ids;
  int n = 0;
  for (int round = 0; round < 5; ++round) {
    for (const char* s : kSamples) {
      unsigned status = 0;
      std::string body = post(*client, sample(s, "it-" + std::to_string(n++)), &status);
      INFO(body);
      REQUIRE(status == 202);
      CHECK(json_field(body, "status") == "accepted");
      CHECK(json_field(body, "duplicate") == "false");
      ids.insert(json_field(body, "messageId"));
    }
  }
  REQUIRE(ids.size() == static_cast<std::size_t>(n));
  auto stats = sink.wait_for(ids.size());
  CHECK(stats.distinct == ids.size());
  for (const auto& id : ids) {
    CHECK(wait_state(*client, id, "delivered") == "delivered");
  }
  CHECK(stats.duplicates == 0);
}

TEST_CASE("a resend with the same SenderMessageId answers with the original id") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto client = gw.client("sender-440604-approval");
  std::string doc = sample("case.accept/valid-1.xml", "resend-1");
  std::string first = json_field(post(*client, doc), "messageId");
  unsigned status = 0;
  std::string again = post(*client, doc, &status);
  CHECK(status == 202);
  CHECK(json_field(again, "messageId") == first);
  CHECK(json_field(again, "duplicate") == "true");
  auto stats = sink.wait_for(1);
  CHECK(stats.distinct == 1);
  CHECK(stats.duplicates == 0);
}

TEST_CASE("a destination that is down receives everything once it comes back") {
  PortHold down;  // connections are refused; the port stays ours until the sink takes it
  std::uint16_t port = down.port();
  Gateway gw({.destinations = http_destination("sink", port)});
  auto client = gw.client("sender-440604-approval");
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(
        json_field(post(*client, sample("case.accept/valid-1.xml", "down-" + std::to_string(i))),
                   "messageId"));
  }
  // Attempts fail while nothing listens; the status says why.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string status_body;
  while (std::chrono::steady_clock::now() < deadline) {
    status_body = client->request("GET", "/v1/messages/" + ids[0])->body;
    if (status_body.find("lastError") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO(status_body);
  CHECK(status_body.find("refused") != std::string::npos);
  CHECK(json_field(status_body, "state") == "delivering");

  tools::SinkOptions so;
  so.port = port;
  down.release();
  SinkRunner sink(so);
  auto stats = sink.wait_for(ids.size(), std::chrono::seconds(40));
  CHECK(stats.distinct == ids.size());
  CHECK(stats.duplicates == 0);
  for (const auto& id : ids) {
    CHECK(wait_state(*client, id, "delivered") == "delivered");
  }
}

TEST_CASE("a receiver that answers 503 is retried until it takes the message") {
  tools::SinkOptions so;
  so.fail_first = 3;
  SinkRunner sink(so);
  Gateway gw({.destinations = http_destination("sink", sink.port(), 1)});
  auto client = gw.client("sender-440604-approval");
  std::string id =
      json_field(post(*client, sample("case.accept/valid-1.xml", "retry-1")), "messageId");
  CHECK(wait_state(*client, id, "delivered") == "delivered");
  auto body = client->request("GET", "/v1/messages/" + id)->body;
  // Two failures spend attempts; the third backs the destination off (breaker_failures = 3),
  // which spends none; the probe that delivers it is the third attempt.
  CHECK(json_field(body, "attempts") == "3");
  CHECK(sink.stats().refused == 3);
}

TEST_CASE("bad input is refused with a 4xx naming the problem, and nothing is stored") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .routes = "[[route]]\ndoc_type = \"case.*\"\ndestinations = [\"sink\"]\n"});
  auto client = gw.client("sender-440604-approval");
  std::string good = sample("case.accept/valid-1.xml", "bad-0");

  struct Case {
    std::string name;
    std::string body;
    unsigned status;
    std::string code;
    std::string mention;
  };
  std::string missing_sender = good;
  missing_sender.erase(
      missing_sender.find("<env:Sender>"),
      missing_sender.find("</env:Sender>") + 13 - missing_sender.find("<env:Sender>"));
  std::string no_route = sample("public.complaint/valid-1.xml", "bad-route");
  std::string with_id = good;
  with_id.insert(with_id.find("<env:SenderMessageId>"),
                 "<env:MessageId>0b7a8f3c-1111-4222-8333-444455556666</env:MessageId>");
  std::vector<Case> cases = {
      {"not XML", "this is not xml", 400, "xml.not-well-formed", "not well-formed"},
      {"truncated", good.substr(0, good.size() / 2), 400, "xml.not-well-formed", "line"},
      {"oversized", std::string(300'000, ' ') + good, 413, "http.body-too-large", "limit"},
      {"missing Sender", missing_sender, 400, "envelope.invalid", "Sender"},
      {"unknown route", no_route, 422, "route.none", "public.complaint"},
      {"empty body", "", 400, "xml.empty", "empty"},
      {"MessageId sent", with_id, 400, "envelope.message-id-assigned", "MessageId"},
      {"billion laughs",
       R"(<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>)",
       400, "xml.doctype-forbidden", "DOCTYPE"},
      {"XXE",
       R"(<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>)",
       400, "xml.doctype-forbidden", "DOCTYPE"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      auto r = client->request("POST", "/v1/messages", c.body);
      REQUIRE(r);
      INFO(r->body);
      CHECK(r->status == c.status);
      CHECK(r->header("Content-Type") == "application/json");
      CHECK(json_field(r->body, "code") == c.code);
      CHECK(r->body.find(c.mention) != std::string::npos);
      CHECK(json_field(admin_stats(gw), "queuedMessages") == "0");
      CHECK(json_field(admin_stats(gw), "committedOperations") != "");
    }
  }
  CHECK(sink.stats().requests == 0);
}

TEST_CASE("a sender cannot claim another sender's identity") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto tax = gw.client("sender-440605-tax");
  unsigned status = 0;
  std::string body = post(*tax, sample("case.accept/valid-1.xml", "spoof-1"), &status);
  CHECK(status == 403);
  CHECK(json_field(body, "code") == "auth.sender-mismatch");
  CHECK(json_field(admin_stats(gw), "queuedMessages") == "0");
}

TEST_CASE("a sender sees only its own messages") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto owner = gw.client("sender-440604-approval");
  std::string id =
      json_field(post(*owner, sample("case.accept/valid-1.xml", "own-1")), "messageId");
  auto other = gw.client("sender-440605-tax");
  auto r = other->request("GET", "/v1/messages/" + id);
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(owner->request("GET", "/v1/messages/" + id)->status == 200);
}

TEST_CASE("a full queue answers 503 with Retry-After and keeps what it accepted") {
  PortHold down;  // connections are refused; the port stays ours until the sink takes it
  std::uint16_t port = down.port();
  Gateway gw(
      {.destinations = http_destination("sink", port), .store_extra = "max_queued_mb = 1\n"});
  auto client = gw.client("sender-440604-approval");
  // Health for a load balancer: any trusted certificate, no admin role, on either listener.
  auto monitor_client = gw.admin_client("sender-440605-tax");
  auto& monitor = *monitor_client;
  CHECK(client->request("GET", "/healthz")->status == 200);
  auto ready = client->request("GET", "/readyz");
  CHECK(ready->status == 200);
  CHECK(ready->body == R"({"ready":true})");
  CHECK(monitor.request("GET", "/readyz")->status == 200);
  CHECK(monitor.request("GET", "/metrics")->status == 403);  // still the admin's
  std::vector<std::string> accepted;
  unsigned status = 202;
  std::string body;
  for (int i = 0; i < 2000 && status == 202; ++i) {
    body = post(*client, sample("case.register/valid-1.xml", "full-" + std::to_string(i)), &status);
    if (status == 202) accepted.push_back(json_field(body, "messageId"));
  }
  INFO(body);
  REQUIRE(status == 503);
  CHECK(json_field(body, "code") == "store.backpressure");
  auto r = client->request("POST", "/v1/messages", sample("case.register/valid-1.xml", "full-x"));
  CHECK(r->header("Retry-After") == "5");
  // Full: not ready, and says why; alive all the same.
  auto full = monitor.request("GET", "/readyz");
  CHECK(full->status == 503);
  CHECK(full->body.find("the store is full") != std::string::npos);
  CHECK(client->request("GET", "/readyz")->status == 503);
  CHECK(monitor.request("GET", "/healthz")->status == 200);
  // Everything accepted is still there and is delivered once the destination returns.
  tools::SinkOptions so;
  so.port = port;
  down.release();
  SinkRunner sink(so);
  auto stats = sink.wait_for(accepted.size(), std::chrono::seconds(60));
  CHECK(stats.distinct == accepted.size());
  CHECK(eventually([&] { return monitor.request("GET", "/readyz")->status == 200; }));
}

TEST_CASE("the admin API refuses non-admin certificates and serves admins") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  // A sender certificate on the admin port.
  auto refused = gw.admin_client("sender-440604-approval")->request("GET", "/admin/v1/stats");
  REQUIRE(refused);
  CHECK(refused->status == 403);
  auto ok = gw.admin()->request("GET", "/metrics");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(ok->body.find("sluice_queue_bytes") != std::string::npos);
}

TEST_CASE("SIGTERM stops sluiced cleanly after finishing what it accepted") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  auto client = gw.client("sender-440604-approval");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    unsigned status = 0;
    std::string body =
        post(*client, sample("case.accept/valid-1.xml", "term-" + std::to_string(i)), &status);
    INFO(body);
    REQUIRE(status == 202);
    ids.push_back(json_field(body, "messageId"));
  }
  int status = gw.stop();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The store, reopened after the exit, holds every message that was acknowledged.
  queue::Options o;
  o.path = gw.dir() / "store";
  auto store = queue::Store::open(o);
  REQUIRE(store);
  for (const auto& id : ids) {
    auto st = (*store)->status(id);
    INFO(id);
    CHECK(st.has_value());
  }
}

TEST_CASE("a malformed admin query is refused with 400 and the gateway stays up", "[security]") {
  Gateway gw({.destinations = "[[destination]]\nname = \"sink\"\nurl = \"http://127.0.0.1:9/\"\n"});
  auto admin = gw.admin();
  auto auditor = gw.auditor();
  for (const char* q : {"/admin/v1/audit?n=99999999999999999999999", "/admin/v1/audit?n=-1",
                        "/admin/v1/dead-letters?limit=12x", "/admin/v1/quarantine?limit=%00"}) {
    auto r = std::string_view(q).starts_with("/admin/v1/audit") ? auditor->request("GET", q)
                                                                : admin->request("GET", q);
    REQUIRE(r);
    INFO(q << " " << r->body);
    CHECK(r->status == 400);
    CHECK(r->body.find("query.invalid") != std::string::npos);
  }
  auto health = admin->request("GET", "/admin/v1/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  // Nothing is left in flight: the stop does not wait out the in-flight bound.
  auto t0 = std::chrono::steady_clock::now();
  int status = gw.stop();
  CHECK(WIFEXITED(status));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("pipelined delivery sends everything exactly once, in order per case") {
  SinkRunner sink;
  std::string dest = http_destination("sink", sink.port(), 2) + "pipeline = 8\n";
  Gateway gw({.destinations = dest});
  auto client = gw.client("sender-440604-approval");
  std::vector<std::string> ids;
  for (int i = 0; i < 120; ++i) {
    unsigned status = 0;
    std::string body =
        post(*client, sample("case.accept/valid-1.xml", "pipe-" + std::to_string(i)), &status);
    REQUIRE(status == 202);
    ids.push_back(json_field(body, "messageId"));
  }
  auto stats = sink.wait_for(ids.size());
  CHECK(stats.distinct == ids.size());
  for (const auto& id : ids) {
    CHECK(wait_state(*client, id, "delivered") == "delivered");
  }
  // Every document is of the same case: they must arrive in the order they were accepted.
  CHECK(sink.arrivals() == ids);
  CHECK(sink.stats().duplicates == 0);
}

TEST_CASE(
    "a failed sync latches the store: sluiced answers 503 and loses nothing it acknowledged") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(SLUICE_SYNCSHIM_PATH)
  WARN("skipped: the sync shim cannot be preloaded into a sanitizer build");
  return;
#else
  Gateway gw({.destinations = "[[destination]]\nname = \"sink\"\nurl = \"http://127.0.0.1:9/\"\n",
              .env = {std::string("LD_PRELOAD=") + SLUICE_SYNCSHIM_PATH,
                      "SLUICE_SYNCSHIM_FAIL_AFTER=40"}});
  auto client = gw.client("sender-440604-approval");
  std::vector<std::string> acknowledged;
  unsigned status = 202;
  std::string refusal;
  for (int i = 0; i < 2000 && status == 202; ++i) {
    std::string body =
        post(*client, sample("case.accept/valid-1.xml", "sync-" + std::to_string(i)), &status);
    if (status == 202) {
      acknowledged.push_back(json_field(body, "messageId"));
    } else {
      refusal = body;
    }
  }
  INFO(refusal);
  REQUIRE(status == 503);  // the store latched read-only: refused, not lost
  CHECK(refusal.find("store.backpressure") != std::string::npos);
  unsigned again = 0;
  post(*client, sample("case.accept/valid-1.xml", "sync-after"), &again);
  CHECK(again == 503);  // and it stays refused: no write is tried on a failed store
  gw.stop();
  queue::Options o;
  o.path = gw.dir() / "store";
  auto store = queue::Store::open(o);
  REQUIRE(store);
  for (const auto& id : acknowledged) {
    INFO(id);
    CHECK((*store)->status(id).has_value());
  }
#endif
}

TEST_CASE("no 202 leaves sluiced before a sync that began after its request was sent") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(SLUICE_SYNCSHIM_PATH)
  WARN("skipped: the sync shim cannot be preloaded into a sanitizer build");
  return;
#else
  test::TempDir logs("synclog");
  auto log = logs.path() / "sync.log";
  Gateway gw({.destinations = "[[destination]]\nname = \"sink\"\nurl = \"http://127.0.0.1:9/\"\n",
              .env = {std::string("LD_PRELOAD=") + SLUICE_SYNCSHIM_PATH,
                      "SLUICE_SYNCSHIM_LOG=" + log.string()}});
  auto client = gw.client("sender-440604-approval");
  auto now_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);  // the shim's clock: one clock for both processes
    return static_cast<long long>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
  };
  std::vector<std::pair<long long, long long>> windows;  // request sent, 202 received
  for (int i = 0; i < 60; ++i) {
    unsigned status = 0;
    long long sent = now_ns();
    post(*client, sample("case.accept/valid-1.xml", "order-" + std::to_string(i)), &status);
    long long answered = now_ns();
    REQUIRE(status == 202);
    windows.emplace_back(sent, answered);
  }
  std::vector<long long> syncs;
  std::istringstream in(read_text(log));
  std::string what;
  long long ns = 0;
  while (in >> what >> ns) {
    if (what == "sync") syncs.push_back(ns);
  }
  REQUIRE(!syncs.empty());
  std::sort(syncs.begin(), syncs.end());
  int uncovered = 0;
  for (auto [sent, answered] : windows) {
    auto it = std::upper_bound(syncs.begin(), syncs.end(), sent);
    if (it == syncs.end() || *it >= answered) ++uncovered;
  }
  CHECK(uncovered == 0);
#endif
}

TEST_CASE("a configured peer gateway forwards documents with their MessageId, others may not") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .gateway_extra = "peers = [\"440600/supervision\"]\n"});
  std::string id = "0190f3a2-7b1c-7d2e-8f40-123456789abc";
  auto with_id = [&](const std::string& smid) {
    std::string doc = sample("case.accept/valid-1.xml", smid);
    auto at = doc.find("<env:SenderMessageId>");
    REQUIRE(at != std::string::npos);
    doc.insert(at, "<env:MessageId>" + id + "</env:MessageId>");
    return doc;
  };
  auto peer = gw.client("sender-440600-supervision");
  unsigned status = 0;
  std::string body = post(*peer, with_id("peer-1"), &status);
  INFO(body);
  REQUIRE(status == 202);
  CHECK(json_field(body, "messageId") == id);
  // The same MessageId again (a resend after a lost ack) is a duplicate, never an error.
  body = post(*peer, with_id("peer-1"), &status);
  CHECK(status == 202);
  CHECK(json_field(body, "duplicate") == "true");
  // Also when the resend carries another SenderMessageId: the MessageId decides.
  body = post(*peer, with_id("peer-2"), &status);
  CHECK(status == 202);
  CHECK(json_field(body, "messageId") == id);
  CHECK(json_field(body, "duplicate") == "true");
  // An ordinary sender may not choose a MessageId.
  auto sender = gw.client("sender-440604-approval");
  body = post(*sender, with_id("not-peer"), &status);
  CHECK(status == 400);
  CHECK(body.find("envelope.message-id-assigned") != std::string::npos);
  CHECK(sink.wait_for(1).distinct == 1);
}

TEST_CASE(
    "metrics pass promtool check metrics: every family described, latency histograms, "
    "dead letters counted and logged") {
  SinkRunner sink;
  SinkRunner flaky({.fail_first = 1});  // its one delivery fails, and one attempt is all
  Gateway gw({.destinations =
                  http_destination("sink", sink.port()) + http_destination("flaky", flaky.port()),
              .routes = "[[route]]\ndoc_type = \"case.accept\"\ndestinations = [\"sink\"]\n"
                        "[[route]]\ndoc_type = \"case.fee\"\ndestinations = [\"flaky\"]\n",
              .retry = "max_attempts = 1\n"});
  auto client = gw.client("sender-440604-approval");
  unsigned status = 0;
  post(*client, sample("case.accept/valid-1.xml", "prom-1"), &status);
  REQUIRE(status == 202);
  post(*client, sample("case.fee/valid-1.xml", "prom-2"), &status);
  REQUIRE(status == 202);
  REQUIRE(sink.wait_for(1).distinct == 1);
  std::string body;
  REQUIRE(eventually([&] {
    auto r = gw.admin()->request("GET", "/metrics");
    body = r ? r->body : "";
    // The accept histogram is observed just after each answer is written: wait for both.
    return body.find("sluice_accept_duration_seconds_count{listener=\"data\"} 2") !=
               std::string::npos &&
           body.find("sluice_dead_letters_total{destination=\"flaky\"} 1") != std::string::npos &&
           body.find("sluice_delivery_latency_seconds_count{destination=\"sink\"} 1") !=
               std::string::npos;
  }));
  INFO(body);
  CHECK(body.find("sluice_accept_duration_seconds_count{listener=\"data\"} 2") !=
        std::string::npos);
  CHECK(body.find("sluice_accept_duration_seconds_bucket{listener=\"data\",le=\"+Inf\"} 2") !=
        std::string::npos);
  CHECK(body.find("# HELP sluice_store_fill_ratio ") != std::string::npos);
  CHECK(body.find("\nsluice_store_fill_ratio 0.") != std::string::npos);
  CHECK(body.find("not in the catalogue") == std::string::npos);
  // The dead delivery is in the log with its reason, the document's content is not.
  // (The counter is raised just before the line is written: wait for the line.)
  CHECK(eventually([&] {
    return gw.log().find("to flaky is dead: attempt 1 of 1 failed") != std::string::npos;
  }));
  // One access line per request, without the body.
  CHECK(gw.log().find("access data ") != std::string::npos);
  CHECK(gw.log().find(" POST /v1/messages 202 440604/approval ") != std::string::npos);

  // Debian's promtool (package prometheus) lints the exposition: HELP and TYPE on every
  // family, names, units and histogram shape. Quiet and exit 0 when it is clean.
  TempDir dir("promtool");
  const auto file = dir.path() / "metrics.txt";
  std::ofstream(file) << body;
  const auto out = dir.path() / "promtool.txt";
  const int rc = std::system(
      ("promtool check metrics < " + file.string() + " > " + out.string() + " 2>&1").c_str());
  std::ifstream in(out);
  std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO("promtool: " << said);
  CHECK(rc == 0);
  CHECK(said.empty());
}

TEST_CASE("SIGHUP reloads the TLS material and CRLs and sluiced keeps serving") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  REQUIRE(::kill(gw.pid(), SIGHUP) == 0);
  std::string audit;
  REQUIRE(eventually([&] {
    auto r = gw.auditor()->request("GET", "/admin/v1/audit?n=20");
    audit = r ? r->body : "";
    return audit.find("signal/SIGHUP") != std::string::npos;
  }));
  INFO(audit);
  CHECK(audit.find("tls.reload") != std::string::npos);
  // The log line follows the audit entry's commit: wait for it too.
  CHECK(eventually([&] {
    return gw.log().find("signal/SIGHUP: TLS certificates, keys and CRLs reloaded") !=
           std::string::npos;
  }));
  // Still running and serving: a document is accepted and delivered after the reload.
  unsigned status = 0;
  post(*gw.client("sender-440604-approval"), sample("case.accept/valid-1.xml", "hup-1"), &status);
  CHECK(status == 202);
  CHECK(sink.wait_for(1).distinct == 1);
}

TEST_CASE("sluiced and sluicectl say their version") {
  for (const auto& [binary, name] : {std::pair{sluiced_binary(), std::string("sluiced ")},
                                     std::pair{sluicectl_binary(), std::string("sluicectl ")}}) {
    TempDir dir("version");
    const auto out = dir.path() / "out.txt";
    const int rc = std::system((binary.string() + " --version > " + out.string()).c_str());
    CHECK(rc == 0);
    std::ifstream in(out);
    std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(said.starts_with(name + "0."));
  }
}

TEST_CASE(
    "sluiced --check-config loads every file the configuration names and reports every "
    "problem at once") {
  auto run = [](const std::string& cwd, const std::string& args, std::string& said) {
    TempDir out_dir("check-config");
    const auto out = out_dir.path() / "out.txt";
    const int rc = std::system(("cd " + cwd + " && " + sluiced_binary().string() + " " + args +
                                " > " + out.string() + " 2>&1")
                                   .c_str());
    std::ifstream in(out);
    said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  // The shipped outer half on a machine without its files: refused, every missing file named
  // with its key, not only the first.
  std::string said;
  CHECK(run(source_dir().string(), "--check-config -c deploy/outer.toml", said) == 2);
  INFO(said);
  // Each with the line of deploy/outer.toml it comes from: the section for a listener's TLS
  // files, the key itself for a single file.
  CHECK(said.find("listen.data (line 12): ") != std::string::npos);
  CHECK(said.find("listen.admin (line 21): ") != std::string::npos);
  CHECK(said.find("signing.trust (line 125): ") != std::string::npos);
  CHECK(said.find("ferry.secret_key (line 39): ") != std::string::npos);
  CHECK(said.find("ferry.allowed_keys (line 40): ") != std::string::npos);
  // The second [[destination]]'s own line, although the first names files too.
  CHECK(said.find("destination public-portal ca (line 90): ") != std::string::npos);
  // The embedded defaults where their files are (the development PKI, schemas, mappings).
  TempDir here("check-config-ok");
  std::filesystem::create_directories(here.path() / "var");
  std::filesystem::create_directory_symlink(dev_pki(), here.path() / "var" / "pki");
  std::filesystem::create_directory_symlink(source_dir() / "schemas", here.path() / "schemas");
  std::filesystem::create_directory_symlink(source_dir() / "adapters", here.path() / "adapters");
  std::string fine;
  CHECK(run(here.path().string(), "--check-config", fine) == 0);
  INFO(fine);
  CHECK(fine.find("is valid, and every file it names loads") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(here.path() / "var" / "outer"));  // the check made nothing
  // A key file readable by others is a problem too.
  std::filesystem::remove(here.path() / "var" / "pki");
  std::filesystem::copy(dev_pki(), here.path() / "var" / "pki");
  std::filesystem::permissions(here.path() / "var" / "pki" / "gateway-outer.key.pem",
                               std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  CHECK(run(here.path().string(), "--check-config", said) == 2);
  CHECK(said.find("listen.data (line ") != std::string::npos);
}

TEST_CASE("separated admin roles: every admin endpoint against every role", "[security]") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  using Roles = std::set<std::string>;
  const Roles all{"system", "security", "audit", "monitor"};
  const std::string id = "0190b2a4-0000-7000-8000-000000000001";
  struct Endpoint {
    const char* method;
    std::string path;
    Roles allowed;
  };
  const std::vector<Endpoint> endpoints{
      {"GET", "/metrics", all},
      {"GET", "/admin/v1/health", all},
      {"GET", "/admin/v1/stats", all},
      {"GET", "/healthz", all},
      {"GET", "/readyz", all},
      {"GET", "/admin/v1/dead-letters", {"system"}},
      {"GET", "/admin/v1/messages/" + id, {"system"}},
      {"POST", "/admin/v1/messages/" + id + "/redrive?destination=sink", {"system"}},
      {"POST", "/admin/v1/backup", {"system"}},
      {"GET", "/admin/v1/messages?state=dead", {"system"}},
      {"POST", "/admin/v1/messages/" + id + "/discard?destination=sink&reason=x", {"system"}},
      {"POST", "/admin/v1/dead-letters/redrive?dry_run=1", {"system"}},
      {"POST", "/admin/v1/dead-letters/discard?dry_run=1&reason=x", {"system"}},
      {"GET", "/admin/v1/quarantine", {"system"}},
      {"GET", "/admin/v1/quarantine/" + id, {"system"}},
      {"POST", "/admin/v1/quarantine/" + id + "/resubmit", {"system"}},
      {"POST", "/admin/v1/quarantine/" + id + "/discard?reason=x", {"system"}},
      {"GET", "/admin/v1/ferry", {"system", "security", "monitor"}},
      {"POST", "/admin/v1/tls/reload", {"security"}},
      {"GET", "/admin/v1/audit", {"audit"}},
      {"GET", "/admin/v1/audit/verify", {"audit"}},
      // Run-time configuration: read by all but the monitor; the gate's rules are the security
      // admin's, the rest the system admin's; import and rollback either's (each may change
      // only its own part, tests/integration/config_test.cpp). None of these bodies is a
      // change that could be made.
      {"GET", "/admin/v1/config", {"system", "security", "audit"}},
      {"GET", "/admin/v1/config/history", {"system", "security", "audit"}},
      {"GET", "/admin/v1/config/diff?from=1&to=1", {"system", "security", "audit"}},
      {"GET", "/admin/v1/config/route", {"system", "security", "audit"}},
      {"POST", "/admin/v1/config/route", {"system"}},
      {"PUT", "/admin/v1/config/destination/nowhere", {"system"}},
      {"DELETE", "/admin/v1/config/sender/440604%2Fnobody", {"system"}},
      {"POST", "/admin/v1/config/gate.inbound", {"security"}},
      {"DELETE", "/admin/v1/config/gate.outbound/1", {"security"}},
      {"POST", "/admin/v1/config/import", {"system", "security"}},
      {"POST", "/admin/v1/config/rollback", {"system", "security"}},
      {"GET", "/admin/v1/no-such-thing", {"system"}},
  };
  const std::vector<std::pair<std::string, std::string>>
      certs{
          {"admin-netadmin", "system"},   {"admin-secadmin", "security"},
          {"admin-auditor", "audit"},     {"monitor-prometheus", "monitor"},
          {"sender-440604-approval", ""},  // a sender's certificate has no admin role
      };
  std::size_t cells = 0;
  for (const auto& [cert, role] : certs) {
    auto on_admin = gw.admin_client(cert);
    auto& client = *on_admin;
    for (const auto& e : endpoints) {
      const bool health = e.path == "/healthz" || e.path == "/readyz";
      const bool may = e.allowed.contains(role) || health;  // health: any trusted certificate
      const std::string method = e.method;
      auto r = client.request(method, e.path, method == "POST" || method == "PUT" ? "{}" : "",
                              "application/json");
      REQUIRE(r);
      INFO(cert << " " << e.method << " " << e.path << " -> " << r->status << " " << r->body);
      if (may) {
        CHECK(r->status != 403);
      } else {
        CHECK(r->status == 403);
        CHECK(r->body.find(role.empty() ? "auth.not-admin" : "auth.role") != std::string::npos);
      }
      ++cells;
    }
  }
  CHECK(cells == certs.size() * endpoints.size());  // 5 x 33
  // A role that tried what it may not is in the trail, which only the audit admin reads.
  auto trail = gw.auditor()->request("GET", "/admin/v1/audit?n=200");
  REQUIRE(trail);
  CHECK(trail->body.find("the system role may not") != std::string::npos);
  CHECK(trail->body.find("GET /admin/v1/audit") != std::string::npos);
  // The refusal says which role the request needs.
  auto denied = gw.admin()->request("GET", "/admin/v1/audit");
  CHECK(denied->body.find("needs the audit role; admin/netadmin has the system role") !=
        std::string::npos);
}

TEST_CASE("logs are one line per message in the API's time zone, as text or JSON") {
  SinkRunner sink;
  for (const std::string format : {"text", "json"}) {
    Gateway gw({.destinations = http_destination("sink", sink.port()),
                .gateway_extra = "log_format = \"" + format + "\"\n"});
    unsigned status = 0;
    std::string answer = post(*gw.client("sender-440604-approval"),
                              sample("case.accept/valid-1.xml", "log-" + format), &status);
    REQUIRE(status == 202);
    // The API's time zone: every time it answers with ends in +08:00.
    CHECK(answer.find("+08:00") != std::string::npos);
    std::string access;
    REQUIRE(eventually([&] {
      std::istringstream lines(gw.log());
      for (std::string line; std::getline(lines, line);) {
        if (line.find("access data ") != std::string::npos) access = line;
      }
      return !access.empty();
    }));
    INFO(format << ": " << access);
    if (format == "text") {
      // 2026-12-02T23:17:47.057+08:00 info access data ...
      REQUIRE(access.size() > 30);
      CHECK(access.substr(23, 6) == "+08:00");
      CHECK(access.substr(29, 12) == " info access");
    } else {
      auto v = boost::json::parse(access);
      REQUIRE(v.is_object());
      CHECK(std::string(v.at("level").as_string()) == "info");
      CHECK(std::string(v.at("time").as_string()).ends_with("+08:00"));
      CHECK(std::string(v.at("message").as_string()).starts_with("access data "));
    }
  }
  // Started by systemd with stderr on the journal: each line carries its priority.
  Gateway journal(
      {.destinations = http_destination("sink", sink.port()), .env = {"JOURNAL_STREAM=8:12345"}});
  std::istringstream lines(journal.log());
  std::size_t prefixed = 0, total = 0;
  for (std::string line; std::getline(lines, line);) {
    ++total;
    if (line.size() > 3 && line[0] == '<' && line[2] == '>' && line[1] >= '2' && line[1] <= '7') {
      ++prefixed;
    }
  }
  CHECK(total > 0);
  CHECK(prefixed == total);
}

TEST_CASE(
    "sluicectl reads its configuration file, prints JSON with --json and says how it "
    "ended in its exit status") {
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port())});
  TempDir home("sluicectl-home");
  const auto dir = home.path() / ".config" / "sluice";
  std::filesystem::create_directories(dir);
  // The user's file: where the admin listener is and which certificate to use.
  std::ofstream(dir / "sluicectl.toml")
      << "host = \"localhost\"\nport = " << gw.admin_port() << "\npki = \"" << dev_pki().string()
      << "\"\nidentity = \"admin-auditor\"\n";
  auto run = [&](const std::string& args, std::string& said) {
    const auto out = home.path() / "out.txt";
    const int rc = std::system(
        ("env -u SLUICE_PKI -u SLUICE_ADMIN_PORT HOME=" + home.path().string() + " " +
         (args.starts_with("-- ") ? args.substr(3) : sluicectl_binary().string() + " " + args) +
         " > " + out.string() + " 2>&1")
            .c_str());
    std::ifstream in(out);
    said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  std::string said;
  CHECK(run("--json audit verify", said) == 0);
  INFO(said);
  CHECK(said.find("\"intact\":true") != std::string::npos);
  CHECK(std::count(said.begin(), said.end(), '\n') == 1);  // one line
  // For a person: a table, the columns named in the first line, a row per entry.
  CHECK(run("--table audit tail -n 1", said) == 0);
  CHECK(said.starts_with("seq  "));
  CHECK(said.find("actor") != std::string::npos);
  CHECK(said.find("outcome") != std::string::npos);
  CHECK(std::count(said.begin(), said.end(), '\n') == 2);  // heading and the entry
  CHECK(said.find('{') == std::string::npos);              // no JSON left
  // On a terminal that is the default (script(1) gives sluicectl one); --json still wins.
  CHECK(run("-- script -qec '" + sluicectl_binary().string() + " audit verify' /dev/null", said) ==
        0);
  CHECK(said.find("intact ") != std::string::npos);
  CHECK(said.find("\"intact\"") == std::string::npos);
  CHECK(run("-- script -qec '" + sluicectl_binary().string() + " --json audit verify' /dev/null",
            said) == 0);
  CHECK(said.find("\"intact\":true") != std::string::npos);
  // The gateway refuses (the system admin may not read the trail): exit 1, the answer shown.
  CHECK(run("--identity admin-netadmin audit verify", said) == 1);
  CHECK(said.find("auth.role") != std::string::npos);
  // Bad usage: 2. Nothing listening: 3.
  CHECK(run("no-such-command", said) == 2);
  CHECK(run("--port 1 stats", said) == 3);
  // A file with a key sluicectl does not know is refused, naming it.
  std::ofstream(home.path() / "bad.toml") << "prot = 8444\n";
  CHECK(run("--config " + (home.path() / "bad.toml").string() + " stats", said) == 2);
  CHECK(said.find("unknown key prot") != std::string::npos);
  CHECK(run("--config=" + (home.path() / "bad.toml").string() + " stats", said) == 2);
  CHECK(said.find("unknown key prot") != std::string::npos);
}

TEST_CASE("under systemd sluiced says when it is ready, pings the watchdog and says it stops") {
  // What systemd does for Type=notify with WatchdogSec: a datagram socket in NOTIFY_SOCKET.
  TempDir dir("notify");
  const std::string path = (dir.path() / "notify.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  SinkRunner sink;
  Gateway gw({.destinations = http_destination("sink", sink.port()),
              .env = {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}});
  std::string seen;
  auto receive_until = [&](const std::string& what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen.find(what) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 200) == 1) {
        char buf[512];
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) seen.append(buf, static_cast<std::size_t>(n)).append("\n");
      }
    }
    return seen.find(what) != std::string::npos;
  };
  CHECK(receive_until("READY=1"));
  CHECK(seen.find("STATUS=serving: data port " + std::to_string(gw.data_port())) !=
        std::string::npos);
  // Every 100 ms (half of WatchdogSec) from an io thread.
  CHECK(receive_until("WATCHDOG=1"));
  CHECK(gw.stop() == 0);
  CHECK(receive_until("STOPPING=1"));
  ::close(fd);
}
