// The two halves as two sluiced processes with their own stores, joined by the ferry: inbound
// (posted to the outer, delivered inside), outbound (posted to the inner, delivered outside),
// refusals at the receiving half that come back as dead letters, and a key the outer does not
// admit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/encoding.h"
#include "ferry/frame.h"
#include "ferry/keys.h"
#include "tests/support/harness.h"
#include "trust/trust_store.h"
#include "trust/verifier.h"

using namespace sluice;
using namespace sluice::test;

namespace {

std::string ferry_destination(const std::string& name) {
  return "[[destination]]\nname = \"" + name + "\"\nkind = \"ferry\"\nconcurrency = 2\n";
}

// Routes by receiver: 440600/* lives on the internal network, 440604/* outside.
std::string routes(const std::string& internal, const std::string& external) {
  return "[[route]]\nreceiver = \"440600/*\"\ndestinations = [\"" + internal +
         "\"]\n[[route]]\nreceiver = \"440604/*\"\ndestinations = [\"" + external + "\"]\n";
}

std::string with_receiver(std::string doc, const std::string& node, const std::string& system) {
  auto b = doc.find("<env:Receiver>");
  auto e = doc.find("</env:Receiver>");
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  return doc.substr(0, b) + "<env:Receiver><cm:Node>" + node + "</cm:Node><cm:System>" + system +
         "</cm:System>" + doc.substr(e);
}

struct Keys {
  TempDir dir{"ferry-keys"};
  Keys() {
    for (const char* name : {"outer", "inner", "stranger"}) {
      auto k = ferry::generate_key_pair();
      REQUIRE(k);
      REQUIRE(ferry::write_key_pair(*k, dir.path(), name));
    }
  }
  std::string file(const std::string& name) const { return (dir.path() / name).string(); }
};

// What may cross: case documents inbound; case and public documents outbound.
const char* kGate =
    "[[gate.inbound]]\ndoc_types = [\"case.*\"]\n"
    "[[gate.outbound]]\ndoc_types = [\"case.*\", \"public.*\"]\n";

struct HalvesOptions {
  std::string inner_key = "inner";
  std::string inner_senders;  // default: every development sender may send anything
  std::string outer_gate = kGate;
  std::string inner_gate = kGate;
  std::string ferry_listen = "tcp://127.0.0.1:*";   // a fixed port for halves that restart
  std::string inner_peer = "gateway/sluice-outer";  // whose signature the inner accepts
  std::string store_extra;                          // both halves' [store] lines
};

struct Halves {
  Keys keys;
  SinkRunner inside;   // an internal receiver (440600/supervision)
  SinkRunner outside;  // an external receiver (440604/approval)
  std::unique_ptr<Gateway> outer;
  std::unique_ptr<Gateway> inner;

  explicit Halves(HalvesOptions ho = {}) {
    const std::string& inner_key = ho.inner_key;
    const std::string& inner_senders = ho.inner_senders;
    GatewayOptions o;
    o.gateway_id = "sluice-outer";
    o.signing_cert = "gateway-outer";
    o.gateway_extra = "role = \"outer\"\n";
    o.store_extra = ho.store_extra;
    o.destinations = ferry_destination("inner") + http_destination("outside", outside.port());
    o.routes = routes("inner", "outside");
    o.extra = "[ferry]\nlisten = \"" + ho.ferry_listen + "\"\nsecret_key = \"" +
              keys.file("outer.key") + "\"\nallowed_keys = [\"" + keys.file("inner.pub") +
              "\"]\npeer = \"gateway/sluice-inner\"\nheartbeat_ms = 200\nstall_ms = 2000\n" +
              ho.outer_gate;
    outer = std::make_unique<Gateway>(o, "outer");
    REQUIRE_FALSE(outer->ferry_endpoint().empty());

    GatewayOptions i;
    i.gateway_id = "sluice-inner";
    i.signing_cert = "gateway-inner";
    i.gateway_extra = "role = \"inner\"\n";
    i.store_extra = ho.store_extra;
    i.destinations = ferry_destination("outer") + http_destination("sink", inside.port());
    i.routes = routes("sink", "outer");
    if (!inner_senders.empty()) i.senders = inner_senders;
    i.extra = "[ferry]\nconnect = \"" + outer->ferry_endpoint() + "\"\nsecret_key = \"" +
              keys.file(inner_key + ".key") + "\"\nserver_key = \"" + keys.file("outer.pub") +
              "\"\npeer = \"" + ho.inner_peer + "\"\nheartbeat_ms = 200\nstall_ms = 2000\n" +
              ho.inner_gate;
    inner = std::make_unique<Gateway>(i, "inner");
  }
};

std::string ferry_status(const Gateway& gw) {
  auto r = gw.admin()->request("GET", "/admin/v1/ferry");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return r->body;
}

std::string post(const Gateway& gw, const std::string& cert, const std::string& body,
                 unsigned want = 202, std::string* answer = nullptr) {
  auto r = gw.client(cert)->request("POST", "/v1/messages", body);
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == want);
  if (answer != nullptr) *answer = r->body;
  return json_field(r->body, "messageId");
}

