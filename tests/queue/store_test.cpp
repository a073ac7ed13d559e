#include <catch2/catch.hpp>

#include <cerrno>
#include <future>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/random.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

using namespace sluice;
using namespace sluice::queue;

namespace {

struct Fixture {
  test::TempDir dir{"queue"};
  ManualClock clock;
  SeededRandom random{42};

  Options options() {
    Options o;
    o.path = dir / "store";
    o.map_size_bytes = 64ull << 20;
    o.clock = &clock;
    o.random = &random;
    o.retry.max_attempts = 3;
    o.retry.initial_backoff_ms = 1000;
    o.retry.max_backoff_ms = 10'000;
    o.retry.multiplier = 2.0;
    o.retry.jitter = 0.5;
    o.lease_timeout_ms = 60'000;
    o.retention_ms = 3'600'000;
    o.extension_tables = {"notes"};
    return o;
  }

  std::unique_ptr<Store> open(Options o) {
    auto s = Store::open(std::move(o));
    REQUIRE(s);
    return std::move(*s);
  }
  std::unique_ptr<Store> open() { return open(options()); }

  NewMessage message(std::string smid, std::string key = "",
                     std::vector<std::string> dests = {"sink"}, std::size_t size = 64) {
    NewMessage m;
    m.message_id = new_uuid(random);
    m.sender = "440604/approval";
    m.sender_message_id = std::move(smid);
    m.doc_type = "case.accept";
    m.ordering_key = std::move(key);
    m.destinations = std::move(dests);
    m.payload = std::string(size, 'p');
    return m;
  }
};

std::string append_ok(Store& store, NewMessage m) {
  auto r = store.append(std::move(m));
  REQUIRE(r);
  CHECK_FALSE(r->duplicate);
  return r->message_id;
}

}  // namespace

TEST_CASE_METHOD(Fixture, "an appended message is leased, acked and reported delivered") {
  auto store = open();
  auto m = message("s-1");
  m.attributes["receiver"] = "440600/supervision";
  std::string id = append_ok(*store, m);

  auto st = store->status(id);
  REQUIRE(st);
  CHECK(st->state == "queued");
  CHECK(st->attributes.at("receiver") == "440600/supervision");

  auto leases = store->lease("sink", 10);
  REQUIRE(leases.size() == 1);
  CHECK(leases[0].message_id == id);
  CHECK(leases[0].attempt == 1);
  CHECK(leases[0].payload == m.payload);
  CHECK(leases[0].doc_type == "case.accept");

  std::promise<Result<void>> acked;
  store->ack(leases[0], [&](Result<void> r) { acked.set_value(r); });
  REQUIRE(acked.get_future().get());
  st = store->status(id);
  REQUIRE(st);
  CHECK(st->state == "delivered");
  REQUIRE(st->deliveries.size() == 1);
  CHECK(st->deliveries[0].attempts == 1);
  CHECK(store->lease("sink", 10).empty());
}

TEST_CASE_METHOD(Fixture, "concurrent appends are group-committed into fewer transactions") {
  auto o = options();
  o.group_commit_linger = std::chrono::microseconds(2000);
  auto store = open(o);
  constexpr int kThreads = 8, kPerThread = 200;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store->append(message("t" + std::to_string(t) + "-" + std::to_string(i)));
        if (r && !r->duplicate) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok.load() == kThreads * kPerThread);
  auto stats = store->stats();
  CHECK(stats.queued_messages == kThreads * kPerThread);
  INFO("commits=" << stats.commits << " ops=" << stats.committed_ops);
  CHECK(stats.commits < stats.committed_ops / 2);
}

TEST_CASE_METHOD(Fixture, "a resend with the same sender message id returns the original id") {
  auto store = open();
  std::string id = append_ok(*store, message("dup-1"));
  auto again = store->append(message("dup-1"));
  REQUIRE(again);
  CHECK(again->duplicate);
  CHECK(again->message_id == id);
  CHECK(store->stats().queued_messages == 1);
  CHECK(store->find_duplicate("440604/approval", "dup-1") == id);
  // Another sender may use the same id of its own.
  auto other = message("dup-1");
  other.sender = "440605/tax";
  CHECK(append_ok(*store, other) != id);
}

