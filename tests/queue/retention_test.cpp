// Retention: what the store keeps of a message after its deliveries ended (status, receipt,
// idempotency; not the payload), the bounds on that history, and that history never makes
// the store refuse input while its queue is empty.
#include <lmdb.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/random.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

using namespace sluice;
using namespace sluice::queue;

namespace {

// A signed standard document and its signed receipt, as deploy/demo.sh stores them.
constexpr std::size_t kPayloadBytes = 3100;
const std::string kReceipt(2255, 'r');

struct RetentionFixture {
  test::TempDir dir{"retention"};
  ManualClock clock;
  SeededRandom random{7};
  int next_smid = 0;

  Options options() {
    Options o;
    o.path = dir / "store";
    o.map_size_bytes = 16ull << 20;
    o.max_queued_bytes = 1ull << 30;  // the map, not the queue bound, is what fills here
    o.clock = &clock;
    o.random = &random;
    o.retry.max_attempts = 3;
    o.retention_ms = 3'600'000;
    o.extension_tables = {"notes"};
    return o;
  }

  std::unique_ptr<Store> open(Options o) {
    auto s = Store::open(std::move(o));
    REQUIRE(s);
    return std::move(*s);
  }

  NewMessage message(std::string smid, std::vector<std::string> dests = {"sink"}) {
    NewMessage m;
    m.message_id = new_uuid_v7(random, clock.now_ms());
    m.sender = "440604/approval";
    m.sender_message_id = std::move(smid);
    m.doc_type = "case.accept";
    m.destinations = std::move(dests);
    m.payload = std::string(kPayloadBytes, 'p');
    m.attributes["digest"] = std::string(44, 'd');
    m.attributes["receipt"] = kReceipt;
    return m;
  }
  NewMessage message() { return message("smid-" + std::to_string(next_smid++)); }

  // Appends `messages` in one group commit; returns each outcome in order.
  std::vector<Result<Appended>> append_all(Store& store, std::vector<NewMessage> messages) {
    std::vector<std::future<Result<Appended>>> futures;
    for (auto& m : messages) {
      auto p = std::make_shared<std::promise<Result<Appended>>>();
      futures.push_back(p->get_future());
      store.append_async(std::move(m), [p](Result<Appended> r) { p->set_value(std::move(r)); });
    }
    std::vector<Result<Appended>> out;
    for (auto& f : futures) {
      out.push_back(f.get());
    }
    return out;
  }