std::string state(const Gateway& gw, const std::string& cert, const std::string& id) {
  auto r = gw.client(cert)->request("GET", "/v1/messages/" + id);
  REQUIRE(r);
  return json_field(r->body, "state");
}

}  // namespace

TEST_CASE("documents cross the ferry both ways and arrive once") {
  Halves h;
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));
  CHECK(json_field(ferry_status(*h.inner), "up") == "true");
  CHECK(json_field(ferry_status(*h.outer), "peerGateway") == "sluice-inner");

  std::set<std::string> in_ids;
  for (int n = 0; n < 20; ++n) {
    in_ids.insert(post(*h.outer, "sender-440604-approval",
                       sample("case.accept/valid-1.xml", "fi-" + std::to_string(n))));
  }
  auto got = h.inside.wait_for(in_ids.size());
  CHECK(got.distinct == in_ids.size());
  CHECK(got.duplicates == 0);
  for (const auto& id : h.inside.arrivals()) CHECK(in_ids.contains(id));  // MessageId kept
  CHECK(h.outside.stats().requests == 0);
  // At the outer, each is delivered once the inner has it in its synced store.
  for (const auto& id : in_ids) {
    CHECK(eventually([&] { return state(*h.outer, "sender-440604-approval", id) == "delivered"; }));
  }

  std::set<std::string> out_ids;
  for (int n = 0; n < 10; ++n) {
    auto doc = with_receiver(
        sample("case.conclude/valid-1.xml", "fo-" + std::to_string(n), "440600/supervision"),
        "440604", "approval");
    out_ids.insert(post(*h.inner, "sender-440600-supervision", doc));
  }
  auto out = h.outside.wait_for(out_ids.size());
  CHECK(out.distinct == out_ids.size());
  CHECK(out.duplicates == 0);
  for (const auto& id : h.outside.arrivals()) CHECK(out_ids.contains(id));
  CHECK(h.inside.stats().distinct == in_ids.size());

  auto status = ferry_status(*h.outer);
  CHECK(json_field(status, "stored") == "20");
  CHECK(json_field(status, "received") == "10");
  CHECK(h.outer->metric("sluice_ferry_up") == 1u);
  // Each half's audit trail has every crossing it received.
  auto count = [](const std::string& body, const std::string& what) {
    std::size_t n = 0;
    for (auto at = body.find(what); at != std::string::npos; at = body.find(what, at + 1)) ++n;
    return n;
  };
  auto inner_audit = h.inner->auditor()->request("GET", "/admin/v1/audit?n=200");
  auto outer_audit = h.outer->auditor()->request("GET", "/admin/v1/audit?n=200");
  REQUIRE(inner_audit);
  REQUIRE(outer_audit);
  CHECK(count(inner_audit->body, "\"ferry.received\"") == in_ids.size());
  CHECK(count(outer_audit->body, "\"ferry.received\"") == out_ids.size());
  CHECK(inner_audit->body.find("inbound case.accept from 440604/approval") != std::string::npos);
  // ...and every crossing it sent, once the other half answered it stored.
  CHECK(count(outer_audit->body, "\"ferry.sent\"") == in_ids.size());
  CHECK(count(inner_audit->body, "\"ferry.sent\"") == out_ids.size());
  CHECK(outer_audit->body.find("inbound stored by gateway/sluice-inner") != std::string::npos);
  // SIGTERM stops each half cleanly, the link with it.
  CHECK(h.inner->stop() == 0);
  CHECK(h.outer->stop() == 0);
}