TEST_CASE_METHOD(Fixture, "duplicates inside one group commit are still detected") {
  auto store = open();
  std::vector<std::future<Result<Appended>>> results;
  std::vector<std::shared_ptr<std::promise<Result<Appended>>>> promises;
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<Result<Appended>>>();
    results.push_back(p->get_future());
    store->append_async(message("same"), [p](Result<Appended> r) { p->set_value(std::move(r)); });
    promises.push_back(p);
  }
  std::set<std::string> ids;
  int fresh = 0;
  for (auto& f : results) {
    auto r = f.get();
    REQUIRE(r);
    ids.insert(r->message_id);
    fresh += r->duplicate ? 0 : 1;
  }
  CHECK(ids.size() == 1);
  CHECK(fresh == 1);
}

TEST_CASE_METHOD(Fixture, "a failed delivery backs off with jitter and is retried") {
  auto store = open();
  append_ok(*store, message("r-1"));
  auto l = store->lease("sink", 1);
  REQUIRE(l.size() == 1);
  std::promise<Result<void>> nacked;
  store->nack(l[0], "connection refused", false, [&](Result<void> r) { nacked.set_value(r); });
  REQUIRE(nacked.get_future().get());

  auto due = store->next_due_ms("sink");
  REQUIRE(due);
  std::int64_t delay = *due - clock.now_ms();
  CHECK(delay >= 500);  // initial 1000 ms, jitter up to 50 %
  CHECK(delay <= 1000);
  CHECK(store->lease("sink", 1).empty());
  clock.advance_ms(delay);
  auto again = store->lease("sink", 1);
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempt == 2);
  auto st = store->status(again[0].message_id);
  REQUIRE(st);
  CHECK(st->state == "delivering");
  CHECK(st->deliveries[0].last_error == "connection refused");
}

TEST_CASE("backoff grows exponentially, is capped, and jitter only shortens it") {
  RetryPolicy p{.max_attempts = 10,
                .initial_backoff_ms = 100,
                .max_backoff_ms = 1000,
                .multiplier = 3.0,
                .jitter = 0.25};
  CHECK(backoff_delay_ms(p, 1, 0.0) == 100);
  CHECK(backoff_delay_ms(p, 2, 0.0) == 300);
  CHECK(backoff_delay_ms(p, 3, 0.0) == 900);
  CHECK(backoff_delay_ms(p, 4, 0.0) == 1000);
  CHECK(backoff_delay_ms(p, 2, 0.999) >= 225);
  CHECK(backoff_delay_ms(p, 2, 0.999) < 300);
}

TEST_CASE_METHOD(Fixture, "a delivery is dead after the configured attempts and can be redriven") {
  auto store = open();
  std::string id = append_ok(*store, message("d-1"));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto l = store->lease("sink", 1);
    REQUIRE(l.size() == 1);
    CHECK(l[0].attempt == static_cast<std::uint32_t>(attempt));
    std::promise<Result<void>> done;
    store->nack(l[0], "HTTP 503", false, [&](Result<void> r) { done.set_value(r); });
    REQUIRE(done.get_future().get());
    clock.advance_ms(20'000);
  }
  CHECK(store->lease("sink", 1).empty());
  auto st = store->status(id);
  REQUIRE(st);
  CHECK(st->state == "dead");
  CHECK(st->deliveries[0].attempts == 3);

  auto dead = store->dead_letters("sink", 10);
  REQUIRE(dead);
  REQUIRE(dead->size() == 1);
  CHECK((*dead)[0].message_id == id);

  REQUIRE(store->redrive(id, "sink"));
  auto l = store->lease("sink", 1);
  REQUIRE(l.size() == 1);
  CHECK(l[0].attempt == 1);
  CHECK(store->dead_letters("sink", 10)->empty());
}