  // Leases and acks everything due at `dest`, one millisecond after the previous round.
  std::size_t deliver_all(Store& store, const std::string& dest = "sink") {
    clock.advance_ms(1);
    auto leases = store.lease(dest, 100'000);
    std::vector<std::future<Result<void>>> futures;
    for (const auto& l : leases) {
      auto p = std::make_shared<std::promise<Result<void>>>();
      futures.push_back(p->get_future());
      store.ack(l, [p](Result<void> r) { p->set_value(std::move(r)); });
    }
    for (auto& f : futures) {
      REQUIRE(f.get());
    }
    return leases.size();
  }

  Result<void> settle(Store& store, const Lease& l, bool ok, bool permanent = false) {
    std::promise<Result<void>> done;
    auto cb = [&](Result<void> r) { done.set_value(std::move(r)); };
    if (ok) {
      store.ack(l, cb);
    } else {
      store.nack(l, "HTTP 400", permanent, cb);
    }
    return done.get_future().get();
  }

  struct Sent {
    std::string id;
    std::string smid;
  };
  // Sends `rounds` × `per_round` messages through append and delivery; every append must
  // succeed. Returns them in delivery order.
  std::vector<Sent> send_and_deliver(Store& store, int rounds, int per_round) {
    const std::uint64_t held = store.stats().queued_messages;  // waiting elsewhere, kept
    std::vector<Sent> sent;
    for (int r = 0; r < rounds; ++r) {
      std::vector<NewMessage> batch;
      for (int i = 0; i < per_round; ++i) {
        batch.push_back(message());
      }
      std::vector<std::string> smids;
      for (const auto& m : batch) smids.push_back(m.sender_message_id);
      auto results = append_all(store, std::move(batch));
      for (std::size_t i = 0; i < results.size(); ++i) {
        INFO("round " << r << " message " << i << " with " << store.stats().queued_messages
                      << " queued: " << (results[i] ? "" : results[i].error().describe()));
        REQUIRE(results[i]);
        REQUIRE_FALSE(results[i]->duplicate);
        sent.push_back({results[i]->message_id, smids[i]});
      }
      REQUIRE(deliver_all(store) == results.size());
      REQUIRE(store.stats().queued_messages == held);
    }
    return sent;
  }
};

bool kept(Store& store, const std::string& id) { return store.status(id).has_value(); }

}  // namespace

TEST_CASE_METHOD(RetentionFixture,
                 "delivered history never makes the store refuse input while its queue is empty") {
  // 16 MiB hold about 1,900 such messages pending and 3,700 delivered; 5,000 go through.
  auto store = open(options());
  auto sent = send_and_deliver(*store, 50, 100);
  CHECK(store->stats().queued_messages == 0);
  CHECK_FALSE(store->stats().read_only);
  CHECK_FALSE(kept(*store, sent.front().id));
  CHECK(kept(*store, sent.back().id));
}

TEST_CASE_METHOD(RetentionFixture,
                 "the oldest delivered messages are purged first with their idempotency entries") {
  auto store = open(options());
  constexpr int kRounds = 50, kPerRound = 100;
  auto sent = send_and_deliver(*store, kRounds, kPerRound);
  // What is kept is exactly the most recently delivered: the rounds (each delivered in one
  // millisecond) before some round are gone, those after it are all kept.
  std::vector<int> kept_in_round(kRounds, 0);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    kept_in_round[i / kPerRound] += kept(*store, sent[i].id) ? 1 : 0;
  }
  int boundary = 0;
  while (boundary < kRounds && kept_in_round[boundary] == 0) {
    ++boundary;
  }
  INFO("first round with a message kept: " << boundary);
  REQUIRE(boundary > 0);
  REQUIRE(boundary < kRounds - 1);
  for (int r = boundary + 1; r < kRounds; ++r) {
    CHECK(kept_in_round[r] == kPerRound);
  }
  std::size_t first_kept = boundary * kPerRound;
  while (kept(*store, sent[first_kept].id) == false) {
    ++first_kept;
  }
  // A purged message's idempotency entry went in the same transaction: its resend is new.
  const auto& purged = sent[first_kept - 1];
  CHECK(store->status(purged.id).error().is(Errc::kNotFound));
  CHECK(store->find_duplicate("440604/approval", purged.smid) == std::nullopt);
  auto resent = store->append(message(purged.smid));
  REQUIRE(resent);
  CHECK_FALSE(resent->duplicate);
  CHECK(resent->message_id != purged.id);
  // A kept one still answers: status with its receipt, and its resend is a duplicate.
  const auto& last = sent.back();
  auto st = store->status(last.id);
  REQUIRE(st);
  CHECK(st->state_kind == MessageState::kDelivered);
  CHECK(st->attributes.at("receipt") == kReceipt);
  CHECK(store->find_duplicate("440604/approval", last.smid) == last.id);
  auto again = store->append(message(last.smid));
  REQUIRE(again);
  CHECK(again->duplicate);
  CHECK(again->message_id == last.id);
}