TEST_CASE("a document the inner half refuses is dead at the outer with the inner's reason") {
  // The inner half lets 440604/approval send case.accept only: case.fee passes the outer and
  // is refused inside.
  std::string senders =
      "[[sender]]\nid = \"440604/approval\"\ndoc_types = [\"case.accept\"]\nreceivers = "
      "[\"*\"]\n";
  Halves h({.inner_senders = senders});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));
  auto refused = post(*h.outer, "sender-440604-approval", sample("case.fee/valid-1.xml", "rf-1"));
  auto fine = post(*h.outer, "sender-440604-approval", sample("case.accept/valid-1.xml", "rf-2"));
  CHECK(h.inside.wait_for(1).distinct == 1);
  REQUIRE(eventually([&] { return state(*h.outer, "sender-440604-approval", refused) == "dead"; }));
  CHECK(state(*h.outer, "sender-440604-approval", fine) == "delivered");
  auto seen = h.outer->client("sender-440604-approval")->request("GET", "/v1/messages/" + refused);
  REQUIRE(seen);
  CHECK(seen->body.find("\"crossing\":{\"via\":\"inner\",\"state\":\"refused\",\"reason\":"
                        "\"auth.forbidden") != std::string::npos);
  auto dead = h.outer->admin()->request("GET", "/admin/v1/dead-letters?destination=inner");
  REQUIRE(dead);
  INFO(dead->body);
  CHECK(dead->body.find(refused) != std::string::npos);
  CHECK(dead->body.find("auth.forbidden: sender 440604/approval may not send DocType case.fee") !=
        std::string::npos);
  // The inner half wrote the stop into its own audit trail.
  auto audit = h.inner->auditor()->request("GET", "/admin/v1/audit?n=50");
  REQUIRE(audit);
  INFO(audit->body);
  CHECK(audit->body.find("ferry.refused") != std::string::npos);
  CHECK(audit->body.find(refused) != std::string::npos);
  CHECK(json_field(ferry_status(*h.outer), "refused") == "1");
  // The sending half's trail says the other half refused it, and why.
  auto sent = h.outer->auditor()->request("GET", "/admin/v1/audit?n=50");
  REQUIRE(sent);
  INFO(sent->body);
  auto at = sent->body.find("\"ferry.refused-by-peer\"");
  REQUIRE(at != std::string::npos);
  CHECK(sent->body.find(refused, at > 200 ? at - 200 : 0) != std::string::npos);
  CHECK(sent->body.find("inbound auth.forbidden") != std::string::npos);
}

TEST_CASE("a damaged or wrong-way document from an admitted key is refused and audited",
          "[security]") {
  // The real inner holds a key the outer does not admit; a hand-made end holds the admitted
  // one and writes its own frames.
  Halves h({.inner_key = "stranger"});
  auto admitted = ferry::load_secret_key(h.keys.file("inner.key"));
  REQUIRE(admitted);
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::curve_serverkey, *ferry::load_public_key(h.keys.file("outer.pub")));
  dealer.set(zmq::sockopt::curve_publickey, admitted->public_key);
  dealer.set(zmq::sockopt::curve_secretkey, admitted->secret_key);
  dealer.set(zmq::sockopt::rcvtimeo, 5000);
  dealer.connect(h.outer->ferry_endpoint());
  const std::string hello = ferry::encode_hello({91, 10, 1 << 20, "forger"});
  dealer.send(zmq::buffer(hello));
  std::vector<zmq::message_t> parts;
  REQUIRE(zmq::recv_multipart(dealer, std::back_inserter(parts)));

  const std::string payload = sample("case.conclude/valid-1.xml", "dm-1");
  ferry::DocHeader damaged;
  damaged.direction = ferry::Direction::kOutbound;
  damaged.epoch = 91;
  damaged.seq = 1;
  damaged.message_id = "0190b2a4-0000-7000-8000-0000000000d1";
  damaged.length = static_cast<std::uint32_t>(payload.size());
  damaged.sha256 = sluice::sha256(payload + " ");
  ferry::DocHeader wrong_way = damaged;
  wrong_way.seq = 2;
  wrong_way.message_id = "0190b2a4-0000-7000-8000-0000000000d2";
  wrong_way.direction = ferry::Direction::kInbound;  // the outer takes documents crossing out
  wrong_way.sha256 = sluice::sha256(payload);
  const std::string control = ferry::encode_docs({damaged, wrong_way});
  std::array<zmq::const_buffer, 3> msg{zmq::buffer(control), zmq::buffer(payload),
                                       zmq::buffer(payload)};
  REQUIRE(zmq::send_multipart(dealer, msg));
  std::map<std::uint64_t, ferry::ResultEntry> fates;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fates.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    parts.clear();
    if (!zmq::recv_multipart(dealer, std::back_inserter(parts))) break;
    auto c = ferry::decode_control(parts.at(0).to_string_view());
    REQUIRE(c);
    if (c->type != ferry::FrameType::kResult) continue;
    for (const auto& e : c->results.entries) fates[e.seq] = e;
  }
  REQUIRE(fates.size() == 2);
  CHECK(fates[1].code == "ferry.digest-mismatch");
  CHECK(fates[2].code == "ferry.wrong-direction");
  // Both refusals are in the outer's audit trail with the document's id and the reason; and
  // nothing of them reached the outer's store or its receivers.
  std::string body;
  CHECK(eventually([&] {
    auto audit = h.outer->auditor()->request("GET", "/admin/v1/audit?n=50");
    body = audit ? audit->body : "";
    return body.find(damaged.message_id) != std::string::npos &&
           body.find(wrong_way.message_id) != std::string::npos;
  }));
  INFO(body);
  CHECK(body.find("outbound ferry.digest-mismatch") != std::string::npos);
  CHECK(body.find("inbound ferry.wrong-direction") != std::string::npos);
  auto r = h.outer->admin()->request("GET", "/admin/v1/messages/" + damaged.message_id);
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(h.outside.stats().requests == 0);
}