TEST_CASE_METHOD(Fixture, "a permanent failure ends the delivery at once") {
  auto store = open();
  std::string id = append_ok(*store, message("p-1"));
  auto l = store->lease("sink", 1);
  REQUIRE(l.size() == 1);
  std::promise<Result<void>> done;
  store->nack(l[0], "HTTP 400: rejected by receiver", true,
              [&](Result<void> r) { done.set_value(r); });
  REQUIRE(done.get_future().get());
  auto st = store->status(id);
  REQUIRE(st);
  CHECK(st->state == "dead");
  CHECK(st->deliveries[0].attempts == 1);
}

TEST_CASE_METHOD(Fixture, "a message past its expiry is expired, not delivered") {
  auto store = open();
  auto m = message("e-1");
  m.expires_ms = clock.now_ms() + 5000;
  std::string id = append_ok(*store, m);
  clock.advance_ms(5001);
  CHECK(store->lease("sink", 1).empty());
  // The expiry is written by the writer; wait for it through a synchronous write.
  REQUIRE(store->write([](TableWriter&) -> Result<void> { return {}; }, 1));
  auto st = store->status(id);
  REQUIRE(st);
  CHECK(st->state == "expired");
}

TEST_CASE_METHOD(Fixture, "a retry that would pass the expiry expires the message") {
  auto store = open();
  auto m = message("e-2");
  m.expires_ms = clock.now_ms() + 1500;
  std::string id = append_ok(*store, m);
  auto l = store->lease("sink", 1);
  REQUIRE(l.size() == 1);
  clock.advance_ms(1600);
  std::promise<Result<void>> done;
  store->nack(l[0], "timeout", false, [&](Result<void> r) { done.set_value(r); });
  REQUIRE(done.get_future().get());
  CHECK(store->status(id)->state == "expired");
}

TEST_CASE_METHOD(Fixture, "a later event of the same case waits for the earlier one") {
  auto store = open();
  std::string a1 = append_ok(*store, message("a1", "440604/CASE-A"));
  std::string a2 = append_ok(*store, message("a2", "440604/CASE-A"));
  std::string b1 = append_ok(*store, message("b1", "440604/CASE-B"));
  auto first = store->lease("sink", 10);
  std::set<std::string> got;
  for (auto& l : first) got.insert(l.message_id);
  CHECK(got == std::set<std::string>{a1, b1});

  // A failed attempt of a1 keeps a2 waiting.
  const Lease* lease_a1 = first[0].message_id == a1 ? &first[0] : &first[1];
  std::promise<Result<void>> nacked;
  store->nack(*lease_a1, "busy", false, [&](Result<void> r) { nacked.set_value(r); });
  REQUIRE(nacked.get_future().get());
  clock.advance_ms(20'000);
  auto second = store->lease("sink", 10);
  REQUIRE(second.size() == 1);
  CHECK(second[0].message_id == a1);
  std::promise<Result<void>> acked;
  store->ack(second[0], [&](Result<void> r) { acked.set_value(r); });
  REQUIRE(acked.get_future().get());
  auto third = store->lease("sink", 10);
  REQUIRE(third.size() == 1);
  CHECK(third[0].message_id == a2);
}

TEST_CASE_METHOD(Fixture, "each destination has its own queue") {
  auto store = open();
  std::string id = append_ok(*store, message("m-1", "", {"district", "city"}));
  auto d = store->lease("district", 5);
  auto c = store->lease("city", 5);
  REQUIRE(d.size() == 1);
  REQUIRE(c.size() == 1);
  std::promise<Result<void>> acked;
  store->ack(d[0], [&](Result<void> r) { acked.set_value(r); });
  REQUIRE(acked.get_future().get());
  CHECK(store->status(id)->state == "delivering");  // city still pending (leased, no attempt yet)
  std::promise<Result<void>> acked2;
  store->ack(c[0], [&](Result<void> r) { acked2.set_value(r); });
  REQUIRE(acked2.get_future().get());
  CHECK(store->status(id)->state == "delivered");
}

TEST_CASE_METHOD(Fixture, "the queued-bytes bound refuses appends with a distinct error") {
  auto o = options();
  o.max_queued_bytes = 1000;
  auto store = open(o);
  append_ok(*store, message("q-1", "", {"sink"}, 600));
  auto refused = store->append(message("q-2", "", {"sink"}, 600));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().is(Errc::kQueueFull));
  CHECK(store->stats().queued_messages == 1);
  auto l = store->lease("sink", 1);
  std::promise<Result<void>> acked;
  store->ack(l.at(0), [&](Result<void> r) { acked.set_value(r); });
  REQUIRE(acked.get_future().get());
  append_ok(*store, message("q-2", "", {"sink"}, 600));
}

