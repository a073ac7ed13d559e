// Finding messages for operators: the dead-letter index, filters and pages, discarding a dead
// delivery, and the upgrade that indexes the dead letters of a format 3 store.
#include <catch2/catch.hpp>

#include <lmdb.h>

#include <future>
#include <memory>
#include <set>

#include "common/clock.h"
#include "common/random.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

using namespace sluice;
using namespace sluice::queue;

namespace {

struct FindFixture {
  test::TempDir dir{"queue-find"};
  ManualClock clock;
  SeededRandom random{7};

  Options options() {
    Options o;
    o.path = dir / "store";
    o.map_size_bytes = 64ull << 20;
    o.clock = &clock;
    o.random = &random;
    o.retry.max_attempts = 1;
    return o;
  }
  std::unique_ptr<Store> open() {
    auto s = Store::open(options());
    REQUIRE(s);
    return std::move(*s);
  }
  std::string append(Store& store, const std::string& smid, const std::string& sender,
                     const std::string& doc_type, const std::string& key,
                     std::vector<std::string> dests) {
    NewMessage m;
    m.message_id = new_uuid(random);
    m.sender = sender;
    m.sender_message_id = smid;
    m.doc_type = doc_type;
    m.ordering_key = key;
    m.destinations = std::move(dests);
    m.payload = "<doc/>";
    auto r = store.append(std::move(m));
    REQUIRE(r);
    return r->message_id;
  }
  // Fails every delivery due at `dest` once (max_attempts 1: each goes dead).
  void fail_all(Store& store, const std::string& dest) {
    for (auto& l : store.lease(dest, 1000)) {
      std::promise<Result<void>> done;
      store.nack(l, "HTTP 500", false, [&](Result<void> r) { done.set_value(r); });
      REQUIRE(done.get_future().get());
    }
  }
  void deliver_all(Store& store, const std::string& dest) {
    for (auto& l : store.lease(dest, 1000)) {
      std::promise<Result<void>> done;
      store.ack(l, [&](Result<void> r) { done.set_value(r); });
      REQUIRE(done.get_future().get());
    }
  }
};

std::set<std::string> ids(const MessagePage& p) {
  std::set<std::string> out;
  for (const auto& m : p.messages) out.insert(m.message_id);
  return out;
}

}  // namespace

TEST_CASE_METHOD(FindFixture,
                 "dead letters are indexed per destination and leave it when redriven") {
  auto store = open();
  std::vector<std::string> a_dead, b_dead;
  for (int i = 0; i < 5; ++i) {
    a_dead.push_back(append(*store, "a" + std::to_string(i), "440604/approval", "case.accept",
                            "440604/C" + std::to_string(i), {"a", "b"}));
  }
  fail_all(*store, "a");
  deliver_all(*store, "b");
  b_dead.push_back(append(*store, "b0", "440605/tax", "case.fee", "", {"b"}));
  fail_all(*store, "b");
  auto a = store->dead_letters("a", 100);
  REQUIRE(a);
  CHECK(a->size() == 5);
  auto b = store->dead_letters("b", 100);
  REQUIRE(b);
  REQUIRE(b->size() == 1);
  CHECK(b->front().message_id == b_dead[0]);
  CHECK(store->dead_letters("", 100)->size() == 6);
  // Pages of two, in the order they went dead, with nothing seen twice.
  MessageFilter f{.destination = "a", .state = MessageState::kDead};
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto p = store->find(f, cursor, 2);
    REQUIRE(p);
    CHECK(p->messages.size() <= 2);
    for (const auto& m : p->messages) CHECK(seen.insert(m.message_id).second);
    cursor = p->next;
    ++pages;
  } while (!cursor.empty());
  CHECK(seen.size() == 5);
  CHECK(pages == 3);
  REQUIRE(store->redrive(a_dead[0], "a"));
  CHECK(store->dead_letters("a", 100)->size() == 4);
  CHECK(store->find(f, "zz", 2).error().message.find("cursor") != std::string::npos);
}