TEST_CASE("an inner half with a key the outer does not admit gets no link and nothing crosses",
          "[security]") {
  Halves h({.inner_key = "stranger"});
  REQUIRE(
      eventually([&] { return std::stoi(json_field(ferry_status(*h.outer), "zapDenied")) >= 1; }));
  CHECK(json_field(ferry_status(*h.outer), "up") == "false");
  CHECK(eventually([&] {
    return ferry_status(*h.inner).find("refused this half's CURVE key") != std::string::npos;
  }));
  // Posted to the outer meanwhile: kept, not lost, not delivered, no attempt spent.
  auto id = post(*h.outer, "sender-440604-approval", sample("case.accept/valid-1.xml", "zk-1"));
  // Once a worker has tried it and found the link down:
  std::string body;
  REQUIRE(eventually([&] {
    auto r = h.outer->admin()->request("GET", "/admin/v1/messages/" + id);
    body = r ? r->body : "";
    return body.find("the ferry link is down") != std::string::npos;
  }));
  auto s = state(*h.outer, "sender-440604-approval", id);
  CHECK((s == "queued" || s == "delivering"));
  INFO(body);
  CHECK(body.find("\"attempts\":0") != std::string::npos);  // the link's outage costs none
  // The sender sees it waiting on this side of the gate.
  auto mine = h.outer->client("sender-440604-approval")->request("GET", "/v1/messages/" + id);
  REQUIRE(mine);
  CHECK(mine->body.find("\"crossing\":{\"via\":\"inner\",\"state\":\"queued\"") !=
        std::string::npos);
  CHECK(h.inside.stats().requests == 0);
}

TEST_CASE("the gate stops what may not cross on the half that finds it and loses nothing",
          "[security]") {
  // The outer lets public documents cross inbound; the inner does not.
  Halves h({.outer_gate = "[[gate.inbound]]\ndoc_types = [\"case.*\", \"public.*\"]\n"
                          "[[gate.outbound]]\ndoc_types = [\"case.*\", \"public.*\"]\n"});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));

  SECTION("a DocType no inbound rule names is stopped at the outer before it crosses") {
    std::string answer;
    post(*h.outer, "sender-440604-approval", sample("stats.report/valid-1.xml", "g-1"), 403,
         &answer);
    CHECK(json_field(answer, "code") == "gate.doc-type");
    CHECK(answer.find("stopped at the gate (inbound, before crossing)") != std::string::npos);
    CHECK_FALSE(json_field(answer, "quarantineId").empty());
  }

  SECTION("a DocType the inner's rules refuse is stopped on arrival and dead at the outer") {
    auto id = post(*h.outer, "sender-440604-approval",
                   sample("public.complaint/valid-1.xml", "g-2", "440604/approval"));
    REQUIRE(eventually([&] { return state(*h.outer, "sender-440604-approval", id) == "dead"; }));
    auto dead = h.outer->admin()->request("GET", "/admin/v1/dead-letters?destination=inner");
    REQUIRE(dead);
    INFO(dead->body);
    CHECK(dead->body.find("gate.doc-type: stopped at the gate (inbound, on arrival)") !=
          std::string::npos);
    // Kept in the inner's quarantine with the direction it came from.
    auto q = h.inner->admin()->request("GET", "/admin/v1/quarantine?limit=10");
    REQUIRE(q);
    INFO(q->body);
    CHECK(q->body.find("ferry:inbound") != std::string::npos);
    CHECK(q->body.find("gate.doc-type") != std::string::npos);
    CHECK(h.inside.stats().requests == 0);
  }

  SECTION("personal data outside an allowed field does not leave the internal network") {
    auto doc = with_receiver(sample("public.complaint/valid-1.xml", "g-3", "440600/supervision"),
                             "440604", "approval");
    std::string answer;
    post(*h.inner, "sender-440600-supervision", doc, 403, &answer);
    CHECK(json_field(answer, "code") == "gate.personal-data");
    CHECK(answer.find("Mobile") != std::string::npos);
    CHECK(answer.find("13703011234") == std::string::npos);  // masked, even here
    CHECK_FALSE(json_field(answer, "quarantineId").empty());
    auto audit = h.inner->auditor()->request("GET", "/admin/v1/audit?n=20");
    REQUIRE(audit);
    CHECK(audit->body.find("gate.personal-data") != std::string::npos);
    CHECK(h.outside.stats().requests == 0);
  }
}