TEST_CASE_METHOD(Fixture, "a full LMDB map refuses new data but keeps and settles what is stored") {
  auto o = options();
  o.map_size_bytes = 1u << 20;  // 1 MiB
  o.max_queued_bytes = 1ull << 30;
  auto store = open(o);
  std::vector<std::string> stored;
  Error last;
  for (int i = 0; i < 200; ++i) {
    auto r = store->append(message("big-" + std::to_string(i), "", {"sink"}, 40'000));
    if (!r) {
      last = r.error();
      break;
    }
    stored.push_back(r->message_id);
  }
  REQUIRE_FALSE(stored.empty());
  REQUIRE(last.is(Errc::kStoreFull));
  for (const auto& id : stored) {
    CHECK(store->payload(id));
  }
  // Settling what is stored still works when the map is full.
  auto l = store->lease("sink", 1);
  REQUIRE(l.size() == 1);
  std::promise<Result<void>> acked;
  store->ack(l[0], [&](Result<void> r) { acked.set_value(r); });
  CHECK(acked.get_future().get());
  CHECK_FALSE(store->stats().read_only);
}

TEST_CASE_METHOD(Fixture, "a failed sync latches the store read-only until reopened") {
  std::atomic<int> fault{0};
  auto o = options();
  o.commit_fault = [&] { return fault.load(); };
  std::string kept;
  {
    auto store = open(o);
    kept = append_ok(*store, message("before"));
    fault = EIO;
    auto r = store->append(message("during"));
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::kStoreFailed));
    fault = 0;
    auto after = store->append(message("after"));
    REQUIRE_FALSE(after);
    CHECK(after.error().is(Errc::kStoreFailed));
    CHECK(store->stats().read_only);
  }
  auto store = open(o);
  CHECK(store->status(kept));
  CHECK(store->find_duplicate("440604/approval", "during") == std::nullopt);
  append_ok(*store, message("after"));
}

TEST_CASE_METHOD(Fixture, "leases held when the process stopped are available after reopening") {
  std::string id;
  {
    auto store = open();
    id = append_ok(*store, message("l-1"));
    REQUIRE(store->lease("sink", 1).size() == 1);
  }
  auto store = open();
  auto l = store->lease("sink", 1);
  REQUIRE(l.size() == 1);
  CHECK(l[0].message_id == id);
  CHECK(store->stats().queued_messages == 1);
}

TEST_CASE_METHOD(Fixture, "a second process cannot open a store in use") {
  auto store = open();
  auto second = Store::open(options());
  REQUIRE_FALSE(second);
  CHECK(second.error().is(Errc::kUnavailable));
}