TEST_CASE_METHOD(RetentionFixture,
                 "producers and a delivery worker at once never see the map full of history") {
  auto o = options();
  o.max_queued_messages = 300;  // the queue stays small; history fills the map
  auto store = open(o);
  constexpr int kProducers = 3, kPerProducer = 2000;
  std::atomic<int> stored{0}, queue_full{0};
  std::atomic<bool> producing{true};
  std::mutex failure_mutex;
  std::string failure;
  std::thread worker([&] {
    while (producing.load() || store->stats().queued_messages > 0) {
      auto leases = store->lease("sink", 64);
      if (leases.empty()) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      std::vector<std::future<Result<void>>> acked;
      for (const auto& l : leases) {
        auto p = std::make_shared<std::promise<Result<void>>>();
        acked.push_back(p->get_future());
        store->ack(l, [p](Result<void> r) { p->set_value(std::move(r)); });
      }
      for (auto& f : acked) {
        f.get();
      }
      store->status(leases.back().message_id);  // a reader now and then, as operators are
    }
  });
  std::vector<std::thread> producers;
  std::mutex random_mutex;
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      // Windows of appends in flight, as the HTTP workers make them; what the queue bound
      // refuses is sent again.
      std::vector<NewMessage> waiting;
      for (int i = 0; i < kPerProducer; ++i) {
        std::lock_guard lock(random_mutex);
        waiting.push_back(message("p" + std::to_string(t) + "-" + std::to_string(i)));
      }
      while (!waiting.empty()) {
        std::size_t n = std::min<std::size_t>(waiting.size(), 25);
        std::vector<NewMessage> window(std::make_move_iterator(waiting.end() - n),
                                       std::make_move_iterator(waiting.end()));
        waiting.resize(waiting.size() - n);
        auto copies = window;
        auto results = append_all(*store, std::move(window));
        for (std::size_t i = 0; i < results.size(); ++i) {
          if (results[i]) {
            stored.fetch_add(1);
          } else if (results[i].error().is(Errc::kQueueFull)) {
            queue_full.fetch_add(1);
            waiting.push_back(std::move(copies[i]));
          } else {
            std::lock_guard lock(failure_mutex);
            failure = results[i].error().describe();
            return;
          }
        }
        if (queue_full.load() > 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      }
    });
  }
  for (auto& p : producers) p.join();
  producing = false;
  worker.join();
  INFO("refused: " << failure);
  CHECK(failure.empty());
  CHECK(stored.load() == kProducers * kPerProducer);
  auto stats = store->stats();
  CHECK(stats.queued_messages == 0);
  CHECK(stats.history_purged > 0);  // 6,000 delivered messages do not fit 16 MiB
  CHECK_FALSE(stats.read_only);
}

TEST_CASE_METHOD(RetentionFixture, "pending and dead messages are never purged to make room") {
  auto store = open(options());
  // Held back: a destination nobody leases from, and one dead letter.
  std::vector<NewMessage> held;
  for (int i = 0; i < 200; ++i) {
    held.push_back(message("held-" + std::to_string(i), {"held"}));
  }
  std::vector<std::string> held_ids;
  for (auto& r : append_all(*store, std::move(held))) {
    REQUIRE(r);
    held_ids.push_back(r->message_id);
  }
  std::string dead = append_all(*store, {message("dead-1", {"flaky"})}).at(0).value().message_id;
  REQUIRE(settle(*store, store->lease("flaky", 1).at(0), false, true));

  send_and_deliver(*store, 50, 100);

  CHECK(store->stats().queued_messages == held_ids.size());
  for (const auto& id : held_ids) {
    auto st = store->status(id);
    REQUIRE(st);
    CHECK(st->state_kind == MessageState::kQueued);
  }
  auto leases = store->lease("held", held_ids.size());
  CHECK(leases.size() == held_ids.size());
  for (const auto& l : leases) {
    CHECK(l.payload.size() == kPayloadBytes);
  }
  auto dead_st = store->status(dead);
  REQUIRE(dead_st);
  CHECK(dead_st->state_kind == MessageState::kDead);
  REQUIRE(store->redrive(dead, "flaky"));
  auto again = store->lease("flaky", 1);
  REQUIRE(again.size() == 1);
  CHECK(again[0].payload.size() == kPayloadBytes);
}