TEST_CASE("an allowed field may carry personal data outbound") {
  // Both halves apply the outbound rules: the inner before it sends, the outer on arrival.
  const std::string gate =
      "[[gate.inbound]]\ndoc_types = [\"case.*\"]\n"
      "[[gate.outbound]]\ndoc_types = [\"public.*\"]\npersonal_data_fields = [\"Mobile\"]\n";
  Halves h({.outer_gate = gate, .inner_gate = gate});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.inner), "up") == "true"; }));
  auto doc = with_receiver(sample("public.complaint/valid-1.xml", "g-4", "440600/supervision"),
                           "440604", "approval");
  auto id = post(*h.inner, "sender-440600-supervision", doc);
  CHECK(h.outside.wait_for(1).distinct == 1);
  CHECK(h.outside.arrivals().at(0) == id);
}

namespace {

// A case.accept (inbound) or case.conclude (outbound) of case `k`: events of one case must
// arrive in the order they were posted.
std::string case_doc(bool inbound, int k, const std::string& smid) {
  std::string doc =
      inbound ? sample("case.accept/valid-1.xml", smid)
              : with_receiver(sample("case.conclude/valid-1.xml", smid, "440600/supervision"),
                              "440604", "approval");
  const std::string tag = "<case:CaseId>";
  auto at = doc.find(tag);
  REQUIRE(at != std::string::npos);
  at += tag.size();
  std::string id = doc.substr(at, 20);
  id.replace(16, 4, std::to_string(1000 + k));
  return doc.replace(at, 20, id);
}

// Checks that within each case the sink saw the messages in the order they were accepted.
void check_order(const std::vector<std::string>& arrivals,
                 const std::map<std::string, int>& case_of,
                 const std::map<int, std::vector<std::string>>& posted) {
  std::map<int, std::vector<std::string>> seen;
  for (const auto& id : arrivals) {
    auto it = case_of.find(id);
    if (it != case_of.end()) seen[it->second].push_back(id);
  }
  for (const auto& [k, ids] : posted) {
    INFO("case " << k);
    CHECK(seen[k] == ids);
  }
}

}  // namespace

TEST_CASE("either half killed at random moments under load loses nothing and doubles nothing") {
  PortHold port;
  const std::string listen = "tcp://127.0.0.1:" + std::to_string(port.port());
  port.release();
  Halves h({.ferry_listen = listen});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));
  std::mt19937 rng(20261202);
  std::map<std::string, int> case_of;
  std::map<int, std::vector<std::string>> in_posted, out_posted;
  std::set<std::string> in_acked, out_acked;
  int n = 0;
  // 20 in the suite; SLUICE_FERRY_KILL_CYCLES=200 for the longer run (tests/README.md).
  const char* env_cycles = std::getenv("SLUICE_FERRY_KILL_CYCLES");
  const int cycles = env_cycles != nullptr ? std::atoi(env_cycles) : 20;
  int outer_kills = 0, inner_kills = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    // Load both ways, then a kill while it crosses.
    for (int i = 0; i < 8; ++i, ++n) {
      const int k = n % 4;
      auto in =
          post(*h.outer, "sender-440604-approval", case_doc(true, k, "kc-in-" + std::to_string(n)));
      in_acked.insert(in);
      in_posted[k].push_back(in);
      case_of[in] = k;
      if (i % 2 == 0) {
        auto out = post(*h.inner, "sender-440600-supervision",
                        case_doc(false, k, "kc-out-" + std::to_string(n)));
        out_acked.insert(out);
        out_posted[k].push_back(out);
        case_of[out] = k;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    const bool outer = rng() % 2 == 0;
    (outer ? outer_kills : inner_kills)++;
    Gateway& victim = outer ? *h.outer : *h.inner;
    victim.kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
    victim.restart();
  }
  auto in = h.inside.wait_for(in_acked.size(), std::chrono::seconds(60));
  auto out = h.outside.wait_for(out_acked.size(), std::chrono::seconds(60));
  INFO("inbound: " << in.distinct << " of " << in_acked.size() << " (" << in.duplicates
                   << " resent after a crash, taken once by the sink); outbound: " << out.distinct
                   << " of " << out_acked.size() << " (" << out.duplicates << ")");
  std::cout << "ferry kill cycles: " << cycles << " (outer killed " << outer_kills << ", inner "
            << inner_kills << "); inbound " << in.distinct << " of " << in_acked.size()
            << " acknowledged delivered, " << in.duplicates << " resent to the sink; outbound "
            << out.distinct << " of " << out_acked.size() << ", " << out.duplicates << " resent\n";
  if (in.distinct != in_acked.size()) {
    // Say where a missing one is, on both halves.
    std::set<std::string> arrived;
    for (const auto& id : h.inside.arrivals()) arrived.insert(id);
    for (const auto& id : in_acked) {
      if (arrived.contains(id)) continue;
      auto o = h.outer->admin()->request("GET", "/admin/v1/messages/" + id);
      auto i = h.inner->admin()->request("GET", "/admin/v1/messages/" + id);
      UNSCOPED_INFO("missing " << id << "\nouter: " << (o ? o->body : "?")
                               << "\ninner: " << (i ? i->body : "?"));
      break;
    }
    UNSCOPED_INFO("outer ferry: " << ferry_status(*h.outer)
                                  << "\ninner ferry: " << ferry_status(*h.inner));
  }
  CHECK(in.distinct == in_acked.size());
  CHECK(out.distinct == out_acked.size());
  for (const auto& id : h.inside.arrivals()) CHECK(in_acked.contains(id));
  for (const auto& id : h.outside.arrivals()) CHECK(out_acked.contains(id));
  check_order(h.inside.arrivals(), case_of, in_posted);
  check_order(h.outside.arrivals(), case_of, out_posted);
  // Nothing is left behind on either half: every delivery ended delivered.
  for (const auto& id : in_acked) {
    CHECK(eventually([&] { return state(*h.outer, "sender-440604-approval", id) == "delivered"; }));
  }
}

