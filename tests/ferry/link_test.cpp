// The ferry's frames and link, in one process: two real libzmq sockets over loopback TCP with
// CURVE and the ZAP handler, as the two halves use them.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "ferry/frame.h"
#include "ferry/keys.h"
#include "ferry/link.h"
#include "tests/support/temp_dir.h"

#include <zmq.hpp>
#include <zmq_addon.hpp>

using namespace sluice;
using namespace sluice::ferry;

namespace {

template <class Condition>
bool eventually(Condition c, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!c()) {
    if (std::chrono::steady_clock::now() > deadline) return c();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

KeyPair keys() {
  auto k = generate_key_pair();
  REQUIRE(k);
  return *k;
}

// Collects what one end received and answers it with `verdict` (or holds the replies).
struct Receiver {
  std::mutex mutex;
  std::vector<Received> got;
  std::vector<Reply> held;
  bool hold = false;
  Verdict verdict;
  std::atomic<int> in_progress_max{0};

  ReceiveHandler handler() {
    return [this](Received r, Reply reply) {
      std::lock_guard lock(mutex);
      got.push_back(std::move(r));
      if (hold) {
        held.push_back(std::move(reply));
        in_progress_max = std::max<int>(in_progress_max, static_cast<int>(held.size()));
      } else {
        reply(verdict);
      }
    };
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return got.size();
  }
  void release() {
    std::vector<Reply> replies;
    {
      std::lock_guard lock(mutex);
      replies.swap(held);
    }
    for (auto& r : replies) r(verdict);
  }
};

// Results of documents sent, by MessageId.
struct Outcomes {
  std::mutex mutex;
  std::map<std::string, Sent> by_id;
  SendDone done(const std::string& id) {
    return [this, id](Sent s) {
      std::lock_guard lock(mutex);
      by_id[id] = std::move(s);
    };
  }
  std::optional<Sent> get(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = by_id.find(id);
    if (it == by_id.end()) return std::nullopt;
    return it->second;
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return by_id.size();
  }
};

struct Pair {
  KeyPair outer_keys = keys();
  KeyPair inner_keys = keys();
  LinkConfig outer_config(std::vector<std::string> allowed = {}) {
    LinkConfig c;
    c.side = Side::kOuter;
    c.endpoint = "tcp://127.0.0.1:*";
    c.public_key = outer_keys.public_key;
    c.secret_key = outer_keys.secret_key;
    c.allowed_keys = allowed.empty() ? std::vector<std::string>{inner_keys.public_key} : allowed;
    c.gateway_id = "test-outer";
    c.heartbeat_ms = 100;
    c.stall_ms = 1'000;
    return c;
  }
  LinkConfig inner_config(const std::string& endpoint) {
    LinkConfig c;
    c.side = Side::kInner;
    c.endpoint = endpoint;
    c.public_key = inner_keys.public_key;
    c.secret_key = inner_keys.secret_key;
    c.server_key = outer_keys.public_key;
    c.gateway_id = "test-inner";
    c.heartbeat_ms = 100;
    c.stall_ms = 1'000;
    c.reconnect_min_ms = 50;
    c.reconnect_max_ms = 200;
    return c;
  }
};

std::unique_ptr<Link> start(LinkConfig c, Direction sends, ReceiveHandler h) {
  auto l = Link::start(std::move(c), sends, std::move(h));
  REQUIRE(l);
  return std::move(*l);
}

}  // namespace

TEST_CASE("ferry frames round-trip and a damaged frame is refused naming what is wrong") {
  DocHeader h;
  h.direction = Direction::kOutbound;
  h.epoch = 7;
  h.seq = 42;
  h.message_id = "0190b2a4-0000-7000-8000-000000000001";
  std::string payload = "<Envelope/>";
  h.length = static_cast<std::uint32_t>(payload.size());
  h.sha256 = sha256(payload);
  auto docs = encode_docs({h, h});
  auto c = decode_control(docs);
  REQUIRE(c);
  REQUIRE(c->type == FrameType::kDocs);
  REQUIRE(c->docs.size() == 2);
  CHECK(c->docs[1].message_id == h.message_id);
  CHECK(c->docs[1].seq == 42);
  CHECK(c->docs[1].direction == Direction::kOutbound);
  CHECK(check_payload(c->docs[0], payload));
  auto tampered = check_payload(c->docs[0], "<Envelope/ >");
  REQUIRE_FALSE(tampered);
  CHECK(tampered.error().message.find("length") == std::string::npos);
  auto swapped = check_payload(c->docs[0], "<Envelopf/>");
  REQUIRE_FALSE(swapped);
  CHECK(swapped.error().message.find("SHA-256 does not match") != std::string::npos);

  Results r{9, {{1, Fate::kStored, "", ""}, {2, Fate::kRefused, "gate.doc-type", "not allowed"}}};
  auto rc = decode_control(encode_results(r));
  REQUIRE(rc);
  REQUIRE(rc->results.entries.size() == 2);
  CHECK(rc->results.entries[1].fate == Fate::kRefused);
  CHECK(rc->results.entries[1].code == "gate.doc-type");

  auto hello = decode_control(encode_hello({5, 10, 1000, "gw"}));
  REQUIRE(hello);
  CHECK(hello->hello.gateway_id == "gw");
  CHECK(hello->hello.credit_docs == 10);

  auto q = decode_control(encode_query({12, "0190b2a4-0000-7000-8000-000000000001"}));
  REQUIRE(q);
  CHECK(q->type == FrameType::kQuery);
  CHECK(q->query.id == 12);
  std::string big_receipt(70'000, 'r');  // longer than a u16 string
  auto a = decode_control(encode_answer({12, true, R"({"state":"delivered"})", big_receipt}));
  REQUIRE(a);
  CHECK(a->answer.found);
  CHECK(a->answer.status_json == R"({"state":"delivered"})");
  CHECK(a->answer.receipt.size() == 70'000);

  auto cut = decode_control(docs.substr(0, docs.size() - 3));
  REQUIRE_FALSE(cut);
  CHECK(cut.error().message.find("ends early") != std::string::npos);
  auto extra = decode_control(docs + "x");
  REQUIRE_FALSE(extra);
  CHECK(extra.error().message.find("bytes after") != std::string::npos);
  auto magic = decode_control("XYZ\x01\x02");
  REQUIRE_FALSE(magic);
  CHECK(magic.error().message.find("SLF") != std::string::npos);
  std::string v2 = docs;
  v2[3] = 2;
  auto version = decode_control(v2);
  REQUIRE_FALSE(version);
  CHECK(version.error().message.find("protocol version 2") != std::string::npos);
}

TEST_CASE("ferry keys: the secret key file is 0600, a readable one is refused") {
  test::TempDir dir("ferry-keys");
  auto k = keys();
  REQUIRE(write_key_pair(k, dir.path(), "inner"));
  auto loaded = load_secret_key(dir.path() / "inner.key");
  REQUIRE(loaded);
  CHECK(loaded->public_key == k.public_key);
  auto pub = load_public_key(dir.path() / "inner.pub");
  REQUIRE(pub);
  CHECK(*pub == k.public_key);
  CHECK_FALSE(write_key_pair(k, dir.path(), "inner"));  // never overwritten
  std::filesystem::permissions(dir.path() / "inner.key", std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  auto readable = load_secret_key(dir.path() / "inner.key");
  REQUIRE_FALSE(readable);
  CHECK(readable.error().message.find("chmod 600") != std::string::npos);
}

TEST_CASE("documents cross the link both ways and each is answered once") {
  Pair p;
  Receiver at_outer, at_inner;
  auto outer = start(p.outer_config(), Direction::kInbound, at_outer.handler());
  auto inner =
      start(p.inner_config(outer->bound_endpoint()), Direction::kOutbound, at_inner.handler());
  REQUIRE(eventually([&] { return outer->status().up && inner->status().up; }));
  CHECK(outer->status().peer_key == p.inner_keys.public_key);
  CHECK(outer->status().peer_gateway == "test-inner");

  Outcomes from_outer, from_inner;
  for (int i = 0; i < 50; ++i) {
    outer->send("in-" + std::to_string(i), "<in n='" + std::to_string(i) + "'/>",
                from_outer.done("in-" + std::to_string(i)));
    inner->send("out-" + std::to_string(i), "<out/>", from_inner.done("out-" + std::to_string(i)));
  }
  REQUIRE(eventually([&] { return from_outer.count() == 50 && from_inner.count() == 50; }));
  for (int i = 0; i < 50; ++i) {
    CHECK(from_outer.get("in-" + std::to_string(i))->kind == Sent::Kind::kStored);
    CHECK(from_inner.get("out-" + std::to_string(i))->kind == Sent::Kind::kStored);
  }
  CHECK(at_inner.count() == 50);
  CHECK(at_outer.count() == 50);
  {
    std::lock_guard lock(at_inner.mutex);
    CHECK(at_inner.got[7].payload == "<in n='7'/>");
    CHECK(at_inner.got[7].direction == Direction::kInbound);
  }
}

TEST_CASE("a refusal crosses back with its code and reason") {
  Pair p;
  Receiver at_outer, at_inner;
  at_inner.verdict = {Fate::kRefused, "gate.doc-type", "stats.report may not cross inbound"};
  // The sender's observer sees the answer too (sluiced audits it on the sending half).
  std::atomic<int> answered{0};
  LinkObserver observer;
  observer.answered = [&](Direction d, const std::string& id, const Sent& s) {
    if (d == Direction::kInbound && id == "m1" && s.kind == Sent::Kind::kRefused &&
        s.code == "gate.doc-type") {
      answered++;
    }
  };
  auto started =
      Link::start(p.outer_config(), Direction::kInbound, at_outer.handler(), {}, observer);
  REQUIRE(started);
  auto outer = std::move(*started);
  auto inner =
      start(p.inner_config(outer->bound_endpoint()), Direction::kOutbound, at_inner.handler());
  REQUIRE(eventually([&] { return outer->status().up; }));
  Outcomes out;
  outer->send("m1", "<x/>", out.done("m1"));
  REQUIRE(eventually([&] { return out.count() == 1; }));
  CHECK(out.get("m1")->kind == Sent::Kind::kRefused);
  CHECK(out.get("m1")->code == "gate.doc-type");
  CHECK(out.get("m1")->reason == "stats.report may not cross inbound");
  CHECK(answered.load() == 1);
}

TEST_CASE("an inner half whose CURVE key is not admitted never gets a link", "[security]") {
  Pair p;
  auto stranger = keys();
  Receiver at_outer, at_inner;
  auto outer =
      start(p.outer_config({stranger.public_key}), Direction::kInbound, at_outer.handler());
  auto inner =
      start(p.inner_config(outer->bound_endpoint()), Direction::kOutbound, at_inner.handler());
  REQUIRE(eventually([&] { return outer->status().zap_denied_total >= 2; }));
  CHECK_FALSE(outer->status().up);
  CHECK_FALSE(inner->status().up);
  CHECK(eventually([&] {
    return inner->status().last_error.find("refused this half's CURVE key") != std::string::npos;
  }));
  Outcomes out;
  inner->send("m1", "<x/>", out.done("m1"));
  REQUIRE(out.count() == 1);
  CHECK(out.get("m1")->kind == Sent::Kind::kDown);
  CHECK(at_outer.count() == 0);
}

TEST_CASE("an inner half that pins the wrong server key never gets a link", "[security]") {
  Pair p;
  Receiver at_outer, at_inner;
  auto outer = start(p.outer_config(), Direction::kInbound, at_outer.handler());
  auto config = p.inner_config(outer->bound_endpoint());
  config.server_key = keys().public_key;  // an impostor's key
  auto inner = start(config, Direction::kOutbound, at_inner.handler());
  // The handshake fails, and the inner says why.
  REQUIRE(eventually(
      [&] { return inner->status().last_error.find("CURVE handshake") != std::string::npos; }));
  CHECK_FALSE(outer->status().up);
  CHECK_FALSE(inner->status().up);
  CHECK_FALSE(inner->status().last_error.empty());
}

TEST_CASE("the receiver's credit bounds what it holds unanswered") {
  Pair p;
  Receiver at_outer, at_inner;
  at_inner.hold = true;
  auto oc = p.outer_config();
  auto outer = start(oc, Direction::kInbound, at_outer.handler());
  auto ic = p.inner_config(outer->bound_endpoint());
  ic.credit_docs = 3;
  auto inner = start(ic, Direction::kOutbound, at_inner.handler());
  REQUIRE(eventually([&] { return outer->status().up && outer->status().credit_docs == 3; }));
  Outcomes out;
  for (int i = 0; i < 20; ++i) outer->send(std::to_string(i), "<x/>", out.done(std::to_string(i)));
  // The sender holds the rest back: 3 in flight, 17 waiting for credit.
  REQUIRE(eventually([&] {
    auto st = outer->status();
    return at_inner.count() == 3 && st.in_flight == 3 && st.waiting == 17 &&
           inner->status().received_in_progress == 3;
  }));
  CHECK(at_inner.count() == 3);  // no more than granted
  REQUIRE(eventually([&] {
    at_inner.release();
    return out.count() == 20;
  }));
  CHECK(at_inner.count() == 20);
  CHECK(at_inner.in_progress_max <= 3);
  for (int i = 0; i < 20; ++i) CHECK(out.get(std::to_string(i))->kind == Sent::Kind::kStored);
}

TEST_CASE("a link whose peer goes away says so, and comes back when the peer does") {
  Pair p;
  Receiver at_outer, at_inner;
  auto oc = p.outer_config();
  auto outer = start(oc, Direction::kInbound, at_outer.handler());
  const std::string endpoint = outer->bound_endpoint();
  auto inner = start(p.inner_config(endpoint), Direction::kOutbound, at_inner.handler());
  REQUIRE(eventually([&] { return inner->status().up; }));
  at_outer.hold = true;
  Outcomes out;
  inner->send("held", "<x/>", out.done("held"));
  REQUIRE(eventually([&] { return at_outer.count() == 1; }));
  outer->stop();
  outer.reset();
  // The answer is lost with the outer: the document is reported down, to be sent again.
  REQUIRE(eventually([&] { return out.count() == 1; }));
  CHECK(out.get("held")->kind == Sent::Kind::kDown);
  CHECK_FALSE(inner->status().up);
  CHECK_FALSE(inner->status().last_error.empty());
  CHECK(inner->status().link_downs_total == 1);

  Receiver again;
  oc.endpoint = endpoint;
  auto outer2 = start(oc, Direction::kInbound, again.handler());
  REQUIRE(eventually([&] { return inner->status().up && outer2->status().up; }));
  inner->send("after", "<x/>", out.done("after"));
  REQUIRE(eventually([&] { return out.count() == 2; }));
  CHECK(out.get("after")->kind == Sent::Kind::kStored);
}

TEST_CASE("a payload whose SHA-256 does not match its header is refused and never handed on",
          "[security]") {
  Pair p;
  Receiver at_outer;
  // The link's own refusals reach its observer (sluiced audits them), with the direction the
  // header claimed.
  std::mutex seen_mutex;
  std::map<std::string, std::string> seen;  // message id -> "direction code"
  LinkObserver observer;
  observer.refused_here = [&](Direction d, const std::string& id, const std::string& code,
                              const std::string&) {
    std::lock_guard lock(seen_mutex);
    seen[id] = std::string(to_string(d)) + " " + code;
  };
  auto started =
      Link::start(p.outer_config(), Direction::kInbound, at_outer.handler(), {}, observer);
  REQUIRE(started);
  auto outer = std::move(*started);
  // A hand-made inner end: the admitted key, but frames written here.
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::curve_serverkey, p.outer_keys.public_key);
  dealer.set(zmq::sockopt::curve_publickey, p.inner_keys.public_key);
  dealer.set(zmq::sockopt::curve_secretkey, p.inner_keys.secret_key);
  dealer.set(zmq::sockopt::rcvtimeo, 5000);
  dealer.connect(outer->bound_endpoint());
  const std::string hello_frame = encode_hello({77, 10, 1 << 20, "forger"});
  dealer.send(zmq::buffer(hello_frame));
  std::vector<zmq::message_t> hello;
  REQUIRE(zmq::recv_multipart(dealer, std::back_inserter(hello)));
  auto h = decode_control(hello.at(0).to_string_view());
  REQUIRE(h);
  REQUIRE(h->type == FrameType::kHello);

  DocHeader good;
  good.direction = Direction::kOutbound;
  good.epoch = 77;
  good.seq = 1;
  good.message_id = "0190b2a4-0000-7000-8000-00000000000a";
  const std::string payload = "<Envelope>signed</Envelope>";
  good.length = static_cast<std::uint32_t>(payload.size());
  good.sha256 = sha256(payload);
  DocHeader bad = good;
  bad.seq = 2;
  bad.message_id = "0190b2a4-0000-7000-8000-00000000000b";
  bad.sha256 = sha256("<Envelope>other</Envelope>");
  DocHeader wrong_way = good;
  wrong_way.seq = 3;
  wrong_way.message_id = "0190b2a4-0000-7000-8000-00000000000c";
  wrong_way.direction = Direction::kInbound;  // the outer only takes documents crossing out
  const std::string control = encode_docs({good, bad, wrong_way});
  std::array<zmq::const_buffer, 4> msg{zmq::buffer(control), zmq::buffer(payload),
                                       zmq::buffer(payload), zmq::buffer(payload)};
  REQUIRE(zmq::send_multipart(dealer, msg));
  std::map<std::uint64_t, ResultEntry> fates;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fates.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(dealer, std::back_inserter(parts))) break;
    auto c = decode_control(parts.at(0).to_string_view());
    REQUIRE(c);
    if (c->type != FrameType::kResult) continue;
    CHECK(c->results.epoch == 77);
    for (const auto& e : c->results.entries) fates[e.seq] = e;
  }
  REQUIRE(fates.size() == 3);
  CHECK(fates[1].fate == Fate::kStored);
  CHECK(fates[2].fate == Fate::kRefused);
  CHECK(fates[2].code == "ferry.digest-mismatch");
  CHECK(fates[3].fate == Fate::kRefused);
  CHECK(fates[3].code == "ferry.wrong-direction");
  REQUIRE(at_outer.count() == 1);  // only the good one reached the pipeline
  // The counters are published after the answers go out.
  CHECK(eventually([&] { return outer->status().received_refused_total == 2; }));
  std::lock_guard lock(seen_mutex);
  REQUIRE(seen.size() == 2);
  CHECK(seen[bad.message_id] == "outbound ferry.digest-mismatch");
  CHECK(seen[wrong_way.message_id] == "inbound ferry.wrong-direction");
}