TEST_CASE_METHOD(
    RetentionFixture,
    "a delivered message keeps its status and receipt and idempotency but not its payload") {
  auto store = open(options());
  auto m = message("one", {"a", "b"});
  std::string id = append_all(*store, {m}).at(0).value().message_id;
  REQUIRE(settle(*store, store->lease("a", 1).at(0), true));
  // One destination still waits for it: the payload stays.
  CHECK(store->payload(id).value() == m.payload);
  REQUIRE(settle(*store, store->lease("b", 1).at(0), true));
  auto payload = store->payload(id);
  REQUIRE_FALSE(payload);
  CHECK(payload.error().is(Errc::kNotFound));
  auto st = store->status(id);
  REQUIRE(st);
  CHECK(st->state_kind == MessageState::kDelivered);
  CHECK(st->payload_bytes == kPayloadBytes);
  CHECK(st->attributes.at("receipt") == kReceipt);
  CHECK(store->find_duplicate("440604/approval", "one") == id);
  // A message with a dead delivery keeps its payload: it may be redriven.
  std::string partial = append_all(*store, {message("two", {"a", "b"})}).at(0).value().message_id;
  REQUIRE(settle(*store, store->lease("a", 1).at(0), true));
  REQUIRE(settle(*store, store->lease("b", 1).at(0), false, true));
  CHECK(store->payload(partial));
}

TEST_CASE_METHOD(RetentionFixture, "the history bounds keep the most recently delivered messages") {
  auto o = options();
  o.retention_max_messages = 3;
  auto store = open(o);
  std::vector<std::string> ids;
  for (const char* smid : {"a", "b", "c", "d"}) {
    ids.push_back(append_all(*store, {message(smid)}).at(0).value().message_id);
  }
  // Delivered out of order: b, a, d, c. History is ordered by delivery, not by arrival.
  auto leases = store->lease("sink", 4);
  REQUIRE(leases.size() == 4);
  for (int i : {1, 0, 3, 2}) {
    clock.advance_ms(1);
    REQUIRE(settle(*store, leases[i], true));
  }
  CHECK_FALSE(kept(*store, ids[1]));
  CHECK(kept(*store, ids[0]));
  CHECK(kept(*store, ids[2]));
  CHECK(kept(*store, ids[3]));
  CHECK(store->stats().history_messages == 3);
  CHECK(store->find_duplicate("440604/approval", "b") == std::nullopt);

  // A byte bound: history's map bytes stay under it whatever passes through.
  o.path = dir / "bytes";
  o.retention_max_messages = 1'000'000;
  o.retention_max_bytes = 64u << 10;
  auto bytes_store = open(o);
  send_and_deliver(*bytes_store, 5, 20);
  auto stats = bytes_store->stats();
  CHECK(stats.history_bytes <= o.retention_max_bytes);
  CHECK(stats.history_messages > 5);
  CHECK(stats.history_messages < 20);
}

TEST_CASE_METHOD(RetentionFixture, "the history bounds hold across a restart and a lower bound") {
  auto o = options();
  o.retention_max_messages = 10;
  std::vector<Sent> sent;
  {
    auto store = open(o);
    sent = send_and_deliver(*store, 15, 1);  // one a millisecond: a strict order
    CHECK(store->stats().history_messages == 10);
  }
  o.retention_max_messages = 4;
  auto store = open(o);
  CHECK(store->stats().history_messages == 10);  // counted again from what is stored
  auto purged = store->purge_expired_history();
  REQUIRE(purged);
  CHECK(*purged == 6);
  CHECK(store->stats().history_messages == 4);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    CHECK(kept(*store, sent[i].id) == (i >= sent.size() - 4));
  }
}