namespace {

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// The inner half's own network namespace, joined to this one by a veth pair: this side is
// the outer network (10.213.N.1), the other end the inner half's only interface (10.213.N.2).
struct InnerNamespace {
  std::string ns, veth_outer, veth_inner, outer_ip, inner_ip;
  InnerNamespace() {
    const int n = static_cast<int>(::getpid() % 250) + 1;
    ns = "sluice-in-" + std::to_string(::getpid());
    veth_outer = "svo" + std::to_string(::getpid());
    veth_inner = "svi" + std::to_string(::getpid());
    outer_ip = "10.213." + std::to_string(n) + ".1";
    inner_ip = "10.213." + std::to_string(n) + ".2";
    INFO("network namespaces need root (CI runs as root)");
    REQUIRE(sh("ip netns add " + ns) == 0);
    REQUIRE(sh("ip link add " + veth_outer + " type veth peer name " + veth_inner) == 0);
    REQUIRE(sh("ip link set " + veth_inner + " netns " + ns) == 0);
    REQUIRE(sh("ip addr add " + outer_ip + "/30 dev " + veth_outer) == 0);
    REQUIRE(sh("ip link set " + veth_outer + " up") == 0);
    REQUIRE(sh(exec() + "ip addr add " + inner_ip + "/30 dev " + veth_inner) == 0);
    REQUIRE(sh(exec() + "ip link set " + veth_inner + " up") == 0);
    REQUIRE(sh(exec() + "ip link set lo up") == 0);
  }
  ~InnerNamespace() {
    sh("ip netns del " + ns);
    sh("ip link del " + veth_outer);
  }
  std::string exec() const { return "ip netns exec " + ns + " "; }
};

// Every TCP port of `ip` that accepts a connection from here, 1..65535.
std::vector<int> open_ports(const std::string& ip) {
  std::vector<int> open;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  for (int base = 1; base <= 65535; base += 512) {
    std::vector<pollfd> fds;
    std::vector<int> ports;
    for (int port = base; port < base + 512 && port <= 65535; ++port) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) FAIL("socket() failed");
      a.sin_port = htons(static_cast<std::uint16_t>(port));
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        open.push_back(port);
        ::close(fd);
        continue;
      }
      fds.push_back({fd, POLLOUT, 0});
      ports.push_back(port);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::size_t left = fds.size();
    while (left > 0 && std::chrono::steady_clock::now() < deadline) {
      if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) open.push_back(ports[i]);
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --left;
      }
    }
    for (auto& f : fds) {
      if (f.fd >= 0) ::close(f.fd);  // no answer at all: filtered, not open
    }
  }
  return open;
}

}  // namespace