TEST_CASE_METHOD(FindFixture,
                 "messages are found by sender, DocType, CaseId, destination and state") {
  auto store = open();
  const auto accept =
      append(*store, "m1", "440604/approval", "case.accept", "440604/SB-001", {"a"});
  const auto fee = append(*store, "m2", "440604/approval", "case.fee", "440604/SB-001", {"a"});
  const auto tax = append(*store, "m3", "440605/tax", "case.accept", "440605/SB-002", {"b"});
  deliver_all(*store, "b");
  auto find = [&](MessageFilter f) {
    auto p = store->find(f, "", 100);
    REQUIRE(p);
    return ids(*p);
  };
  CHECK(find({.sender = "440604/*"}) == std::set<std::string>{accept, fee});
  CHECK(find({.doc_type = "case.accept"}) == std::set<std::string>{accept, tax});
  CHECK(find({.doc_type = "case.*", .sender = "440605/tax"}) == std::set<std::string>{tax});
  CHECK(find({.case_id = "SB-001"}) == std::set<std::string>{accept, fee});
  CHECK(find({.case_id = "440605/SB-002"}) == std::set<std::string>{tax});
  CHECK(find({.case_id = "440604/SB-002"}).empty());
  CHECK(find({.destination = "b"}) == std::set<std::string>{tax});
  CHECK(find({.destination = "nowhere"}).empty());
  CHECK(find({.state = MessageState::kDelivered}) == std::set<std::string>{tax});
  CHECK(find({.state = MessageState::kQueued}) == std::set<std::string>{accept, fee});
  // A page that looked at its bound of records ends early, with a cursor to go on.
  auto p = store->find({.sender = "440605/tax"}, "", 100, 1);
  REQUIRE(p);
  CHECK(p->messages.empty());
  CHECK_FALSE(p->next.empty());
  std::set<std::string> found;
  for (std::string c = p->next; !c.empty();) {
    auto q = store->find({.sender = "440605/tax"}, c, 100, 1);
    REQUIRE(q);
    for (auto& m : q->messages) found.insert(m.message_id);
    c = q->next;
  }
  CHECK(found == std::set<std::string>{tax});
}

TEST_CASE_METHOD(FindFixture, "a discarded dead delivery ends and its message enters history") {
  auto store = open();
  const auto id = append(*store, "x1", "440604/approval", "case.accept", "", {"a"});
  fail_all(*store, "a");
  CHECK(store->status(id)->state_kind == MessageState::kDead);
  REQUIRE(store->discard(id, "a", "discarded by admin/netadmin: receiver retired"));
  auto st = store->status(id);
  REQUIRE(st);
  CHECK(st->state_kind == MessageState::kDiscarded);
  CHECK(st->state == "discarded");
  CHECK(st->deliveries[0].last_error == "discarded by admin/netadmin: receiver retired");
  CHECK(store->dead_letters("a", 10)->empty());
  CHECK(store->stats().history_messages == 1);
  CHECK(store->payload(id).error().is(Errc::kNotFound));  // dropped, as for a delivered one
  // Only a dead delivery can be discarded, and only once.
  auto again = store->discard(id, "a", "again");
  REQUIRE_FALSE(again);
  CHECK(again.error().message.find("is not dead at destination a") != std::string::npos);
  CHECK(parse_message_state("discarded") == MessageState::kDiscarded);
  CHECK_FALSE(parse_message_state("gone"));
}

TEST_CASE_METHOD(FindFixture, "a format 3 store gets its dead letters indexed when opened") {
  std::string dead;
  {
    auto store = open();
    dead = append(*store, "u1", "440604/approval", "case.accept", "", {"a"});
    append(*store, "u2", "440604/approval", "case.accept", "", {"a"});
    auto l = store->lease("a", 1);
    REQUIRE(l.size() == 1);
    std::promise<Result<void>> done;
    store->nack(l[0], "HTTP 500", false, [&](Result<void> r) { done.set_value(r); });
    REQUIRE(done.get_future().get());
    dead = l[0].message_id;
  }
  // Make it look as format 3 left it: no dead-letter index.
  {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 64);
    mdb_env_set_mapsize(env, 64ull << 20);
    REQUIRE(mdb_env_open(env, (dir / "store").c_str(), MDB_NOTLS, 0600) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi meta, index;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    REQUIRE(mdb_dbi_open(txn, "dead", 0, &index) == 0);
    REQUIRE(mdb_drop(txn, index, 0) == 0);
    MDB_val k{6, const_cast<char*>("format")}, v{1, const_cast<char*>("3")};
    REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  auto store = open();
  auto letters = store->dead_letters("a", 10);
  REQUIRE(letters);
  REQUIRE(letters->size() == 1);
  CHECK(letters->front().message_id == dead);
}

TEST_CASE_METHOD(FindFixture, "many redrives submitted at once share group commits") {
  auto store = open();
  for (int i = 0; i < 500; ++i) {
    append(*store, "r" + std::to_string(i), "440604/approval", "case.accept", "", {"a"});
  }
  fail_all(*store, "a");
  auto dead = store->dead_letters("a", 1000);
  REQUIRE(dead);
  REQUIRE(dead->size() == 500);
  const auto commits_before = store->stats().commits;
  std::vector<std::future<Result<void>>> results;
  for (const auto& m : *dead) {
    auto p = std::make_shared<std::promise<Result<void>>>();
    results.push_back(p->get_future());
    store->redrive_async(m.message_id, "a", [p](Result<void> r) { p->set_value(std::move(r)); });
  }
  for (auto& r : results) CHECK(r.get());
  const auto commits = store->stats().commits - commits_before;
  INFO(commits << " commits for 500 redrives");
  CHECK(commits < 100);
  CHECK(store->dead_letters("a", 1000)->empty());
  CHECK(store->lease("a", 1000).size() == 500);
}