TEST_CASE_METHOD(RetentionFixture, "a full store says whether waiting for deliveries helps") {
  auto o = options();
  o.map_size_bytes = 1u << 20;
  SECTION("the map is full of undelivered messages: they drain") {
    auto store = open(o);
    Error last;
    for (int i = 0; i < 400; ++i) {
      auto r = store->append(message());
      if (!r) {
        last = r.error();
        break;
      }
    }
    REQUIRE(last.is(Errc::kStoreFull));
    CHECK(last.message.find("undelivered") != std::string::npos);
    CHECK(store->stats().queued_messages > 0);
  }
  SECTION("nothing pending and no history: waiting will not help") {
    auto store = open(o);
    // Fill the map with extension-table rows, smaller ones into what big ones leave.
    int key = 0;
    for (std::size_t size : {100'000, 10'000, 1'000, 100}) {
      const std::string row(size, 'n');
      while (store->write([&](TableWriter& w) { return w.put("notes", std::to_string(key), row); },
                          row.size())) {
        ++key;
      }
    }
    auto r = store->append(message());
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.error().is(Errc::kStoreFull));
    CHECK_FALSE(r.error().is(Errc::kQueueFull));
    CHECK(r.error().is(Errc::kUnavailable));
    CHECK(r.error().message.find("map_size_mb") != std::string::npos);
  }
}

TEST_CASE_METHOD(RetentionFixture,
                 "a format 1 store is upgraded: history indexed and payloads dropped") {
  auto o = options();
  std::vector<std::string> delivered;
  std::string pending;
  {
    auto store = open(o);
    for (int i = 0; i < 3; ++i) {
      delivered.push_back(append_all(*store, {message()}).at(0).value().message_id);
    }
    REQUIRE(deliver_all(*store) == 3);
    pending = append_all(*store, {message()}).at(0).value().message_id;
  }
  // Make it look as a format 1 store left it: no history table entries, payloads still there.
  {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 64);
    mdb_env_set_mapsize(env, o.map_size_bytes);
    REQUIRE(mdb_env_open(env, o.path.c_str(), MDB_NOTLS, 0600) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi meta, hist, body;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    REQUIRE(mdb_dbi_open(txn, "hist", 0, &hist) == 0);
    REQUIRE(mdb_dbi_open(txn, "body", 0, &body) == 0);
    REQUIRE(mdb_drop(txn, hist, 1) == 0);
    MDB_val k{6, const_cast<char*>("format")}, v{1, const_cast<char*>("1")};
    REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
    const std::string payload(kPayloadBytes, 'p');
    for (const auto& id : delivered) {
      auto raw = uuid_bytes(id);
      MDB_val bk{raw.size(), raw.data()}, bv{payload.size(), const_cast<char*>(payload.data())};
      REQUIRE(mdb_put(txn, body, &bk, &bv, 0) == 0);
    }
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  auto store = open(o);
  CHECK(store->stats().history_messages == 3);
  for (const auto& id : delivered) {
    CHECK(store->status(id).value().state_kind == MessageState::kDelivered);
    CHECK(store->payload(id).error().is(Errc::kNotFound));
  }
  auto l = store->lease("sink", 10);
  REQUIRE(l.size() == 1);
  CHECK(l[0].message_id == pending);
  CHECK(l[0].payload.size() == kPayloadBytes);
}

TEST_CASE("the capacity of a configuration is estimated from LMDB's page rules") {
  Options o;
  o.map_size_bytes = 2048ull << 20;
  o.max_queued_bytes = 512ull << 20;
  o.max_queued_messages = 1'000'000;
  o.retention_max_bytes = 512ull << 20;
  o.retention_max_messages = 1'000'000;
  o.retention_ms = 168LL * 3600 * 1000;
  auto c = estimate_capacity(o, MessageShape{.payload_bytes = 2048, .record_bytes = 2530});
  // 2 KiB of payload and a 2.5 KB record each take a 4 KiB overflow page.
  CHECK(c.pending_message_bytes > 8192);
  CHECK(c.pending_message_bytes < 8192 + 512);
  REQUIRE(c.delivered_message_bytes > 4096);
  CHECK(c.delivered_message_bytes < 4096 + 384);
  CHECK(c.queue_messages == 262'144);
  CHECK(c.history_messages == (512ull << 20) / c.delivered_message_bytes);
  std::string line = describe(c);
  INFO(line);
  CHECK(line.find("map 2048 MiB") != std::string::npos);
  CHECK(line.find("history bound 512 MiB") != std::string::npos);
}