TEST_CASE("the inner half in its own network namespace opens no port toward the outer network",
          "[security]") {
  InnerNamespace net;
  Keys keys;
  PortHold port;
  const std::string listen = "tcp://" + net.outer_ip + ":" + std::to_string(port.port());
  port.release();
  tools::SinkOptions so;
  so.address = net.outer_ip;  // an internal receiver, reached by the inner half
  SinkRunner inside(so);

  GatewayOptions o;
  o.gateway_id = "sluice-outer";
  o.gateway_extra = "role = \"outer\"\n";
  o.destinations = ferry_destination("inner");
  o.routes = "[[route]]\nreceiver = \"440600/*\"\ndestinations = [\"inner\"]\n";
  o.extra = "[ferry]\nlisten = \"" + listen + "\"\nsecret_key = \"" + keys.file("outer.key") +
            "\"\nallowed_keys = [\"" + keys.file("inner.pub") +
            "\"]\npeer = \"gateway/sluice-inner\"\n" + kGate;
  Gateway outer(o, "outer");

  GatewayOptions i;
  i.gateway_id = "sluice-inner";
  i.signing_cert = "gateway-inner";
  i.gateway_extra = "role = \"inner\"\n";
  i.wrapper = {"/usr/sbin/ip", "netns", "exec", net.ns};
  i.destinations = "[[destination]]\nname = \"sink\"\nurl = \"http://" + net.outer_ip + ":" +
                   std::to_string(inside.port()) + "/inbox\"\n";
  i.routes = "[[route]]\nreceiver = \"440600/*\"\ndestinations = [\"sink\"]\n";
  i.extra = "[ferry]\nconnect = \"" + listen + "\"\nsecret_key = \"" + keys.file("inner.key") +
            "\"\nserver_key = \"" + keys.file("outer.pub") +
            "\"\npeer = \"gateway/sluice-outer\"\n" + kGate;
  Gateway inner(i, "inner");  // its listeners are on its own loopback, inside the namespace

  REQUIRE(eventually([&] { return json_field(ferry_status(outer), "up") == "true"; }));
  std::atomic<bool> done{false};
  std::set<std::string> ids;
  std::thread load([&] {
    for (int n = 0; n < 40 && !done; ++n) {
      auto r = outer.client("sender-440604-approval")
                   ->request("POST", "/v1/messages",
                             sample("case.accept/valid-1.xml", "ns-" + std::to_string(n)));
      if (r && r->status == 202) ids.insert(json_field(r->body, "messageId"));
    }
  });
  // While documents cross: nothing on the inner's address answers from the outer side...
  auto inner_open = open_ports(net.inner_ip);
  // ...while the same scan finds the outer's ferry port, so it does see open ports.
  auto outer_open = open_ports(net.outer_ip);
  done = true;
  load.join();
  CHECK(inner_open.empty());
  CHECK(std::find(outer_open.begin(), outer_open.end(), port.port()) != outer_open.end());
  REQUIRE_FALSE(ids.empty());
  CHECK(inside.wait_for(ids.size()).distinct == ids.size());
}

TEST_CASE("a document whose gateway signature is not the configured peer's is dead at the sender",
          "[security]") {
  // The inner expects documents signed by another gateway than the one at the other end.
  Halves h({.inner_peer = "gateway/sluice-other"});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));
  auto id = post(*h.outer, "sender-440604-approval", sample("case.accept/valid-1.xml", "sp-1"));
  REQUIRE(eventually([&] { return state(*h.outer, "sender-440604-approval", id) == "dead"; }));
  auto dead = h.outer->admin()->request("GET", "/admin/v1/dead-letters?destination=inner");
  REQUIRE(dead);
  INFO(dead->body);
  CHECK(dead->body.find("signature.") != std::string::npos);
  CHECK(h.inside.stats().requests == 0);
}

// RssAnon of a process in kB, from /proc (0 when it cannot be read).
std::uint64_t rss_anon_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("RssAnon:")) return std::strtoull(line.c_str() + 8, nullptr, 10);
  }
  return 0;
}

TEST_CASE("a link cut under load holds the backlog on disk and drains it in order") {
  // 120 documents of 3 cases in the suite; SLUICE_FERRY_CUT_S=300 keeps the link cut for that
  // long while a sender posts without pause (64 cases, a store large enough for it all), and
  // samples the outer's memory (tests/README.md).
  const char* env_cut = std::getenv("SLUICE_FERRY_CUT_S");
  const int cut_s = env_cut != nullptr ? std::atoi(env_cut) : 0;
  const int cases = cut_s > 0 ? 64 : 3;
  PortHold port;
  const std::string listen = "tcp://127.0.0.1:" + std::to_string(port.port());
  port.release();
  Halves h({.ferry_listen = listen,
            .store_extra = cut_s > 0 ? "map_size_mb = 8192\nmax_queued_mb = 6144\n"
                                       "max_queued_messages = 2000000\n"
                                     : ""});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));
  h.inner->kill();
  // The outer notices (stall timer) and says why.
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "false"; }));
  CHECK_FALSE(json_field(ferry_status(*h.outer), "lastError").empty());
  std::map<std::string, int> case_of;
  std::map<int, std::vector<std::string>> posted;
  std::set<std::string> ids;
  auto client = h.outer->client("sender-440604-approval");
  const std::uint64_t rss_before = rss_anon_kb(h.outer->pid());
  std::uint64_t rss_max = rss_before;
  auto cut_until = std::chrono::steady_clock::now() + std::chrono::seconds(cut_s);
  auto next_sample = std::chrono::steady_clock::now();
  for (int n = 0; n < 120 || std::chrono::steady_clock::now() < cut_until; ++n) {
    auto r = client->request("POST", "/v1/messages",
                             case_doc(true, n % cases, "cut-" + std::to_string(n)));
    REQUIRE(r);
    REQUIRE(r->status == 202);
    auto id = json_field(r->body, "messageId");
    ids.insert(id);
    posted[n % cases].push_back(id);
    case_of[id] = n % cases;
    if (std::chrono::steady_clock::now() >= next_sample) {
      rss_max = std::max(rss_max, rss_anon_kb(h.outer->pid()));
      next_sample += std::chrono::seconds(5);
    }
  }
  rss_max = std::max(rss_max, rss_anon_kb(h.outer->pid()));
  auto status = ferry_status(*h.outer);
  INFO(status);
  CHECK(status.find("\"backlog\":{\"inner\":" + std::to_string(ids.size()) + "}") !=
        std::string::npos);
  CHECK(json_field(status, "inFlight") == "0");
  // Held on disk, not in memory: the outer's anonymous memory grew by less than 64 MB
  // whatever the backlog (2 KB documents: 300 s of posting is ~100 MB of them).
  CHECK(rss_max - rss_before < 64 * 1024);
  auto restarted = std::chrono::steady_clock::now();
  h.inner->restart();
  auto got = h.inside.wait_for(ids.size(), std::chrono::seconds(60 + ids.size() / 200));
  const double drain_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - restarted).count();
  CHECK(got.distinct == ids.size());
  CHECK(got.duplicates == 0);
  check_order(h.inside.arrivals(), case_of, posted);
  CHECK(eventually([&] {
    return ferry_status(*h.outer).find("\"backlog\":{\"inner\":0}") != std::string::npos;
  }));
  std::cout << "ferry cut: " << cut_s << " s, " << ids.size() << " documents held, outer RssAnon "
            << rss_before / 1024 << " MB before, at most " << rss_max / 1024
            << " MB during the cut; drained in " << drain_s << " s, " << got.distinct
            << " delivered once, " << got.duplicates << " duplicates\n";
}