TEST_CASE_METHOD(Fixture, "an online backup opens as a store with the same messages") {
  auto store = open();
  std::string id = append_ok(*store, message("b-1"));
  REQUIRE(store->backup(dir / "backup"));
  CHECK(std::filesystem::exists(dir / "backup" / "data.mdb"));
  // Owner-only, like the store: it holds the same personal data.
  CHECK((std::filesystem::status(dir / "backup" / "data.mdb").permissions() &
         std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  CHECK((std::filesystem::status(dir / "backup").permissions() & std::filesystem::perms::all) ==
        std::filesystem::perms::owner_all);
  CHECK_FALSE(store->backup(dir / "backup"));  // refuses a non-empty directory
  auto o = options();
  o.path = dir / "backup";
  auto copy = open(o);
  CHECK(copy->payload(id));
  CHECK(copy->lease("sink", 1).size() == 1);
}

TEST_CASE_METHOD(Fixture, "delivered messages are purged after the retention period") {
  auto store = open();
  std::string id = append_ok(*store, message("old"));
  auto l = store->lease("sink", 1);
  std::promise<Result<void>> acked;
  store->ack(l.at(0), [&](Result<void> r) { acked.set_value(r); });
  REQUIRE(acked.get_future().get());
  auto none = store->purge_expired_history();
  REQUIRE(none);
  CHECK(*none == 0);
  clock.advance_ms(3'600'001);
  auto purged = store->purge_expired_history();
  REQUIRE(purged);
  CHECK(*purged == 1);
  CHECK(store->status(id).error().is(Errc::kNotFound));
  // The idempotency entry went with it: the same id is a new message now.
  CHECK_FALSE(store->append(message("old"))->duplicate);
}

TEST_CASE_METHOD(Fixture, "extension tables are written durably and scanned in order") {
  auto store = open();
  REQUIRE(store->write(
      [](TableWriter& w) -> Result<void> {
        if (auto r = w.put("notes", "b", "2"); !r) return r;
        return w.put("notes", "a", "1");
      },
      16));
  auto v = store->get("notes", "a");
  REQUIRE(v);
  CHECK(v->value() == "1");
  std::vector<std::string> keys;
  REQUIRE(store->scan("notes", "", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  CHECK(keys == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(store->get("nope", "a"));
}

TEST_CASE_METHOD(Fixture, "invalid appends are refused before anything is stored") {
  auto store = open();
  auto m = message("x");
  m.destinations.clear();
  CHECK(store->append(m).error().is(Errc::kInvalidArgument));
  auto bad_id = message("y");
  bad_id.message_id = "not-a-uuid";
  CHECK(store->append(bad_id).error().is(Errc::kInvalidArgument));
  CHECK(store->stats().queued_messages == 0);
}

namespace {

// Holds the writer inside one operation until released, so that everything submitted
// meanwhile is taken as one batch by the next group commit.
struct WriterGate {
  std::promise<void> entered;
  std::promise<void> release;

  void hold(Store& store) {
    auto released = release.get_future().share();
    store.write_async(
        [this, released](TableWriter&) -> Result<void> {
          entered.set_value();
          released.wait();
          return {};
        },
        16, nullptr);
    entered.get_future().wait();
  }
  void open() { release.set_value(); }
};

std::future<Result<void>> write_later(Store& store, WriteFn fn) {
  auto p = std::make_shared<std::promise<Result<void>>>();
  auto f = p->get_future();
  store.write_async(std::move(fn), 16, [p](Result<void> r) { p->set_value(std::move(r)); });
  return f;
}

}  // namespace

TEST_CASE_METHOD(Fixture,
                 "a failed operation leaves no writes while the rest of its batch commits") {
  auto store = open();
  WriterGate gate;
  gate.hold(*store);
  auto before = write_later(*store, [](TableWriter& w) { return w.put("notes", "before", "1"); });
  auto failing = write_later(*store, [](TableWriter& w) -> Result<void> {
    if (auto r = w.put("notes", "partial", "x"); !r) return r;
    return fail(Errc::kInvalidArgument, "refused after a put");
  });
  auto after = write_later(*store, [](TableWriter& w) { return w.put("notes", "after", "2"); });
  std::uint64_t commits_before = store->stats().commits;
  gate.open();
  CHECK(before.get());
  auto r = failing.get();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(Errc::kInvalidArgument));
  CHECK(after.get());
  INFO("the three writes were expected in one group commit");
  CHECK(store->stats().commits - commits_before == 2);  // the gate's batch and theirs
  auto partial = store->get("notes", "partial");
  REQUIRE(partial);
  CHECK_FALSE(partial->has_value());
  CHECK(store->get("notes", "before")->value() == "1");
  CHECK(store->get("notes", "after")->value() == "2");
}

TEST_CASE_METHOD(Fixture, "a message id stored before is answered as a duplicate, not an error") {
  auto store = open();
  auto first = message("resend-1");
  std::string id = append_ok(*store, first);
  auto again = message("resend-2");  // a peer resending: same MessageId, new sender id
  again.message_id = id;
  again.payload = "other";
  auto r = store->append(again);
  REQUIRE(r);
  CHECK(r->duplicate);
  CHECK(r->message_id == id);
  CHECK(store->stats().queued_messages == 1);
  CHECK(store->payload(id).value() == first.payload);
  CHECK(store->find_duplicate("440604/approval", "resend-2") == std::nullopt);
  CHECK_FALSE(store->stats().read_only);
  append_ok(*store, message("resend-3"));
}

TEST_CASE_METHOD(Fixture, "the same message id twice in one batch stores it once") {
  auto store = open();
  WriterGate gate;
  gate.hold(*store);
  auto a = message("twice-a");
  auto b = message("twice-b");
  b.message_id = a.message_id;
  auto other = message("twice-other");
  std::vector<std::future<Result<Appended>>> results;
  for (auto* m : {&a, &b, &other}) {
    auto p = std::make_shared<std::promise<Result<Appended>>>();
    results.push_back(p->get_future());
    store->append_async(*m, [p](Result<Appended> r) { p->set_value(std::move(r)); });
  }
  std::uint64_t commits_before = store->stats().commits;
  gate.open();
  auto ra = results[0].get();
  auto rb = results[1].get();
  auto ro = results[2].get();
  REQUIRE(ra);
  REQUIRE(rb);
  REQUIRE(ro);
  CHECK_FALSE(ra->duplicate);
  CHECK(rb->duplicate);
  CHECK(rb->message_id == a.message_id);
  CHECK_FALSE(ro->duplicate);
  CHECK(store->stats().commits - commits_before == 2);  // the gate's batch and theirs
  CHECK(store->stats().queued_messages == 2);
  CHECK(store->find_duplicate("440604/approval", "twice-b") == std::nullopt);
  CHECK_FALSE(store->stats().read_only);
}

namespace {

Result<void> settle(Store& store, const Lease& l, bool ok, bool permanent = false) {
  std::promise<Result<void>> done;
  auto cb = [&](Result<void> r) { done.set_value(std::move(r)); };
  if (ok) {
    store.ack(l, cb);
  } else {
    store.nack(l, "HTTP 503", permanent, cb);
  }
  return done.get_future().get();
}

}  // namespace

TEST_CASE_METHOD(Fixture, "a message's state is reported as an enum, its text kept alongside") {
  auto store = open();
  auto state_of = [&](const std::string& id) {
    auto st = store->status(id);
    REQUIRE(st);
    CHECK(st->state == to_string(st->state_kind));
    return st->state_kind;
  };
  std::string id = append_ok(*store, message("st-1", "", {"a", "b"}));
  CHECK(state_of(id) == MessageState::kQueued);
  REQUIRE(settle(*store, store->lease("a", 1).at(0), false));
  CHECK(state_of(id) == MessageState::kDelivering);
  REQUIRE(settle(*store, store->lease("b", 1).at(0), true));
  clock.advance_ms(20'000);
  REQUIRE(settle(*store, store->lease("a", 1).at(0), false, true));
  CHECK(state_of(id) == MessageState::kPartial);

  std::string delivered = append_ok(*store, message("st-2"));
  REQUIRE(settle(*store, store->lease("sink", 1).at(0), true));
  CHECK(state_of(delivered) == MessageState::kDelivered);
  std::string dead = append_ok(*store, message("st-3"));
  REQUIRE(settle(*store, store->lease("sink", 1).at(0), false, true));
  CHECK(state_of(dead) == MessageState::kDead);
  auto m = message("st-4");
  m.expires_ms = clock.now_ms() + 10;
  std::string expired = append_ok(*store, m);
  clock.advance_ms(11);
  CHECK(store->lease("sink", 1).empty());
  REQUIRE(store->write([](TableWriter&) -> Result<void> { return {}; }, 1));
  CHECK(state_of(expired) == MessageState::kExpired);
  CHECK(to_string(MessageState::kPartial) == "partial");
}