TEST_CASE(
    "the sender sees a crossed document's state on the other half and its receipt from there") {
  PortHold port;
  const std::string listen = "tcp://127.0.0.1:" + std::to_string(port.port());
  port.release();
  Halves h({.ferry_listen = listen});
  REQUIRE(eventually([&] { return json_field(ferry_status(*h.outer), "up") == "true"; }));
  auto id = post(*h.outer, "sender-440604-approval", sample("case.accept/valid-1.xml", "rc-1"));
  REQUIRE(h.inside.wait_for(1).distinct == 1);
  auto client = h.outer->client("sender-440604-approval");
  // GET on the outer: delivered to the ferry here, and what the inner half knows.
  std::string body;
  REQUIRE(eventually([&] {
    auto r = client->request("GET", "/v1/messages/" + id);
    body = r ? r->body : "";
    return body.find("\"inner\":{") != std::string::npos &&
           body.find("\"destination\":\"sink\"") != std::string::npos &&
           body.find("\"inner\":{\"messageId\":\"" + id) != std::string::npos &&
           body.find("\"state\":\"peer-delivered\"") != std::string::npos;
  }));
  INFO(body);
  CHECK(body.find("\"destination\":\"inner\"") != std::string::npos);
  CHECK(body.find("\"crossing\":{\"via\":\"inner\",\"state\":\"peer-delivered\","
                  "\"peerReceivedAt\":") != std::string::npos);
  // The delivery receipt is the inner half's: its receivers are there.
  std::string receipt;
  REQUIRE(eventually([&] {
    auto r = client->request("GET", "/v1/messages/" + id + "/receipt?status=delivered");
    if (!r || r->status != 200) return false;
    receipt = r->body;
    return true;
  }));
  auto trust = trust::TrustStore::load(dev_pki() / "ca-bundle.pem", {dev_pki() / "crl-chain.pem"});
  REQUIRE(trust);
  trust::DocumentVerifier verifier(*trust);
  auto v = verifier.verify_bytes(receipt, {});
  REQUIRE(v);
  CHECK(v->signer.system == "sluice-inner");
  CHECK(receipt.find("delivered") != std::string::npos);
  // Another sender cannot see it, here or through the other half.
  auto other = h.outer->client("sender-440605-tax")->request("GET", "/v1/messages/" + id);
  REQUIRE(other);
  CHECK(other->status == 404);
  // With the inner half down, the outer says so instead of guessing.
  h.inner->kill();
  auto down = client->request("GET", "/v1/messages/" + id);
  REQUIRE(down);
  CHECK(down->status == 200);
  CHECK(down->body.find("\"inner\":{\"unavailable\":") != std::string::npos);
  // What this half knows for itself stays: the inner half has it in its store.
  CHECK(down->body.find("\"state\":\"peer-received\"") != std::string::npos);
  auto no_receipt = client->request("GET", "/v1/messages/" + id + "/receipt?status=delivered");
  REQUIRE(no_receipt);
  CHECK(no_receipt->status == 503);
}
